// The public, OpenAI-compatible API under /v1. Handlers parse and answer; the services decide.
//
// Inference routes: /v1/chat/completions, /v1/completions and /v1/embeddings, each a job kind; they share
// what follows the parse (job-submission.http.ts). Resultity extensions on all three (documented in the README):
//   Prefer: respond-async      answers 202 with a job, polled at GET /v1/jobs/{id}
//                              (not with stream: true, which is refused with 400)
//   `models` (OpenRouter's fallbacks) tried in order after `model`; the response's `model` names the one that ran
//   X-Resultity-Region         run only on nodes of that region (e.g. eu-west)
//   `resultity` object         on every completion: job id and credits charged (never the node)
//   x-resultity-job-id, x-resultity-credits-charged response headers
//   X-Resultity-Priority: urgent|standard|bulk|test   the job's priority class (or OpenAI's `service_tier`)
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { UsageService } from '../space/usage.service.js';
import { sendUsage, type UsageQuery } from '../space/usage.http.js';
import { jobSearchRoutes } from '../space/job-search.http.js';
import { jobEventRoutes } from '../space/job-logs.http.js';
import type { JobLogsService } from '../space/job-logs.service.js';
import { errors } from '../errors.js';
import type { PayloadsRepository } from '../mongo/payloads.repository.js';
import type { SpaceJobs } from '../space/space-jobs.service.js';
import { listModels } from '../postgres/models.repository.js';
import type { Db } from '../postgres/db.js';
import type { AuthService, Principal } from './auth.service.js';
import { chatCompletionRequestSchema, structuredOutputProblem, toJobRequest, unsupportedField } from './chat.schema.js';
import type { InferenceService } from './inference.service.js';
import type { StreamRelay } from './stream-relay.service.js';
import { completionRequestSchema, completionJobRequest } from './completions.schema.js';
import { embeddingRequestSchema, embeddingJobRequest } from './embeddings.schema.js';
import { modelsOf } from './model-choice.schema.js';
import { submitJob } from './job-submission.http.js';
import { chatCompletion, embeddingList, jobView, textCompletion } from './inference.responses.js';
import { creditsView, keyView } from './key-view.http.js';
import { routeSchema } from '../openapi/route-schema.js';
import { usageQuerySchema } from '../space/usage.http.js';
import { z } from 'zod';

const jobIdParams = z.object({ id: z.string().describe('The job id (x-resultity-job-id).') });
const doc = (summary: string, more: { description?: string; body?: z.ZodType; querystring?: z.ZodType; params?: z.ZodType } = {}) =>
  routeSchema({ summary, tags: ['Public API'], auth: 'apiKey', ...more });

export interface CloudRouteDeps {
  db: Db;
  /** For GET /v1/jobs/export (space/job-search.http.ts); absent, that route is not offered. */
  payloads?: PayloadsRepository;
  /** For DELETE /v1/jobs/{id} (space/space-jobs.service.ts); absent, that route is not offered. */
  spaceJobs?: SpaceJobs;
  /** For GET /v1/jobs/{id}/events (space/job-logs.http.ts); absent, that route is not offered. */
  jobLogs?: JobLogsService;
  usage: UsageService;
  auth: AuthService;
  jobs: InferenceService;
  relay: StreamRelay;
  /** Whether Redis is usable now (redis/redis-health.ts redisReady); absent: always tried. */
  redisReady?: () => boolean;
  /** max_tokens of a request that names none: the network config's, read per request. */
  maxTokensDefault: () => number;
  /** How long past a job's deadline a synchronous call waits for the maintenance role to expire it. */
  syncGraceMs: number;
  /** The longest deadline a request may ask for (and the default). */
  maxDeadlineMs: number;
  /** The rate limits of a key without its own, as GET /v1/key reports them. */
  defaultRateLimit: { rps: number; burst: number };
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

