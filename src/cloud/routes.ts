// The public, OpenAI-compatible API under /v1. Handlers parse and answer; the services decide.
//
// Resultity extensions (documented in the README):
//   Prefer: respond-async      on POST /v1/chat/completions answers 202 with a job, polled at GET /v1/jobs/{id}
//                              (not with stream: true, which is refused with 400)
//   X-Resultity-Region         on POST /v1/chat/completions: run only on nodes of that region (e.g. eu-west)
//   `resultity` object         on every completion: job id and credits charged (never the node)
//   x-resultity-job-id, x-resultity-credits-charged response headers
//   X-Resultity-Priority: urgent|standard|bulk|test   the job's priority class (or OpenAI's `service_tier`)
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { UsageService } from '../space/usage.service.js';
import { sendUsage, type UsageQuery } from '../space/usage.http.js';
import { errors, formatCredits } from '../errors.js';
import type { JobRow } from '../postgres/jobs.repository.js';
import type { PayloadDoc } from '../mongo/payloads.repository.js';
import type { JobOutput } from '../domain/protocol.js';
import { listModels } from '../postgres/models.repository.js';
import type { Db } from '../postgres/db.js';
import type { AuthService, Principal } from './auth.service.js';
import { chatCompletionRequestSchema, toJobRequest, unsupportedField } from './chat.schema.js';
import { jobFailure, type JobsService } from './jobs.service.js';
import { sendAppError } from './errors.http.js';
import { isPriorityClass, PRIORITY_CLASSES, priorityFromServiceTier, serviceTierOf, type PriorityClass } from '../domain/priority.js';
import { REGION_PATTERN } from '../domain/eligibility.js';
import type { StreamRelay } from './chat-stream.service.js';
import { sendChatStream } from './chat-stream.http.js';
import { countDegraded } from '../metrics/degraded.js';
import { bindJobToLogContext } from '../common/log-context.js';

