// The one fact about a streamed job that must survive Redis: which attempt's tokens reached the client
// (migrations/0014_streaming.sql). Redis carries the tokens themselves (redis/job-streams.ts).
import type { Queryable } from './db.js';
import { byId, JOB_BY_ID } from './jobs.repository.js';

/**
 * Records that `attempt`'s tokens are about to reach the client, if that attempt has not ended (its
 * chunks exist, so it was dispatched: migrations/0018 for the fence) or is already recorded, for a second
 * reader of the same job. False when the attempt is no longer current:
 * its chunks must then not be forwarded. Row-locked like every job transition, so it and the attempt's
 * failure cannot both win: either the attempt fails first (and the caller forwards nothing of it) or the
 * record is made first (and the scheduler, seeing it, ends the job instead of retrying it).
 */
export async function commitStreamedAttempt(q: Queryable, jobId: string, attempt: number): Promise<boolean> {
  const r = await q.query(
    `UPDATE jobs SET streamed_attempt = $3
      WHERE ${JOB_BY_ID} AND finished_at IS NULL AND ((status <> 'running' AND attempt < $3) OR (status = 'running' AND attempt = $3))
        AND (streamed_attempt IS NULL OR streamed_attempt = $3)`,
    [...byId(jobId), attempt],
  );
  return (r.rowCount ?? 0) > 0;
}

/** The attempt whose tokens reached the client, or null when none did (the job may then be retried). */
export async function streamedAttempt(q: Queryable, jobId: string): Promise<number | null> {
  const r = await q.query<{ streamed_attempt: number | null }>(`SELECT streamed_attempt FROM jobs WHERE ${JOB_BY_ID}`, byId(jobId));
  return r.rows[0]?.streamed_attempt ?? null;
}
