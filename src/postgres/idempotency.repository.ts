// Idempotency keys for job submission (migrations/0002): one job per (namespace, key) per window.
import type { Queryable } from './db.js';
import { byId, JOB_BY_ID } from './jobs.repository.js';

export interface IdempotencyRecord {
  job_id: string;
  request_hash: Buffer;
}

/** The job a key names, if the key was used within the window. */
export async function findIdempotencyKey(q: Queryable, namespaceId: string, key: string, windowHours: number): Promise<IdempotencyRecord | null> {
  const r = await q.query<IdempotencyRecord>(
    `SELECT job_id, request_hash FROM idempotency_keys
      WHERE namespace_id = $1 AND key = $2 AND created_at > now() - make_interval(hours => $3)`,
    [namespaceId, key, windowHours],
  );
  return r.rows[0] ?? null;
}

/**
 * Claims a key for a job inside the accept transaction; a key last used before the window is taken over.
 * Returns false when the key is in use (a concurrent claim waits for the other transaction, then loses):
 * the caller must roll back and answer with the key's existing job.
 */
export async function claimIdempotencyKey(
  q: Queryable,
  c: { namespaceId: string; key: string; requestHash: Buffer; jobId: string; windowHours: number },
): Promise<boolean> {
  // The job was inserted just before, in this transaction; its partition key comes from its row.
  const r = await q.query(
    `INSERT INTO idempotency_keys (namespace_id, key, request_hash, job_id, job_created_at)
     SELECT $3, $4, $5, id, created_at FROM jobs WHERE ${JOB_BY_ID}
     ON CONFLICT (namespace_id, key) DO UPDATE
       SET request_hash = EXCLUDED.request_hash, job_id = EXCLUDED.job_id, job_created_at = EXCLUDED.job_created_at, created_at = now()
       WHERE idempotency_keys.created_at <= now() - make_interval(hours => $6)`,
    [...byId(c.jobId), c.namespaceId, c.key, c.requestHash, c.windowHours],
  );
  return (r.rowCount ?? 0) > 0;
}

/** Deletes keys past the window (maintenance). */
export async function deleteExpiredIdempotencyKeys(q: Queryable, windowHours: number, limit: number): Promise<number> {
  const r = await q.query(
    `DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(
       SELECT ctid FROM idempotency_keys WHERE created_at <= now() - make_interval(hours => $1) LIMIT $2))`,
    [windowHours, limit],
  );
  return r.rowCount ?? 0;
}
