// A namespace's jobs, searched (GET /v1/jobs): filters on status, model, API key and a time range, newest
// first, one page at a time. The cursor is the last job id of the previous page: a UUIDv7 carries its
// creation time, which is the row's `created_at` (migrations/0011), so the next page is the keyset
// `(created_at, id) < (time of cursor, cursor)` on the jobs_namespace_created index, with partition
// pruning, however deep the reader pages.
import type { Queryable } from './db.js';
import { JOB_COLUMNS, type JobRow } from './jobs.repository.js';
import type { JobStatus } from '../domain/job-states.js';
import { jobIdTime } from '../domain/job-ids.js';

export interface JobSearch {
  namespaceId: string;
  status?: JobStatus;
  model?: string;
  apiKeyId?: string;
  /** created_at >= since */
  since?: Date;
  /** created_at < until */
  until?: Date;
  /** The last id of the previous page. */
  after?: string;
  limit: number;
}

/** One page, newest first, and the cursor of the next (null on the last page). */
export async function searchJobs(q: Queryable, s: JobSearch): Promise<{ jobs: JobRow[]; next: string | null }> {
  const afterTime = s.after ? jobIdTime(s.after) : null;
  const r = await q.query<JobRow>(
    `SELECT ${JOB_COLUMNS} FROM jobs
      WHERE namespace_id = $1
        AND ($2::text IS NULL OR status = $2)
        AND ($3::text IS NULL OR model = $3)
        AND ($4::uuid IS NULL OR api_key_id = $4)
        AND ($5::timestamptz IS NULL OR created_at >= $5)
        AND ($6::timestamptz IS NULL OR created_at < $6)
        AND ($7::uuid IS NULL OR (created_at, id) < ($8::timestamptz, $7::uuid))
      ORDER BY created_at DESC, id DESC
      LIMIT $9`,
    [s.namespaceId, s.status ?? null, s.model ?? null, s.apiKeyId ?? null, s.since ?? null, s.until ?? null, afterTime ? s.after : null, afterTime, s.limit + 1],
  );
  const jobs = r.rows.slice(0, s.limit);
  return { jobs, next: r.rows.length > s.limit ? jobs[jobs.length - 1]!.id : null };
}

/**
 * How many of a namespace's jobs completed in a creation-time range (the live window's rows): what an
 * export of that range will hold at most, for a progress bar's total.
 */
export async function countCompletedJobs(q: Queryable, namespaceId: string, range: { since?: Date; until?: Date }): Promise<number> {
  const r = await q.query<{ n: number }>(
    `SELECT count(*)::float8 AS n FROM jobs WHERE namespace_id = $1 AND status = 'completed'
        AND ($2::timestamptz IS NULL OR created_at >= $2) AND ($3::timestamptz IS NULL OR created_at < $3)`,
    [namespaceId, range.since ?? null, range.until ?? null],
  );
  return r.rows[0]?.n ?? 0;
}
