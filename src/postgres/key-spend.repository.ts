// Per-key monthly spend (migrations/0003): what each API key has committed in a calendar month, holds
// plus charges, maintained in the accept and settlement transactions.
import type { Queryable } from './db.js';

/** The first day of the job's calendar month (UTC), as PostgreSQL's `date`. */
const MONTH_OF = `date_trunc('month', $2::timestamptz AT TIME ZONE 'UTC')::date`;

/**
 * A job's spend month: the calendar month (UTC) of its creation time, which its id carries (UUIDv7) and
 * its row's `created_at` equals. The hold and the settlement of a job must land in the same month's row,
 * and the id's time, not the accept transaction's clock, is what settleHolds sees later: an id minted at
 * 23:59:59.9 on the 31st whose transaction starts after midnight still counts in the month it ends.
 * An id without a time (a job accepted before ids carried one) counts in the current month.
 */
export function spendMonthOf(jobCreatedAt: Date | null): string {
  const t = jobCreatedAt ?? new Date();
  return `${t.getUTCFullYear()}-${String(t.getUTCMonth() + 1).padStart(2, '0')}-01`;
}

/** A key's row for one month. */
export interface KeyMonth {
  keyId: string;
  /** 'YYYY-MM-01' (spendMonthOf). */
  month: string;
}

export function keyMonthId(k: KeyMonth): string {
  return `${k.keyId} ${k.month}`;
}

/**
 * What each key has committed in each given month, locking the rows that exist until the transaction
 * ends (a key without a row has committed 0), by keyMonthId. For a batch of holds that checks caps
 * itself before committing them with commitHolds; the caller must hold the keys' namespace accounts
 * locked, which every writer of these rows takes first, so that no row appears or changes meanwhile.
 */
export async function lockMonthlySpend(q: Queryable, rows: readonly KeyMonth[]): Promise<Map<string, number>> {
  if (rows.length === 0) return new Map();
  const r = await q.query<{ api_key_id: string; month: string; committed_micro: number }>(
    `SELECT api_key_id, to_char(month, 'YYYY-MM-DD') AS month, committed_micro FROM api_key_monthly_spend
      WHERE (api_key_id, month) IN (SELECT * FROM unnest($1::uuid[], $2::date[]))
      ORDER BY api_key_id, month FOR UPDATE`,
    [rows.map((k) => k.keyId), rows.map((k) => k.month)],
  );
  return new Map(r.rows.map((row) => [keyMonthId({ keyId: row.api_key_id, month: row.month }), row.committed_micro]));
}

/**
 * Adds holds to their keys' months, summed per key and month, with no cap check: the caller checked the
 * caps against lockMonthlySpend under the same locks.
 */
export async function commitHolds(q: Queryable, holds: ReadonlyArray<KeyMonth & { holdMicro: number }>): Promise<void> {
  if (holds.length === 0) return;
  await q.query(
    `INSERT INTO api_key_monthly_spend (api_key_id, month, committed_micro)
     SELECT h.key_id, h.month, sum(h.hold) FROM unnest($1::uuid[], $2::date[], $3::bigint[]) AS h(key_id, month, hold)
      GROUP BY h.key_id, h.month ORDER BY h.key_id, h.month
     ON CONFLICT (api_key_id, month) DO UPDATE SET committed_micro = api_key_monthly_spend.committed_micro + EXCLUDED.committed_micro`,
    [holds.map((h) => h.keyId), holds.map((h) => h.month), holds.map((h) => h.holdMicro)],
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