    v1.get('/v1/models', { schema: doc('Models available to this key, with prices') }, async (request) => {
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

    v1.post(
      '/v1/chat/completions',
      { schema: doc('Creates a chat completion (synchronous, streamed with stream: true, or asynchronous with Prefer: respond-async)', { body: chatCompletionRequestSchema }) },
      async (request, reply) => {
      const parsed = chatCompletionRequestSchema.safeParse(request.body);
      if (!parsed.success) throw errors.invalidInput(parsed.error.issues, 'Invalid request body.');
      const unsupported = unsupportedField(parsed.data);
      if (unsupported) throw errors.invalid(`'${unsupported}' is not supported yet; send the request without it.`, unsupported);
      const problem = structuredOutputProblem(parsed.data);
      if (problem) throw errors.invalid(problem.message, problem.param);
      return submitJob(request, reply, principalOf(request), d, {
        models: modelsOf(parsed.data),
        job: toJobRequest(parsed.data, d.maxTokensDefault()),
        stream: parsed.data.stream ? { format: 'chat', includeUsage: parsed.data.stream_options?.include_usage === true } : null,
        serviceTier: parsed.data.service_tier,
        render: chatCompletion,
        view: (job) => jobView(job, null),
      });
      },
    );

    v1.post('/v1/completions', { schema: doc('Creates a text completion (OpenAI\'s legacy completions; streamed with stream: true)', { body: completionRequestSchema }) }, async (request, reply) => {
      const parsed = completionRequestSchema.safeParse(request.body);
      if (!parsed.success) throw errors.invalidInput(parsed.error.issues, 'Invalid request body.');
      return submitJob(request, reply, principalOf(request), d, {
        models: modelsOf(parsed.data),
        job: completionJobRequest(parsed.data),
        stream: parsed.data.stream ? { format: 'text_completion', includeUsage: parsed.data.stream_options?.include_usage === true } : null,
        serviceTier: parsed.data.service_tier,
        render: textCompletion,
        view: (job) => jobView(job, null),
      });
    });

    v1.post('/v1/embeddings', { schema: doc('Creates embeddings of one or more inputs', { body: embeddingRequestSchema }) }, async (request, reply) => {
      const parsed = embeddingRequestSchema.safeParse(request.body);
      if (!parsed.success) throw errors.invalidInput(parsed.error.issues, 'Invalid request body.');
      const encoding = parsed.data.encoding_format ?? 'float';
      return submitJob(request, reply, principalOf(request), d, {
        models: modelsOf(parsed.data),
        job: embeddingJobRequest(parsed.data),
        stream: null,
        serviceTier: undefined,
        render: (job, output) => embeddingList(job, output, encoding),
        view: (job) => jobView(job, null),
      });
    });

    // Resultity extension: the namespace's usage by day, model and key; `format=csv` for a spreadsheet.
    v1.get<{ Querystring: UsageQuery }>('/v1/usage', { schema: doc("The namespace's usage by day, model and key (JSON or CSV)", { querystring: usageQuerySchema }) }, async (request, reply) => sendUsage(reply, d.usage, principalOf(request).namespaceId, request.query));

    jobSearchRoutes(v1, { db: d.db, ...(d.payloads ? { payloads: d.payloads } : {}), ...(d.spaceJobs ? { spaceJobs: d.spaceJobs } : {}) });
    if (d.jobLogs) jobEventRoutes(v1, d.jobLogs);

    v1.get<{ Params: { id: string } }>('/v1/jobs/:id', { schema: doc('A job of this namespace: its status, charge, and result or error', { params: jobIdParams }) }, async (request) => {
      const { job, payload } = await d.jobs.findForNamespace(request.params.id, principalOf(request).namespaceId);
      return jobView(job, payload);
    });

    // Stops a queued or running job; answers the job as it stands after (unchanged if it had ended).
    v1.post<{ Params: { id: string } }>('/v1/jobs/:id/cancel', { schema: doc('Cancels a queued or running job (a finished one is answered unchanged)', { params: jobIdParams }) }, async (request) => jobView(await d.jobs.cancel(request.params.id, principalOf(request).namespaceId), null));

    // The key holder's own view (OpenRouter's /api/v1/key and /api/v1/credits).
    v1.get('/v1/key', { schema: doc("This key's cap, what it committed this month, its rate limits and expiry (as OpenRouter's /api/v1/key)") }, async (request, reply) => reply.header('cache-control', 'no-store').send(await keyView(d.db, principalOf(request), d.defaultRateLimit)));
    v1.get('/v1/credits', { schema: doc("The namespace's credits: available and held (as OpenRouter's /api/v1/credits)") }, async (request, reply) => reply.header('cache-control', 'no-store').send(await creditsView(d.db, principalOf(request))));
  });
}

function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw errors.unauthenticated();
  return request.principal;
}

