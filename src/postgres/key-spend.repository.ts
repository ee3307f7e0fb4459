// Per-key monthly spend (migrations/0003): what each API key has committed in a calendar month, holds
// plus charges, maintained in the accept and settlement transactions. A job's month is that of its
// creation time (domain/holds.ts spendMonthOf), so its hold and its settlement land in the same row.
import type { Queryable } from './db.js';

/** The first day of the job's calendar month (UTC), as PostgreSQL's `date`. */
const MONTH_OF = `date_trunc('month', $2::timestamptz AT TIME ZONE 'UTC')::date`;

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
