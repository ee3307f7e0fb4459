// The credit ledger in PostgreSQL. Double entry: every transaction's entries sum to zero (the database
// checks it at commit), entries are never updated or deleted (a trigger refuses). Each namespace
// account's `balance` (and the funding account's) is maintained in the same transaction, so balance
// checks are one row lock away. The network-wide receiving accounts (operator earnings, platform
// revenue) are different: every settlement in the network credits them, and a cached balance there
// would serialise all settlements on one row lock held through each commit. Their balance is the sum of
// their entries, computed when read; their `balance` column stays 0.
import type { Queryable } from './db.js';
import type { LedgerAccountKind, LedgerTxnKind, Posting } from '../domain/postings.js';

export type { LedgerAccountKind, LedgerTxnKind } from '../domain/postings.js';

export interface LedgerEntry {
  accountId: number;
  amount: number;
}

/** Raised when a posting would take an account below zero; the caller's transaction must roll back. */
export class InsufficientBalanceError extends Error {
  constructor(readonly accountId: number, options?: { cause?: unknown }) {
    super(`ledger account ${accountId} cannot go below zero`, options);
    this.name = 'InsufficientBalanceError';
  }
}

/**
 * Ledger account ids never change once created, so the ids of owned accounts are cached in process (safe
 * with any number of instances; owners are random UUIDs, so the cache stays right even for a process that
 * talks to several databases, as the tests do). The two ownerless accounts (funding, platform revenue)
 * are looked up each time: their ids are per database. A miss reads first and inserts only when the
 * account does not exist: INSERT ... ON CONFLICT on an existing row would wait for any open transaction
 * that updated that row's balance.
 */
const accountIds = new Map<string, number>();
/** Ids never change kind, and a sequence never reuses an id, so this is safe to fill from any transaction. */
const kindById = new Map<number, LedgerAccountKind>();

/** Kinds whose balance is derived from their entries instead of a maintained column (see the head of this file). */
const DERIVED: ReadonlySet<LedgerAccountKind> = new Set(['operator_earnings', 'platform_revenue']);

/** Returns the account's id, creating the account on first use. */
export async function ledgerAccountId(q: Queryable, kind: LedgerAccountKind, ownerId: string | null): Promise<number> {
  const cacheKey = `${kind}/${ownerId ?? ''}`;
  const cached = accountIds.get(cacheKey);
  if (cached !== undefined) return cached;
  const select = () =>
    q.query<{ id: number }>(`SELECT id FROM ledger_accounts WHERE kind = $1 AND owner_id IS NOT DISTINCT FROM $2`, [kind, ownerId]);
  let id = (await select()).rows[0]?.id;
  if (id === undefined) {
    const inserted = await q.query<{ id: number }>(
      `INSERT INTO ledger_accounts (kind, owner_id) VALUES ($1, $2) ON CONFLICT (kind, owner_id) DO NOTHING RETURNING id`,
      [kind, ownerId],
    );
    id = inserted.rows[0]?.id ?? (await select()).rows[0]?.id;
    if (id === undefined) throw new Error(`ledger account ${cacheKey} could not be created`);
    kindById.set(id, kind);
    // Created inside the caller's transaction, which may still roll back: cache only what already existed.
    return id;
  }
  kindById.set(id, kind);
  if (ownerId !== null) accountIds.set(cacheKey, id);
  return id;
}

export async function balanceOf(q: Queryable, kind: LedgerAccountKind, ownerId: string | null): Promise<number> {
  const r = DERIVED.has(kind)
    ? await q.query<{ balance: string }>(
        `SELECT coalesce(sum(e.amount), 0)::text AS balance FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
          WHERE a.kind = $1 AND a.owner_id IS NOT DISTINCT FROM $2`,
        [kind, ownerId],
      )
    : await q.query<{ balance: number }>(`SELECT balance FROM ledger_accounts WHERE kind = $1 AND owner_id IS NOT DISTINCT FROM $2`, [kind, ownerId]);
  return Number(r.rows[0]?.balance ?? 0);
}

