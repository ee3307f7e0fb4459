// `POST /io/results`: results and job errors from a node whose socket dropped while it worked (io/gateway.ts
// holds the sockets). Over HTTP the signature is the only authentication: a message that does not verify is
// refused outright and attributed to nobody (anyone can post one claiming any node id).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AppError } from '../errors.js';
import { sendNodeError } from '../http/errors.http.js';
import { jobErrorSchema, resultSchema } from '../domain/protocol.js';
import { verifyMessageAsync } from '../domain/verify-pool.js';
import type { ResultsService } from './results.service.js';

const httpNodeMessageSchema = z.discriminatedUnion('type', [resultSchema, jobErrorSchema]);

/** `maxBytes`: the largest body taken (a registered node's largest frame). */
export function resultsRoute(app: FastifyInstance, results: Pick<ResultsService, 'acceptResult' | 'acceptJobError'>, maxBytes: number): void {
  app.post('/io/results', { bodyLimit: maxBytes }, async (request, reply) => {
    const parsed = httpNodeMessageSchema.safeParse(request.body);
    if (!parsed.success) return sendNodeError(reply, new AppError('invalid_message', parsed.error.issues[0]?.message ?? 'invalid'));
    const msg = parsed.data;
    // Verified here, once: the results service's own check of this same object finds it verified.
    if (!(await verifyMessageAsync(msg, msg.nodeId))) {
      return sendNodeError(reply, new AppError('bad_signature', 'The message is not signed by the node it names.'));
    }
    if (msg.type === 'job_error') {
      const failed = await results.acceptJobError(msg, null);
      return reply.code(failed ? 200 : 409).send(failed ? { accepted: true } : { accepted: false, reason: 'stale_attempt' });
    }
    const verdict = await results.acceptResult(msg, null, true);
    return reply.code(verdict.accepted ? 200 : 409).send(verdict);
  });
}
