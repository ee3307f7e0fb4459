// Jobs in quarantine (migrations/0008): ended without a result, waiting for the platform's decision.
import type { Queryable } from './db.js';
import { byId, JOB_BY_ID } from './jobs.repository.js';

export interface QuarantineRow {
  job_id: string;
  namespace_id: string;
  model: string;
  status: string;
  reason: string;
  error_message: string | null;
  attempts: number;
  quarantined_at: Date;
}

/** Quarantines a job that just ended (the entry keeps its job's partition key: it goes with its day). */
export async function quarantineJob(q: Queryable, jobId: string, reason: string): Promise<void> {
  await q.query(
    `INSERT INTO quarantine (job_id, job_created_at, reason) SELECT id, created_at, $3 FROM jobs WHERE ${JOB_BY_ID} ON CONFLICT (job_id) DO NOTHING`,
    [...byId(jobId), reason],
  );
}

/** Open (undecided) entries, oldest first. */
export async function listQuarantine(q: Queryable, limit: number): Promise<QuarantineRow[]> {
  const r = await q.query<QuarantineRow>(
    `SELECT q.job_id, j.namespace_id, j.model, j.status, q.reason, j.error_message, j.attempt AS attempts, q.quarantined_at
       FROM quarantine q JOIN jobs j ON j.id = q.job_id AND j.created_at = q.job_created_at
      WHERE q.resolution IS NULL ORDER BY q.quarantined_at LIMIT $1`,
    [limit],
  );
  return r.rows;
}

/** Records the decision on an open entry; false when there is no open entry for the job. */
export async function resolveQuarantine(q: Queryable, jobId: string, resolution: 'requeued' | 'discarded', requeuedJobId: string | null): Promise<boolean> {
  const r = await q.query(
    `UPDATE quarantine SET resolution = $2, resolved_at = now(), requeued_job_id = $3 WHERE job_id = $1 AND resolution IS NULL`,
    [jobId, resolution, requeuedJobId],
  );
  return (r.rowCount ?? 0) > 0;
}

/** Locks an open entry for a decision (two admins deciding at once: one wins). */
export async function lockOpenQuarantine(q: Queryable, jobId: string): Promise<boolean> {
  const r = await q.query(`SELECT 1 FROM quarantine WHERE job_id = $1 AND resolution IS NULL FOR UPDATE`, [jobId]);
  return (r.rowCount ?? 0) > 0;
}
