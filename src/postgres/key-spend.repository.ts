// Per-key monthly spend (migrations/0003): what each API key has committed in a calendar month, holds
// plus charges, maintained in the accept and settlement transactions.
import type { Queryable } from './db.js';

/** The first day of the job's calendar month (UTC), as PostgreSQL's `date`. */
const MONTH_OF = `date_trunc('month', $2::timestamptz AT TIME ZONE 'UTC')::date`;

/**
 * Adds a hold to the key's month, unless that would pass `capMicro` (null: no cap). Returns false, having
 * changed nothing, when the cap would be passed. Locks the key's month row until the transaction ends.
 */
export async function commitHold(q: Queryable, keyId: string, at: Date, holdMicro: number, capMicro: number | null): Promise<boolean> {
  if (capMicro !== null && holdMicro > capMicro) return false;
  const r = await q.query(
    `INSERT INTO api_key_monthly_spend (api_key_id, month, committed_micro) VALUES ($1, ${MONTH_OF}, $3)
     ON CONFLICT (api_key_id, month) DO UPDATE SET committed_micro = api_key_monthly_spend.committed_micro + EXCLUDED.committed_micro
       WHERE $4::bigint IS NULL OR api_key_monthly_spend.committed_micro + EXCLUDED.committed_micro <= $4::bigint`,
    [keyId, at, holdMicro, capMicro],
  );
  return (r.rowCount ?? 0) > 0;
}

/**
 * The month of the current transaction's start: the `created_at` of every job row the transaction
 * inserts, so that a batch checks and commits its holds in the month their jobs settle in (settleHold).
 */
const MONTH_OF_NOW = `date_trunc('month', now() AT TIME ZONE 'UTC')::date`;

/**
 * What each key has committed in this transaction's month, locking the rows that exist until the
 * transaction ends (a key without a row has committed 0). For a batch of holds that checks caps itself
 * before committing them with commitHolds; the caller must hold the keys' namespace accounts locked,
 * which every writer of these rows takes first, so that no row appears or changes meanwhile.
 */
export async function lockMonthlySpend(q: Queryable, keyIds: readonly string[]): Promise<Map<string, number>> {
  if (keyIds.length === 0) return new Map();
  const r = await q.query<{ api_key_id: string; committed_micro: number }>(
    `SELECT api_key_id, committed_micro FROM api_key_monthly_spend WHERE api_key_id = ANY($1::uuid[]) AND month = ${MONTH_OF_NOW}
      ORDER BY api_key_id FOR UPDATE`,
    [keyIds],
  );
  return new Map(r.rows.map((row) => [row.api_key_id, row.committed_micro]));
}

/**
 * Adds holds to their keys' month (this transaction's), summed per key, with no cap check: the caller
 * checked the caps against lockMonthlySpend under the same locks.
 */
export async function commitHolds(q: Queryable, holds: ReadonlyArray<{ keyId: string; holdMicro: number }>): Promise<void> {
  if (holds.length === 0) return;
  await q.query(
    `INSERT INTO api_key_monthly_spend (api_key_id, month, committed_micro)
     SELECT h.key_id, ${MONTH_OF_NOW}, sum(h.hold) FROM unnest($1::uuid[], $2::bigint[]) AS h(key_id, hold) GROUP BY h.key_id ORDER BY h.key_id
     ON CONFLICT (api_key_id, month) DO UPDATE SET committed_micro = api_key_monthly_spend.committed_micro + EXCLUDED.committed_micro`,
    [holds.map((h) => h.keyId), holds.map((h) => h.holdMicro)],
  );
}

/** Replaces a job's hold by what it was charged, in the month the job was created. */
export async function settleHold(q: Queryable, keyId: string, jobCreatedAt: Date, holdMicro: number, chargedMicro: number): Promise<void> {
  await settleHolds(q, [{ keyId, jobCreatedAt, holdMicro, chargedMicro }]);
}

/** settleHold for several jobs in one statement (summed per key and month). */
export async function settleHolds(
  q: Queryable,
  jobs: ReadonlyArray<{ keyId: string; jobCreatedAt: Date; holdMicro: number; chargedMicro: number }>,
): Promise<void> {
  if (jobs.length === 0) return;
  await q.query(
    `UPDATE api_key_monthly_spend s SET committed_micro = s.committed_micro + d.delta
       FROM (SELECT key_id, date_trunc('month', created_at AT TIME ZONE 'UTC')::date AS month, sum(delta) AS delta
               FROM unnest($1::uuid[], $2::timestamptz[], $3::bigint[]) AS j(key_id, created_at, delta) GROUP BY 1, 2) d
      WHERE s.api_key_id = d.key_id AND s.month = d.month`,
    [jobs.map((j) => j.keyId), jobs.map((j) => j.jobCreatedAt), jobs.map((j) => j.chargedMicro - j.holdMicro)],
  );
}

export async function monthlySpend(q: Queryable, keyId: string, at: Date): Promise<number> {
  const r = await q.query<{ committed_micro: number }>(`SELECT committed_micro FROM api_key_monthly_spend WHERE api_key_id = $1 AND month = ${MONTH_OF}`, [keyId, at]);
  return r.rows[0]?.committed_micro ?? 0;
}