export interface CloudRouteDeps {
  db: Db;
  usage: UsageService;
  auth: AuthService;
  jobs: JobsService;
  relay: StreamRelay;
  /** max_tokens of a request that names none: the network config's, read per request. */
  maxTokensDefault: () => number;
  /** How long past a job's deadline a synchronous call waits for the maintenance role to expire it. */
  syncGraceMs: number;
  /** The longest deadline a request may ask for (and the default). */
  maxDeadlineMs: number;
  /** Whether Redis is usable now (redis/redis-health.ts redisReady); absent: always tried. */
  redisReady?: () => boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

export function cloudRoutes(app: FastifyInstance, d: CloudRouteDeps): void {
  app.register(async (v1) => {
    v1.addHook('onRequest', async (request) => {
      const principal = await d.auth.authenticate(request.headers.authorization);
      await d.auth.enforceRateLimit(principal);
      request.principal = principal;
    });

    v1.get('/v1/models', async (request) => {
      // Available to this key: served by a node of its namespace's network (and subcloud).
      const placement = await d.jobs.placementFor(principalOf(request).namespaceId, '', null);
      const models = await listModels(d.db);
      const data = await Promise.all(
        models.map(async (m) => ({
          id: m.name,
          object: 'model' as const,
          created: Math.floor(m.created_at.getTime() / 1000),
          owned_by: 'resultity',
          resultity: {
            // null: not known now (Redis, which knows, is unreachable); a job for it is still accepted.
            available: await d.jobs.liveNodeCount({ ...placement, model: m.name }).then((n) => (n === null ? null : n > 0)),
            context_tokens: m.context_tokens,
            // micro-credits per token = credits per million tokens
            pricing: {
              input_credits_per_mtok: m.input_price_micro,
              output_credits_per_mtok: m.output_price_micro,
              priority_surcharge_bps: m.priority_surcharge_bps,
            },
          },
        })),
      );
      return { object: 'list', data };
    });

    v1.post('/v1/chat/completions', async (request, reply) => {
      const principal = principalOf(request);
      const parsed = chatCompletionRequestSchema.safeParse(request.body);
      if (!parsed.success) throw errors.invalidInput(parsed.error.issues, 'Invalid request body.');
      const unsupported = unsupportedField(parsed.data);
      if (unsupported) throw errors.invalid(`'${unsupported}' is not supported yet; send the request without it.`, unsupported);
      const respondAsync = /\brespond-async\b/i.test(String(request.headers.prefer ?? ''));
      if (parsed.data.stream && respondAsync) throw errors.invalid('stream: true cannot be combined with Prefer: respond-async; use one or the other.', 'stream');
      // A stream's chunks travel through Redis: without it, refused before anything is held or charged.
      if (parsed.data.stream && d.redisReady && !d.redisReady()) {
        countDegraded('refused_no_redis');
        throw errors.engineUnavailable('Streaming (stream: true)');
      }
      const idempotencyKey = request.headers['idempotency-key'];
      if (idempotencyKey !== undefined && (typeof idempotencyKey !== 'string' || !/^[\x21-\x7e]{1,255}$/.test(idempotencyKey))) {
        throw errors.invalid('Idempotency-Key must be 1 to 255 visible ASCII characters.', 'Idempotency-Key');
      }
      const deadlineMs = deadlineHeader(request.headers['x-resultity-deadline-ms'], d.maxDeadlineMs);
      const priority = priorityOf(request.headers['x-resultity-priority'], parsed.data.service_tier);
      const region = regionHeader(request.headers['x-resultity-region']);
      const { job, replayed, watch } = await d.jobs.accept(principal, parsed.data.model, toJobRequest(parsed.data, d.maxTokensDefault()), {
        idempotencyKey,
        priority,
        watch: !respondAsync,
        ...(deadlineMs !== undefined ? { deadlineMs } : {}),
        ...(region !== undefined ? { region } : {}),
      });
      reply.header('x-resultity-job-id', job.id);
      bindJobToLogContext(job.id);
      if (replayed) reply.header('idempotent-replayed', 'true');

      if (parsed.data.stream) {
        // The relay follows the job's stream, and its end with the watch begun before the publish.
        const includeUsage = parsed.data.stream_options?.include_usage === true;
        await sendChatStream(reply, d.relay, job, { includeUsage, until: job.deadline_at.getTime() + d.syncGraceMs, finished: watch });
        return reply;
      }
      if (respondAsync) {
        reply.header('location', `/v1/jobs/${job.id}`).header('preference-applied', 'respond-async');
        return reply.code(202).send(jobView(job, null));
      }

      // Stop waiting if the client goes away (the job itself goes on and settles normally). The
      // response's 'close' before it was written is the disconnect; the request's 'close' only means
      // its body was read.
      const abort = new AbortController();
      reply.raw.on('close', () => {
        if (!reply.raw.writableEnded) abort.abort();
      });
      // From here on the job exists and may be charged: an error must not read as "nothing happened"
      // (a client would resend and pay twice), so any failure answers 202 with the job to poll.
      try {
        const { job: done, output } = await d.jobs.waitForTerminal(job, job.deadline_at.getTime() - Date.now() + d.syncGraceMs, abort.signal, watch);
        if (done.status === 'completed') {
          reply.header('x-resultity-credits-charged', formatCredits(done.charged_micro ?? 0));
          return completion(done, output);
        }
        if (done.status === 'failed' || done.status === 'expired' || done.status === 'cancelled') return sendAppError(reply, jobFailure(done));
      } catch (err) {
        request.log.error({ err }, 'waiting for an accepted job failed; answering 202');
      }
      reply.header('location', `/v1/jobs/${job.id}`);
      return reply.code(202).send(jobView(job, null));
    });

    // Resultity extension: the namespace's usage by day, model and key; `format=csv` for a spreadsheet.
    v1.get<{ Querystring: UsageQuery }>('/v1/usage', async (request, reply) => sendUsage(reply, d.usage, principalOf(request).namespaceId, request.query));

    v1.get<{ Params: { id: string } }>('/v1/jobs/:id', async (request) => {
      const { job, payload } = await d.jobs.findForNamespace(request.params.id, principalOf(request).namespaceId);
      return jobView(job, payload);
    });
  });
}

/** `X-Resultity-Deadline-Ms` (extension): the job's own deadline, from 1 s up to the configured maximum. */
function deadlineHeader(value: string | string[] | undefined, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'string' && /^\d{1,10}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1000 && n <= max)) throw errors.invalid(`X-Resultity-Deadline-Ms must be a whole number of milliseconds from 1000 to ${max}.`, 'X-Resultity-Deadline-Ms');
  return n;
}

