// GET /v1/jobs (Resultity extension): the key's namespace's jobs, newest first, filtered by status (as
// stored: a job in flight shows as queued), model, API key id and a creation-time range, one page at a
// time. Query: status, model, api_key_id, since and until (ISO 8601 or Unix seconds), after (the
// `next_cursor` of the previous page), limit (1..100, default 20). Metadata only, never a node's identity
// nor a payload: GET /v1/jobs/{id} has the job's result.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { routeSchema } from '../openapi/route-schema.js';
import type { Db } from '../postgres/db.js';
import { searchJobs } from '../postgres/job-search.repository.js';
import type { JobRow } from '../postgres/jobs.repository.js';
import { TERMINAL_STATUSES } from '../domain/job-states.js';
import { errors, formatCredits } from '../errors.js';
import { toCsv } from '../domain/csv.js';
import type { PayloadsRepository } from '../mongo/payloads.repository.js';
import type { SpaceJobs } from './space-jobs.service.js';
import { Readable } from 'node:stream';

const time = z.union([z.string().regex(/^\d{1,12}$/).transform((s) => new Date(Number(s) * 1000)), z.iso.datetime({ offset: true }).transform((s) => new Date(s))]);

const querySchema = z
  .object({
    status: z.enum(['queued', 'running', ...TERMINAL_STATUSES]).optional(),
    model: z.string().min(1).max(200).optional(),
    api_key_id: z.uuid().optional(),
    since: time.optional(),
    until: time.optional(),
    after: z.uuid().optional(),
    limit: z.coerce.number().int().min(1).max(100).default(20),
  })
  .strict();

export const exportSchema = z
  .object({
    format: z.enum(['ndjson', 'csv']).default('ndjson'),
    since: time.optional(),
    until: time.optional(),
  })
  .strict();

const CSV_COLUMNS = ['job_id', 'attempt', 'model', 'at', 'prompt_tokens', 'completion_tokens', 'input', 'output'] as const;
type CsvRow = Record<(typeof CSV_COLUMNS)[number], unknown>;

/**
 * The namespace's retained results (GET /v1/jobs/export): one line per result, streamed from MongoDB's
 * cursor as the client reads (the reply's backpressure paces it), so memory stays that of one batch
 * however many jobs are exported. Results expired or never stored (the zero plan) are not in it.
 */
export async function* exportLines(payloads: PayloadsRepository, namespaceId: string, q: z.infer<typeof exportSchema>): AsyncGenerator<string> {
  const header = CSV_COLUMNS.join(',');
  if (q.format === 'csv') yield `${header}\r\n`;
  for await (const r of payloads.streamResults(namespaceId, { ...(q.since ? { since: q.since } : {}), ...(q.until ? { until: q.until } : {}) })) {
    if (q.format === 'ndjson') {
      yield `${JSON.stringify({ job_id: r.jobId, attempt: r.attempt, model: r.model, at: r.at, usage: r.usage, input: r.input ?? null, output: r.output })}\n`;
    } else {
      const row: CsvRow = { job_id: r.jobId, attempt: r.attempt, model: r.model, at: r.at, prompt_tokens: r.usage.prompt_tokens, completion_tokens: r.usage.completion_tokens, input: r.input?.messages ?? null, output: r.output.content };
      yield toCsv(CSV_COLUMNS, [row]).slice(header.length + 2);
    }
  }
}

const jobIdParams = z.object({ id: z.string().describe('The job id (x-resultity-job-id).') });

export function jobSearchRoutes(v1: FastifyInstance, d: { db: Db; payloads?: PayloadsRepository; spaceJobs?: SpaceJobs }): void {
  const spaceJobs = d.spaceJobs;
  if (spaceJobs) {
    // Crypto-shreds a finished job's payloads (their keys destroyed: unreadable at once, wherever a copy is);
    // the job's metadata, usage and charge stay. 409 for a job not finished yet.
    v1.delete<{ Params: { id: string } }>('/v1/jobs/:id', { schema: routeSchema({ summary: "Deletes a finished job's payloads (crypto-shredded at once); its metadata and charge stay", tags: ['Public API'], auth: 'apiKey', params: jobIdParams }) }, async (request) => {
      const p = request.principal;
      if (!p) throw errors.unauthenticated();
      return spaceJobs.deleteJob(p.namespaceId, request.params.id);
    });
  }

  const payloads = d.payloads;
  if (payloads) {
    v1.get('/v1/jobs/export', { schema: routeSchema({ summary: "The namespace's retained results, streamed as NDJSON or CSV", tags: ['Public API'], auth: 'apiKey', querystring: exportSchema }) }, async (request, reply) => {
      const parsed = exportSchema.safeParse(request.query ?? {});
      if (!parsed.success) throw errors.invalidInput(parsed.error.issues, 'Invalid query.');
      const p = request.principal;
      if (!p) throw errors.unauthenticated();
      reply.header('content-type', parsed.data.format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson');
      reply.header('cache-control', 'no-store');
      return reply.send(Readable.from(exportLines(payloads, p.namespaceId, parsed.data)));
    });
  }

  v1.get('/v1/jobs', { schema: routeSchema({ summary: "The namespace's jobs, newest first, filtered and paged by cursor", tags: ['Public API'], auth: 'apiKey', querystring: querySchema }) }, async (request) => {
    const parsed = querySchema.safeParse(request.query ?? {});
    if (!parsed.success) throw errors.invalidInput(parsed.error.issues, 'Invalid query.');
    const p = request.principal;
    if (!p) throw errors.unauthenticated();
    const q = parsed.data;
    const page = await searchJobs(d.db, {
      namespaceId: p.namespaceId,
      ...(q.status ? { status: q.status } : {}),
      ...(q.model ? { model: q.model } : {}),
      ...(q.api_key_id ? { apiKeyId: q.api_key_id } : {}),
      ...(q.since ? { since: q.since } : {}),
      ...(q.until ? { until: q.until } : {}),
      ...(q.after ? { after: q.after } : {}),
      limit: q.limit,
    });
    return { object: 'list', data: page.jobs.map(jobSummary), has_more: page.next !== null, next_cursor: page.next };
  });
}

function jobSummary(job: JobRow) {
  return {
    id: job.id,
    object: 'chat.completion.job' as const,
    status: job.status,
    model: job.model,
    priority: job.priority,
    api_key_id: job.api_key_id,
    created: Math.floor(job.created_at.getTime() / 1000),
    finished: job.finished_at ? Math.floor(job.finished_at.getTime() / 1000) : null,
    usage: job.prompt_tokens === null ? null : { prompt_tokens: job.prompt_tokens, completion_tokens: job.completion_tokens ?? 0 },
    credits_charged: job.charged_micro === null ? null : formatCredits(job.charged_micro),
    error: job.error_code === null ? null : { code: job.error_code, message: job.error_message },
  };
}
