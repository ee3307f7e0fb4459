// The key holder's own view, as OpenRouter's `GET /api/v1/key` and `GET /api/v1/credits` give it:
// GET /v1/key (this key: its label, monthly cap and what is left of it, rate limits, expiry) and
// GET /v1/credits (its namespace's credits: available and held for running jobs). Amounts are credits as
// decimal strings, like every amount of this API. Read on demand, never on a job's path.
import { errors, formatCredits } from '../errors.js';
import type { Db } from '../postgres/db.js';
import { readKeyView } from '../postgres/key-view.repository.js';
import type { Principal } from './auth.service.js';

const iso = (d: Date | null) => (d === null ? null : d.toISOString());

/** `defaults`: the rate limits a key without its own gets (RATE_LIMIT_RPS, RATE_LIMIT_BURST). */
export async function keyView(db: Db, p: Principal, defaults: { rps: number; burst: number }) {
  const row = await readKeyView(db, p.keyId, p.namespaceId);
  if (!row) throw errors.unauthenticated(); // revoked between the cached look-up and this read
  const rps = row.rate_limit_rps ?? defaults.rps;
  const left = row.monthly_cap_micro === null ? null : Math.max(0, row.monthly_cap_micro - row.month_committed_micro);
  return {
    data: {
      label: row.name || row.key_prefix,
      key_prefix: row.key_prefix,
      namespace_id: p.namespaceId,
      // OpenRouter's names: `limit` is the monthly cap (null: none), `usage` this month's holds and charges.
      limit: row.monthly_cap_micro === null ? null : formatCredits(row.monthly_cap_micro),
      limit_reset: 'monthly' as const,
      usage: formatCredits(row.month_committed_micro),
      limit_remaining: left === null ? null : formatCredits(left),
      rate_limit: { requests_per_second: rps, burst: row.rate_limit_burst ?? Math.max(rps, defaults.burst) },
      created_at: row.created_at.toISOString(),
      expires_at: iso(row.expires_at),
      last_used_at: iso(row.last_used_at),
    },
  };
}

export async function creditsView(db: Db, p: Principal) {
  const row = await readKeyView(db, p.keyId, p.namespaceId);
  if (!row) throw errors.unauthenticated();
  return {
    data: {
      namespace_id: p.namespaceId,
      available: formatCredits(row.available_micro),
      held: formatCredits(row.held_micro),
      // OpenRouter's `total_credits`: what the namespace holds in all, spendable or held for running jobs.
      total_credits: formatCredits(row.available_micro + row.held_micro),
    },
  };
}
