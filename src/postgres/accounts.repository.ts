// Accounts and their namespaces. A namespace gets its two ledger accounts (available and held) when it
// is created, so the hot accept path never has to create them.
import type { Network } from '../domain/eligibility.js';
import type { Queryable } from './db.js';
import { ledgerAccountId } from './ledger.repository.js';

export interface AccountRow {
  id: string;
  name: string;
  created_at: Date;
}

export interface NamespaceRow {
  id: string;
  account_id: string;
  name: string;
  /** Its jobs run on this network's nodes only (migration 0012). */
  network: Network;
  /** When bound to a subcloud, its jobs run on that subcloud's members only. */
  subcloud: string | null;
  created_at: Date;
}

const NAMESPACE_COLUMNS = `id, account_id, name, network, subcloud, created_at`;

export async function createAccount(q: Queryable, name: string): Promise<AccountRow> {
  const r = await q.query<AccountRow>(`INSERT INTO accounts (name) VALUES ($1) RETURNING id, name, created_at`, [name]);
  const account = r.rows[0]!;
  await ledgerAccountId(q, 'operator_earnings', account.id);
  return account;
}

export async function findAccount(q: Queryable, id: string): Promise<AccountRow | null> {
  const r = await q.query<AccountRow>(`SELECT id, name, created_at FROM accounts WHERE id = $1`, [id]);
  return r.rows[0] ?? null;
}

export async function createNamespace(q: Queryable, accountId: string, name: string, network: Network = 'mainnet'): Promise<NamespaceRow> {
  const r = await q.query<NamespaceRow>(
    `INSERT INTO namespaces (account_id, name, network) VALUES ($1, $2, $3) RETURNING ${NAMESPACE_COLUMNS}`,
    [accountId, name, network],
  );
  const ns = r.rows[0]!;
  await ledgerAccountId(q, 'ns_available', ns.id);
  await ledgerAccountId(q, 'ns_held', ns.id);
  return ns;
}

export async function findNamespace(q: Queryable, id: string): Promise<NamespaceRow | null> {
  const r = await q.query<NamespaceRow>(`SELECT ${NAMESPACE_COLUMNS} FROM namespaces WHERE id = $1`, [id]);
  return r.rows[0] ?? null;
}

/** Binds a namespace to a subcloud (null: unbinds); null when the namespace does not exist. */
export async function bindNamespace(q: Queryable, id: string, subcloud: string | null): Promise<NamespaceRow | null> {
  const r = await q.query<NamespaceRow>(`UPDATE namespaces SET subcloud = $2 WHERE id = $1 RETURNING ${NAMESPACE_COLUMNS}`, [id, subcloud]);
  return r.rows[0] ?? null;
}
