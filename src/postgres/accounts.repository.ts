// Accounts, their sign-in identities and their namespaces. A namespace gets its two ledger accounts
// (available and held) when it is created, so the hot accept path never has to create them. Namespaces
// are soft-deleted (migrations/0010_accounts_auth.sql says why): every lookup here sees live ones only,
// except where a function says otherwise.
import type { RetentionPlan } from '../domain/retention.js';
import type { Network } from '../domain/eligibility.js';
import type { Queryable } from './db.js';
import { ledgerAccountId } from './ledger.repository.js';

export interface AccountRow {
  id: string;
  name: string;
  created_at: Date;
}

/** An account as its owner sees it: how it signs in, never its password hash. */
export interface AccountProfile extends AccountRow {
  email: string | null;
  wallet_address: string | null;
}

export interface NamespaceRow {
  id: string;
  account_id: string;
  name: string;
  /** Its jobs run on this network's nodes only (migration 0012). */
  network: Network;
  /** When bound to a subcloud, its jobs run on that subcloud's members only. */
  subcloud: string | null;
  /** Its retention plan (Space, migrations/0024; domain/retention.ts). */
  retention_plan: RetentionPlan;
  /** Extended only: days its payloads are kept. */
  retention_days: number | null;
  created_at: Date;
}

/** The unique index behind "this email already has an account" (migrations/0010). */
export const EMAIL_UNIQUE = 'accounts_email_unique';
/** The unique index behind "the account already has a live namespace with that name" (migrations/0010). */
export const NAMESPACE_NAME_UNIQUE = 'namespaces_account_name_live';

const PROFILE = `id, name, email, wallet_address, created_at`;
const NAMESPACE = `id, account_id, name, network, subcloud, retention_plan, retention_days, created_at`;

async function insertAccount(q: Queryable, a: { name: string; email?: string; passwordHash?: string; walletAddress?: string }): Promise<AccountProfile> {
  const r = await q.query<AccountProfile>(
    `INSERT INTO accounts (name, email, password_hash, wallet_address) VALUES ($1, $2, $3, $4) RETURNING ${PROFILE}`,
    [a.name, a.email ?? null, a.passwordHash ?? null, a.walletAddress ?? null],
  );
  const account = r.rows[0]!;
  await ledgerAccountId(q, 'operator_earnings', account.id);
  return account;
}

export async function createAccount(q: Queryable, name: string): Promise<AccountRow> {
  const { id, name: stored, created_at } = await insertAccount(q, { name });
  return { id, name: stored, created_at };
}

/** An account that signs in with an email and password; a taken email is a unique violation on EMAIL_UNIQUE. */
export function createEmailAccount(q: Queryable, a: { name: string; email: string; passwordHash: string }): Promise<AccountProfile> {
  return insertAccount(q, a);
}

export async function findAccount(q: Queryable, id: string): Promise<AccountRow | null> {
  const r = await q.query<AccountRow>(`SELECT id, name, created_at FROM accounts WHERE id = $1`, [id]);
  return r.rows[0] ?? null;
}

export async function findAccountProfile(q: Queryable, id: string): Promise<AccountProfile | null> {
  const r = await q.query<AccountProfile>(`SELECT ${PROFILE} FROM accounts WHERE id = $1`, [id]);
  return r.rows[0] ?? null;
}

/** The account with this (normalised) email and its password hash, for a log-in. */
export async function findAccountByEmail(q: Queryable, email: string): Promise<(AccountProfile & { password_hash: string }) | null> {
  const r = await q.query<AccountProfile & { password_hash: string }>(`SELECT ${PROFILE}, password_hash FROM accounts WHERE lower(email) = lower($1)`, [email]);
  return r.rows[0] ?? null;
}

export async function updatePasswordHash(q: Queryable, accountId: string, passwordHash: string): Promise<void> {
  await q.query(`UPDATE accounts SET password_hash = $2 WHERE id = $1`, [accountId, passwordHash]);
}

/**
 * The account of a wallet (lower-case address), created on its first sign-in. Two first sign-ins of one
 * wallet at once both end with the same account: the loser of the insert race reads the winner's row.
 */
