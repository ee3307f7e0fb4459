// What one account holds, counted for its quotas (ACCOUNT_MAX_NAMESPACES, ACCOUNT_MAX_API_KEYS).
import type { Queryable } from './db.js';

/**
 * Locks the account's row until the transaction ends, so that two creations for one account are counted
 * one after the other and cannot both pass a quota with one place left. NO KEY UPDATE: it does not wait
 * for (or block) the foreign-key checks of rows that merely refer to the account. False: no such account.
 */
export async function lockAccountForQuota(q: Queryable, accountId: string): Promise<boolean> {
  const r = await q.query(`SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE`, [accountId]);
  return r.rowCount === 1;
}

/** The account's live (not deleted) namespaces. */
export async function countLiveNamespaces(q: Queryable, accountId: string): Promise<number> {
  const r = await q.query<{ n: number }>(`SELECT count(*)::int AS n FROM namespaces WHERE account_id = $1 AND deleted_at IS NULL`, [accountId]);
  return r.rows[0]!.n;
}

/** The account's API keys that still work: not revoked, not expired, of a live namespace. */
export async function countActiveApiKeys(q: Queryable, accountId: string): Promise<number> {
  const r = await q.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM api_keys k JOIN namespaces n ON n.id = k.namespace_id
      WHERE n.account_id = $1 AND n.deleted_at IS NULL AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())`,
    [accountId],
  );
  return r.rows[0]!.n;
}

/**
 * Carries a rotated key's spend of the current month (UTC) over to the key that replaces it, so that its
 * monthly cap goes on counting from where the old key left it, not from zero. What the old key holds
 * for jobs still running is carried at the hold's full amount (their settlement lowers the old key's row
 * only): the new key's room under its cap is at worst that much smaller, never larger.
 */
export async function carryMonthlySpend(q: Queryable, fromKeyId: string, toKeyId: string): Promise<void> {
  await q.query(
    `INSERT INTO api_key_monthly_spend (api_key_id, month, committed_micro)
     SELECT $2, month, committed_micro FROM api_key_monthly_spend
      WHERE api_key_id = $1 AND month = date_trunc('month', now() AT TIME ZONE 'UTC')::date
     ON CONFLICT (api_key_id, month) DO UPDATE SET committed_micro = api_key_monthly_spend.committed_micro + EXCLUDED.committed_micro`,
    [fromKeyId, toKeyId],
  );
}