/**
 * Locks ledger accounts in id order (FOR NO KEY UPDATE) and returns their balances as of the lock. A
 * database transaction that posts more than once must first lock every account it will touch with this,
 * or two of them could lock in opposite orders across their postings.
 */
export async function lockAccounts(q: Queryable, ids: readonly number[]): Promise<Map<number, number>> {
  if (ids.length === 0) return new Map();
  const r = await q.query<{ id: number; balance: number }>(
    `SELECT id, balance FROM ledger_accounts WHERE id = ANY($1::bigint[]) ORDER BY id FOR NO KEY UPDATE`,
    [ids],
  );
  return new Map(r.rows.map((row) => [row.id, row.balance]));
}

export interface LedgerPosting {
  kind: LedgerTxnKind;
  jobId: string | null;
  memo?: string;
  entries: readonly LedgerEntry[];
}

/**
 * Writes a posting built by domain/postings.ts, its accounts resolved (created on first use). Must run
 * inside the caller's database transaction; same errors as postTransaction. Returns the transaction's id,
 * null when nothing moved.
 */
export async function post(q: Queryable, p: Posting): Promise<number | null> {
  const entries: LedgerEntry[] = [];
  for (const line of p.lines) entries.push({ accountId: await ledgerAccountId(q, line.account.kind, line.account.owner), amount: line.amount });
  return postTransaction(q, { kind: p.kind, jobId: p.jobId, ...(p.memo === undefined ? {} : { memo: p.memo }) }, entries);
}

/**
 * Posts one balanced transaction. Zero amounts are dropped; a transaction left with no entries is not
 * written. Must run inside the caller's database transaction. Throws InsufficientBalanceError when an
 * account would go negative (the per-account CHECK), leaving that transaction to roll back.
 */
export async function postTransaction(
  q: Queryable,
  txn: { kind: LedgerTxnKind; jobId: string | null; memo?: string },
  entries: readonly LedgerEntry[],
): Promise<number | null> {
  const [id] = await postTransactions(q, [{ ...txn, entries }]);
  return id ?? null;
}

/**
 * Posts several balanced transactions with two statements whatever their number (the group-commit path
 * posts a whole batch of holds or settlements at once). Returns each posting's transaction id, in order
 * (null for a posting left with no entries). Same rules and errors as postTransaction; on an error
 * nothing is written, but the caller's database transaction must still roll back.
 */
