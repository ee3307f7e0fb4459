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

/** Replaces a job's hold by what it was charged, in the month the job was created. */
export async function settleHold(q: Queryable, keyId: string, jobCreatedAt: Date, holdMicro: number, chargedMicro: number): Promise<void> {
  await q.query(
    `UPDATE api_key_monthly_spend SET committed_micro = committed_micro - $3 + $4 WHERE api_key_id = $1 AND month = ${MONTH_OF}`,
    [keyId, jobCreatedAt, holdMicro, chargedMicro],
  );
}

export async function monthlySpend(q: Queryable, keyId: string, at: Date): Promise<number> {
  const r = await q.query<{ committed_micro: number }>(`SELECT committed_micro FROM api_key_monthly_spend WHERE api_key_id = $1 AND month = ${MONTH_OF}`, [keyId, at]);
  return r.rows[0]?.committed_micro ?? 0;
}