export async function findOrCreateWalletAccount(q: Queryable, walletAddress: string, name: string): Promise<{ account: AccountProfile; created: boolean }> {
  const find = async () => (await q.query<AccountProfile>(`SELECT ${PROFILE} FROM accounts WHERE wallet_address = $1`, [walletAddress])).rows[0];
  const existing = await find();
  if (existing) return { account: existing, created: false };
  const inserted = await q.query<AccountProfile>(
    `INSERT INTO accounts (name, wallet_address) VALUES ($1, $2) ON CONFLICT (wallet_address) DO NOTHING RETURNING ${PROFILE}`,
    [name, walletAddress],
  );
  const account = inserted.rows[0];
  if (!account) {
    const winner = await find();
    if (!winner) throw new Error(`wallet account ${walletAddress} neither inserted nor found`);
    return { account: winner, created: false };
  }
  await ledgerAccountId(q, 'operator_earnings', account.id);
  return { account, created: true };
}

export async function createNamespace(q: Queryable, accountId: string, name: string, network: Network = 'mainnet'): Promise<NamespaceRow> {
  const r = await q.query<NamespaceRow>(`INSERT INTO namespaces (account_id, name, network) VALUES ($1, $2, $3) RETURNING ${NAMESPACE}`, [accountId, name, network]);
  const ns = r.rows[0]!;
  await ledgerAccountId(q, 'ns_available', ns.id);
  await ledgerAccountId(q, 'ns_held', ns.id);
  return ns;
}

/** A live namespace; a deleted one is not found. */
export async function findNamespace(q: Queryable, id: string): Promise<NamespaceRow | null> {
  const r = await q.query<NamespaceRow>(`SELECT ${NAMESPACE} FROM namespaces WHERE id = $1 AND deleted_at IS NULL`, [id]);
  return r.rows[0] ?? null;
}

/** Binds a namespace to a subcloud (null: unbinds); null when the namespace does not exist. */
export async function bindNamespace(q: Queryable, id: string, subcloud: string | null): Promise<NamespaceRow | null> {
  const r = await q.query<NamespaceRow>(`UPDATE namespaces SET subcloud = $2 WHERE id = $1 AND deleted_at IS NULL RETURNING ${NAMESPACE}`, [id, subcloud]);
  return r.rows[0] ?? null;
}

/**
 * The live namespace, locked FOR SHARE until the caller's transaction ends: a concurrent delete (which
 * takes a conflicting lock to mark the row) waits for it, and one that got there first makes this null.
 */
export async function lockLiveNamespace(q: Queryable, id: string): Promise<NamespaceRow | null> {
  const r = await q.query<NamespaceRow>(`SELECT ${NAMESPACE} FROM namespaces WHERE id = $1 AND deleted_at IS NULL FOR SHARE`, [id]);
  return r.rows[0] ?? null;
}

/** The live namespace if `accountId` owns it; another account's namespace is indistinguishable from none. */
export async function findOwnedNamespace(q: Queryable, accountId: string, id: string): Promise<NamespaceRow | null> {
  const r = await q.query<NamespaceRow>(`SELECT ${NAMESPACE} FROM namespaces WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL`, [id, accountId]);
  return r.rows[0] ?? null;
}

/** An account's live namespaces, oldest first. */
export async function listNamespaces(q: Queryable, accountId: string): Promise<NamespaceRow[]> {
  const r = await q.query<NamespaceRow>(`SELECT ${NAMESPACE} FROM namespaces WHERE account_id = $1 AND deleted_at IS NULL ORDER BY created_at, id`, [accountId]);
  return r.rows;
}

/** Renames a live namespace; null when there is none with that id. A taken name is a unique violation on NAMESPACE_NAME_UNIQUE. */
export async function renameNamespace(q: Queryable, id: string, name: string): Promise<NamespaceRow | null> {
  const r = await q.query<NamespaceRow>(`UPDATE namespaces SET name = $2 WHERE id = $1 AND deleted_at IS NULL RETURNING ${NAMESPACE}`, [id, name]);
  return r.rows[0] ?? null;
}

/** Marks a live namespace deleted; false when there was none (already deleted, or never existed). */
export async function markNamespaceDeleted(q: Queryable, id: string): Promise<boolean> {
  const r = await q.query(`UPDATE namespaces SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL`, [id]);
  return (r.rowCount ?? 0) > 0;
}

/** How many of the namespace's jobs have not reached a terminal state (their holds are still open). */
export async function countUnfinishedJobs(q: Queryable, namespaceId: string): Promise<number> {
  const r = await q.query<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE namespace_id = $1 AND finished_at IS NULL`, [namespaceId]);
  return r.rows[0]?.n ?? 0;
}