export async function postTransactions(q: Queryable, postings: readonly LedgerPosting[]): Promise<Array<number | null>> {
  const written: Array<{ index: number; posting: LedgerPosting; entries: LedgerEntry[] }> = [];
  postings.forEach((posting, index) => {
    const entries = posting.entries.filter((e) => e.amount !== 0);
    if (entries.length === 0) return;
    if (entries.reduce((s, e) => s + e.amount, 0) !== 0) throw new Error(`unbalanced ${posting.kind} transaction`);
    written.push({ index, posting, entries });
  });
  const ids: Array<number | null> = postings.map(() => null);
  if (written.length === 0) return ids;

  const all = written.flatMap((w) => w.entries);
  // Only accounts with a maintained balance are locked and updated (see the head of this file).
  const maintained = all.filter((e) => !DERIVED.has(kindOf(e.accountId)));
  // Lock them first, in id order, so that concurrent postings take their row locks in one global order
  // and cannot deadlock. Before the entries are inserted: their foreign keys take KEY SHARE locks on the
  // same rows, and two transactions each holding one and upgrading would deadlock. NO KEY UPDATE is the
  // lock the balance UPDATE needs, and it does not conflict with those KEY SHARE locks.
  await lockAccounts(q, [...new Set(maintained.map((e) => e.accountId))]);

  // One statement writes the transactions, their entries and the balances. Transaction ids are drawn
  // from the sequence up front (the materialized `t`), so each entry knows its transaction without
  // relying on the order of RETURNING. The deferred trigger still checks every transaction at COMMIT.
  const nth = written.flatMap((w, i) => w.entries.map(() => i + 1));
  try {
    const r = await q.query<{ n: number; id: number }>(
      `WITH t AS MATERIALIZED (
         SELECT u.n, nextval(pg_get_serial_sequence('ledger_transactions', 'id')) AS id, u.kind, u.job_id, u.memo
           FROM unnest($1::text[], $2::uuid[], $3::text[]) WITH ORDINALITY AS u(kind, job_id, memo, n)
       ), txns AS (
         INSERT INTO ledger_transactions (id, kind, job_id, memo) SELECT id, kind, job_id, memo FROM t
       ), entries AS (
         INSERT INTO ledger_entries (txn_id, account_id, amount)
         SELECT t.id, e.account_id, e.amount FROM unnest($4::int[], $5::bigint[], $6::bigint[]) AS e(n, account_id, amount) JOIN t ON t.n = e.n
       ), balances AS (
         UPDATE ledger_accounts la SET balance = la.balance + d.amount
           FROM (SELECT account_id, sum(amount) AS amount FROM unnest($7::bigint[], $8::bigint[]) AS m(account_id, amount) GROUP BY account_id) d
          WHERE la.id = d.account_id
         RETURNING la.owner_id, la.kind, la.balance - d.amount AS before, la.balance AS after
       ), credits_low AS (
         -- The credits.low webhook messages of a namespace whose available credits this posting took below
         -- an endpoint's threshold (a storage charge, an adjustment), in this statement as accept_jobs
         -- writes them for holds (migrations/0025).
         INSERT INTO webhook_messages (id, endpoint_id, event_type, payload)
         SELECT webhook_message_id(), w.id, 'credits.low', webhook_credits_low_payload(b.owner_id, b.after, w.low_credits_threshold_micro)
           FROM balances b JOIN webhook_endpoints w ON w.namespace_id = b.owner_id AND w.disabled_at IS NULL AND 'credits.low' = ANY (w.events)
          WHERE b.kind = 'ns_available' AND b.before >= w.low_credits_threshold_micro AND b.after < w.low_credits_threshold_micro
       )
       SELECT n::int AS n, id FROM t`,
      [
        written.map((w) => w.posting.kind),
        written.map((w) => w.posting.jobId),
        written.map((w) => w.posting.memo ?? ''),
        nth,
        all.map((e) => e.accountId),
        all.map((e) => e.amount),
        maintained.map((e) => e.accountId),
        maintained.map((e) => e.amount),
      ],
    );
    for (const row of r.rows) ids[written[row.n - 1]!.index] = row.id;
  } catch (err) {
    if ((err as { code?: string }).code === '23514') throw new InsufficientBalanceError(all[0]!.accountId, { cause: err });
    throw err;
  }
  return ids;
}

function kindOf(accountId: number): LedgerAccountKind {
  const kind = kindById.get(accountId);
  // Every posting names accounts obtained from ledgerAccountId in this process, which records their kind.
  if (kind === undefined) throw new Error(`ledger account ${accountId} was not resolved through ledgerAccountId`);
  return kind;
}

export interface LedgerTotals {
  /** Sum of every entry ever written: zero when the ledger balances. */
  entriesTotal: number;
  /** Sum of every account's balance (maintained ones as cached, derived ones from their entries): must be zero. */
  balancesTotal: number;
  /** Accounts whose maintained balance differs from the sum of their entries. */
  mismatchedAccounts: number;
}

export async function ledgerTotals(q: Queryable): Promise<LedgerTotals> {
  const r = await q.query<{ entries_total: string; balances_total: string; mismatched: number }>(
    `SELECT (SELECT coalesce(sum(amount), 0) FROM ledger_entries)::text AS entries_total,
            ((SELECT coalesce(sum(balance), 0) FROM ledger_accounts WHERE kind <> ALL($1::text[]))
             + (SELECT coalesce(sum(e.amount), 0) FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
                 WHERE a.kind = ANY($1::text[])))::text AS balances_total,
            (SELECT count(*)::int FROM ledger_accounts la
              WHERE la.kind <> ALL($1::text[])
                AND la.balance <> (SELECT coalesce(sum(amount), 0) FROM ledger_entries e WHERE e.account_id = la.id)) AS mismatched`,
    [[...DERIVED]],
  );
  const row = r.rows[0]!;
  return { entriesTotal: Number(row.entries_total), balancesTotal: Number(row.balances_total), mismatchedAccounts: row.mismatched };
}
