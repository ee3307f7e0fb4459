// Accounts and their namespaces. A namespace gets its two ledger accounts (available and held) when it
// is created, so the hot accept path never has to create them.
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
  created_at: Date;
}

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

export async function createNamespace(q: Queryable, accountId: string, name: string): Promise<NamespaceRow> {
  const r = await q.query<NamespaceRow>(
    `INSERT INTO namespaces (account_id, name) VALUES ($1, $2) RETURNING id, account_id, name, created_at`,
    [accountId, name],
  );
  const ns = r.rows[0]!;
  await ledgerAccountId(q, 'ns_available', ns.id);
  await ledgerAccountId(q, 'ns_held', ns.id);
  return ns;
}

export async function findNamespace(q: Queryable, id: string): Promise<NamespaceRow | null> {
  const r = await q.query<NamespaceRow>(`SELECT id, account_id, name, created_at FROM namespaces WHERE id = $1`, [id]);
  return r.rows[0] ?? null;
}
