// The credit ledger in PostgreSQL. Double entry: every transaction's entries sum to zero (the database
// checks it at commit), entries are never updated or deleted (a trigger refuses). Each namespace
// account's `balance` (and the funding account's) is maintained in the same transaction, so balance
// checks are one row lock away. The network-wide receiving accounts (operator earnings, platform
// revenue) are different: every settlement in the network credits them, and a cached balance there
// would serialise all settlements on one row lock held through each commit. Their balance is the sum of
// their entries, computed when read; their `balance` column stays 0.
import type { Queryable } from './db.js';

export type LedgerAccountKind = 'funding' | 'ns_available' | 'ns_held' | 'operator_earnings' | 'operator_withdrawal' | 'platform_revenue';
export type LedgerTxnKind = 'topup' | 'hold' | 'capture' | 'release' | 'withdrawal';

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
 * Locks ledger accounts in id order (FOR NO KEY UPDATE). A database transaction that posts more than
 * once must first lock every account it will touch with this, or two of them could lock in opposite
 * orders across their postings.
 */
export async function lockAccounts(q: Queryable, ids: readonly number[]): Promise<void> {
  await q.query(`SELECT 1 FROM ledger_accounts WHERE id = ANY($1::bigint[]) ORDER BY id FOR NO KEY UPDATE`, [ids]);
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
  const nonZero = entries.filter((e) => e.amount !== 0);
  if (nonZero.length === 0) return null;
  if (nonZero.reduce((s, e) => s + e.amount, 0) !== 0) throw new Error(`unbalanced ${txn.kind} transaction`);

  const accounts = nonZero.map((e) => e.accountId);
  const amounts = nonZero.map((e) => e.amount);
  // Only accounts with a maintained balance are locked and updated (see the head of this file).
  const maintained = nonZero.filter((e) => !DERIVED.has(kindOf(e.accountId)));
  // Lock them first, in id order, so that concurrent postings take their row locks in one global order
  // and cannot deadlock. Before the entries are inserted: their foreign keys take KEY SHARE locks on the
  // same rows, and two transactions each holding one and upgrading would deadlock. NO KEY UPDATE is the
  // lock the balance UPDATE needs, and it does not conflict with those KEY SHARE locks.
  await lockAccounts(q, maintained.map((e) => e.accountId));

  const t = await q.query<{ id: number }>(`INSERT INTO ledger_transactions (kind, job_id, memo) VALUES ($1, $2, $3) RETURNING id`, [
    txn.kind,
    txn.jobId,
    txn.memo ?? '',
  ]);
  const txnId = t.rows[0]!.id;
  await q.query(
    `INSERT INTO ledger_entries (txn_id, account_id, amount) SELECT $1, a, m FROM unnest($2::bigint[], $3::bigint[]) AS u(a, m)`,
    [txnId, accounts, amounts],
  );
  if (maintained.length === 0) return txnId;
  try {
    await q.query(
      `UPDATE ledger_accounts la SET balance = la.balance + d.m
         FROM (SELECT a, sum(m) AS m FROM unnest($1::bigint[], $2::bigint[]) AS u(a, m) GROUP BY a) d
        WHERE la.id = d.a`,
      [maintained.map((e) => e.accountId), maintained.map((e) => e.amount)],
    );
  } catch (err) {
    if ((err as { code?: string }).code === '23514') throw new InsufficientBalanceError(accounts[0]!, { cause: err });
    throw err;
  }
  return txnId;
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
