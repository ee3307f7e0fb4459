// Job logs and node stats on the wire (space/job-logs.service.ts decides who sees what):
//   GET /v1/jobs/{id}/events          a consumer's job's events (API key; no node identity)
//   GET /account/nodes/{id}/stats     an operator's node's stats (session; another operator's node: 404)
//   GET /admin/jobs/{id}/events       any job's events, with nodes (admin token)
//   GET /admin/nodes/{id}/stats       any node's stats (admin token)
//   GET /admin/node-stats             every node's stats (admin token)
// Stats take `since` and `until` (ISO 8601 or Unix seconds; default the last hour, at most
// NODE_STATS_MAX_RANGE_DAYS apart) and `limit` (windows read, 1..10000, default 1000).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { errors } from '../errors.js';
import { routeSchema } from '../openapi/route-schema.js';
import type { JobLogsService, TimeRange } from './job-logs.service.js';
import type { SessionAuthenticator } from './retention.http.js';

const HOUR_MS = 3_600_000;
const time = z.union([z.string().regex(/^\d{1,12}$/).transform((s) => new Date(Number(s) * 1000)), z.iso.datetime({ offset: true }).transform((s) => new Date(s))]);
const statsQuery = z
  .object({
    since: time.optional().describe('Start of the range (ISO 8601 or Unix seconds); default: an hour before `until`.'),
    until: time.optional().describe('End of the range, exclusive (ISO 8601 or Unix seconds); default: now.'),
    limit: z.coerce.number().int().min(1).max(10_000).default(1_000),
  })
  .strict();
const jobIdParams = z.object({ id: z.string().describe('The job id (x-resultity-job-id).') });
const nodeParams = z.object({ id: z.string().describe('The node id (its EVM address)') });

/** The range a stats query asks for, checked: since before until, at most `maxRangeDays` apart. */
function rangeOf(query: unknown, maxRangeDays: number): TimeRange {
  const parsed = statsQuery.safeParse(query ?? {});
  if (!parsed.success) throw errors.invalidInput(parsed.error.issues, 'Invalid query.');
  const until = parsed.data.until ?? new Date();
  const since = parsed.data.since ?? new Date(until.getTime() - HOUR_MS);
  if (since.getTime() >= until.getTime()) throw errors.invalid('`since` must be before `until`.', 'since');
  if (until.getTime() - since.getTime() > maxRangeDays * 24 * HOUR_MS) throw errors.invalid(`A range of at most ${maxRangeDays} days.`, 'since');
  return { since, until, limit: parsed.data.limit };
}

/** GET /v1/jobs/{id}/events, on the public API's scope (its hook has authenticated the key). */
export function jobEventRoutes(v1: FastifyInstance, service: JobLogsService): void {
  v1.get<{ Params: { id: string } }>(
    '/v1/jobs/:id/events',
    {
      schema: routeSchema({
        summary: "A job's events: accepted, queued, dispatched, first token, each attempt's outcome, its end, and the time each stage took",
        description: 'Never names the node that ran an attempt. Written behind in batches: the latest events may take a moment to appear.',
        tags: ['Public API'],
        auth: 'apiKey',
        params: jobIdParams,
      }),
    },
    async (request) => {
      if (!request.principal) throw errors.unauthenticated();
      return service.consumerEvents(request.params.id, request.principal.namespaceId);
    },
  );
}

export function nodeStatsRoutes(app: FastifyInstance, d: { service: JobLogsService; accounts: SessionAuthenticator; adminToken: string; maxRangeDays: number }): void {
  const { service, maxRangeDays } = d;
  app.register(async (r) => {
    r.get<{ Params: { id: string } }>(
      '/account/nodes/:id/stats',
      { schema: routeSchema({ summary: "One of the operator's nodes' runtime stats over time: load, tokens per second per model, failures", tags: ['Account API'], auth: 'session', params: nodeParams, querystring: statsQuery }) },
      async (req) => {
        const p = await d.accounts.authenticate(req.headers.authorization);
        return service.operatorNodeStats(p.accountId, req.params.id, rangeOf(req.query, maxRangeDays));
      },
    );
  });

  // The admin's: the same token check as the admin API's (gate/admin.routes.ts), on routes of Space's own.
  const expected = createHash('sha256').update(d.adminToken).digest();
  const admin = async (request: FastifyRequest): Promise<void> => {
    const m = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
    const given = createHash('sha256').update(m?.[1] ?? '').digest();
    if (!m || !timingSafeEqual(given, expected)) throw errors.unauthenticated('Invalid admin token.');
  };
  app.register(async (r) => {
    r.addHook('onRequest', admin);
    r.get<{ Params: { id: string } }>('/admin/jobs/:id/events', async (req) => service.adminEvents(req.params.id));
    r.get<{ Params: { id: string } }>('/admin/nodes/:id/stats', async (req) => service.adminNodeStats(req.params.id, rangeOf(req.query, maxRangeDays)));
    r.get('/admin/node-stats', async (req) => service.adminNodeStats(null, rangeOf(req.query, maxRangeDays)));
  });
}