/** The job's class: `X-Resultity-Priority` (extension) or OpenAI's `service_tier`; they must agree when both are sent. */
function priorityOf(header: string | string[] | undefined, serviceTier: string | undefined): PriorityClass {
  const fromTier = serviceTier === undefined ? null : priorityFromServiceTier(serviceTier);
  if (header === undefined) return fromTier ?? 'standard';
  if (!isPriorityClass(header)) throw errors.invalid(`X-Resultity-Priority must be one of ${PRIORITY_CLASSES.join(', ')}.`, 'X-Resultity-Priority');
  if (fromTier !== null && serviceTier !== 'auto' && fromTier !== header) {
    throw errors.invalid(`service_tier '${serviceTier}' and X-Resultity-Priority '${header}' disagree; send one of them.`, 'service_tier');
  }
  return header;
}

/** `X-Resultity-Region` (extension): run the job only on nodes that declare this region. */
function regionHeader(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !REGION_PATTERN.test(value)) {
    throw errors.invalid('X-Resultity-Region must be a region slug: 2-32 of a-z, 0-9 and -, starting with a letter (e.g. eu-west).', 'X-Resultity-Region');
  }
  return value;
}

function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw errors.unauthenticated();
  return request.principal;
}

/** An OpenAI `chat.completion` object. Never names the node that served it. `output`: null once expired. */
function completion(job: JobRow, output: JobOutput | null) {
  const prompt = job.prompt_tokens ?? 0;
  const completionTokens = job.completion_tokens ?? 0;
  return {
    id: job.id,
    object: 'chat.completion' as const,
    created: Math.floor(job.created_at.getTime() / 1000),
    model: job.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant' as const, content: output?.content ?? null, refusal: null },
        finish_reason: output?.finish_reason ?? 'stop',
        logprobs: null,
      },
    ],
    usage: { prompt_tokens: prompt, completion_tokens: completionTokens, total_tokens: prompt + completionTokens },
    service_tier: serviceTierOf(job.priority),
    resultity: { job_id: job.id, priority: job.priority, credits_charged: formatCredits(job.charged_micro ?? 0), output_expired: output === null },
  };
}

/** The job resource returned by async submission and by GET /v1/jobs/{id}. */
function jobView(job: JobRow, payload: PayloadDoc | null) {
  return {
    id: job.id,
    object: 'chat.completion.job' as const,
    status: job.status,
    model: job.model,
    priority: job.priority,
    created: Math.floor(job.created_at.getTime() / 1000),
    finished: job.finished_at ? Math.floor(job.finished_at.getTime() / 1000) : null,
    credits_held: formatCredits(job.finished_at ? 0 : job.hold_micro),
    credits_charged: job.charged_micro === null ? null : formatCredits(job.charged_micro),
    result: job.status === 'completed' ? completion(job, payload?.results?.[String(job.attempt)]?.output ?? null) : null,
    error: job.status === 'failed' || job.status === 'expired' || job.status === 'cancelled' ? { code: job.error_code, message: job.error_message } : null,
  };
}
