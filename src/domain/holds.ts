// The rule that decides which credit holds a batch may take: the decision accept_jobs makes in one
// PostgreSQL statement (migrations/0019_hot_path_pruning.sql), stated here without an engine so that it
// can be read, tested in milliseconds, and checked against the statement itself
// (test/integration/hold-rules.test.ts runs random batches through both and compares every outcome).
//
// Each candidate is decided in submission order against the running state, exactly as if each had run
// alone: a hold that does not fit is refused on its own and the others go on. In order:
//   1. past its deadline: refused (no job may land in a day after the day's end plus the longest deadline);
//   2. its idempotency key already used within the window, or earlier in the same batch: refused;
//   3. more than the namespace's available credits: insufficient_credits, with what is available;
//   4. its key's monthly cap would be passed: monthly_cap_reached, with what is left of the cap;
//   5. otherwise accepted: the hold leaves the available balance and counts in the key's month.

/**
 * A job's spend month: the calendar month (UTC) of its creation time (its id's, UUIDv7), as 'YYYY-MM-01'.
 * Its hold and its settlement land in the same month's row: an id minted at 23:59:59.9 on the 31st whose
 * transaction starts after midnight still counts in the month it ends. No time: the current month.
 */
export function spendMonthOf(jobCreatedAt: Date | null): string {
  const t = jobCreatedAt ?? new Date();
  return `${t.getUTCFullYear()}-${String(t.getUTCMonth() + 1).padStart(2, '0')}-01`;
}

export interface HoldCandidate {
  namespaceId: string;
  apiKeyId: string;
  holdMicro: number;
  /** The key's monthly cap, null when it has none. */
  monthlyCapMicro: number | null;
  /** The job's creation time (its spend month); null: now. */
  createdAt: Date | null;
  deadlineAt: Date;
  idempotencyKey: string | null;
}

/** What the namespaces and keys concerned stand at before the batch. */
export interface HoldBook {
  /** Available credits per namespace (a namespace not listed has 0). */
  available: ReadonlyMap<string, number>;
  /** Committed spend per `${keyId} ${month}` (spendKey); a key-month not listed has 0. */
  monthlySpent: ReadonlyMap<string, number>;
  /** `${namespaceId} ${key}` of idempotency keys in use within their window. */
  idempotencyKeysInUse: ReadonlySet<string>;
}

export type HoldDecision =
  | { outcome: 'accepted' }
  | { outcome: 'past_deadline' }
  | { outcome: 'idempotency_key_in_use' }
  | { outcome: 'insufficient_credits'; availableMicro: number }
  | { outcome: 'monthly_cap_reached'; capLeftMicro: number };

export const spendKey = (apiKeyId: string, month: string) => `${apiKeyId} ${month}`;

/** One decision per candidate, in order, and the book as it stands after the accepted holds. */
export function decideHolds(book: HoldBook, candidates: readonly HoldCandidate[], now: Date): { decisions: HoldDecision[]; after: HoldBook } {
  const available = new Map(book.available);
  const monthlySpent = new Map(book.monthlySpent);
  const idempotencyKeysInUse = new Set(book.idempotencyKeysInUse);
  const decisions = candidates.map((c): HoldDecision => {
    if (c.deadlineAt.getTime() <= now.getTime()) return { outcome: 'past_deadline' };
    const idem = c.idempotencyKey === null ? null : `${c.namespaceId} ${c.idempotencyKey}`;
    if (idem !== null && idempotencyKeysInUse.has(idem)) return { outcome: 'idempotency_key_in_use' };
    const balance = available.get(c.namespaceId) ?? 0;
    if (balance < c.holdMicro) return { outcome: 'insufficient_credits', availableMicro: balance };
    const month = spendKey(c.apiKeyId, spendMonthOf(c.createdAt));
    const spent = monthlySpent.get(month) ?? 0;
    if (c.monthlyCapMicro !== null && spent + c.holdMicro > c.monthlyCapMicro) {
      return { outcome: 'monthly_cap_reached', capLeftMicro: Math.max(0, c.monthlyCapMicro - spent) };
    }
    available.set(c.namespaceId, balance - c.holdMicro);
    monthlySpent.set(month, spent + c.holdMicro);
    if (idem !== null) idempotencyKeysInUse.add(idem);
    return { outcome: 'accepted' };
  });
  return { decisions, after: { available, monthlySpent, idempotencyKeysInUse } };
}
