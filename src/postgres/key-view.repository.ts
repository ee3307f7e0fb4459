// The key holder's own view (GET /v1/key, GET /v1/credits): one read of its key row, its namespace's
// ledger accounts and its spend this month, for the self-service endpoints (never on a job's path).
import type { Queryable } from './db.js';

export interface KeyViewRow {
  name: string;
  key_prefix: string;
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
  monthly_cap_micro: number | null;
  rate_limit_rps: number | null;
  rate_limit_burst: number | null;
  /** Holds plus charges of this key's jobs created this calendar month (UTC). */
  month_committed_micro: number;
  available_micro: number;
  held_micro: number;
}

export async function readKeyView(q: Queryable, keyId: string, namespaceId: string): Promise<KeyViewRow | null> {
  const r = await q.query<KeyViewRow>(
    `SELECT k.name, k.key_prefix, k.created_at, k.expires_at, k.last_used_at, k.monthly_cap_micro, k.rate_limit_rps, k.rate_limit_burst,
            coalesce((SELECT s.committed_micro FROM api_key_monthly_spend s
                       WHERE s.api_key_id = k.id AND s.month = date_trunc('month', now() AT TIME ZONE 'UTC')::date), 0)::bigint AS month_committed_micro,
            coalesce((SELECT a.balance FROM ledger_accounts a WHERE a.kind = 'ns_available' AND a.owner_id = k.namespace_id), 0)::bigint AS available_micro,
            coalesce((SELECT a.balance FROM ledger_accounts a WHERE a.kind = 'ns_held' AND a.owner_id = k.namespace_id), 0)::bigint AS held_micro
       FROM api_keys k WHERE k.id = $1 AND k.namespace_id = $2 AND k.revoked_at IS NULL`,
    [keyId, namespaceId],
  );
  const row = r.rows[0];
  if (!row) return null;
  return {
    ...row,
    monthly_cap_micro: row.monthly_cap_micro === null ? null : Number(row.monthly_cap_micro),
    month_committed_micro: Number(row.month_committed_micro),
    available_micro: Number(row.available_micro),
    held_micro: Number(row.held_micro),
  };
}
