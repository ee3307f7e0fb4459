// The accounts admin service's store (gate/accounts-admin.service.ts AccountsAdminStore) on PostgreSQL:
// the repository functions bound to the pool, and to one transaction inside `transaction`. It matches the
// port by shape (checked where the service is built, src/admin-services.ts), so this engine folder need
// not import the service's.
import type { Network } from '../domain/eligibility.js';
import { countLiveNamespaces, lockAccountForQuota } from './account-quotas.repository.js';
import {
  countUnfinishedJobs,
  createAccount,
  createNamespace,
  findAccount,
  findNamespace,
  markNamespaceDeleted,
  NAMESPACE_NAME_UNIQUE,
  renameNamespace,
} from './accounts.repository.js';
import { revokeNamespaceApiKeys } from './api-keys.repository.js';
import { isUniqueViolation, withTransaction, type Db, type Queryable, type Tx } from './db.js';
import { balanceOf, ledgerAccountId, lockAccounts } from './ledger.repository.js';

/** `write`'s result, or 'name_taken' when it broke the one-live-name-per-account index. */
async function nameTakenAs<T>(write: Promise<T>): Promise<T | 'name_taken'> {
  try {
    return await write;
  } catch (err) {
    if (isUniqueViolation(err, NAMESPACE_NAME_UNIQUE)) return 'name_taken';
    throw err;
  }
}

/** Locks a namespace's two ledger accounts (available, held), in the order every ledger transaction follows. */
export async function lockNamespaceLedger(q: Queryable, namespaceId: string): Promise<void> {
  await lockAccounts(q, [await ledgerAccountId(q, 'ns_available', namespaceId), await ledgerAccountId(q, 'ns_held', namespaceId)]);
}

export function accountsAdminStore(db: Db) {
  const inTransaction = (tx: Tx) => ({
    lockAccountForQuota: (accountId: string) => lockAccountForQuota(tx, accountId),
    countLiveNamespaces: (accountId: string) => countLiveNamespaces(tx, accountId),
    createNamespace: (accountId: string, name: string, network: Network) => nameTakenAs(createNamespace(tx, accountId, name, network)),
    findNamespace: (namespaceId: string) => findNamespace(tx, namespaceId),
    lockLedger: (namespaceId: string) => lockNamespaceLedger(tx, namespaceId),
    credits: async (namespaceId: string) => (await balanceOf(tx, 'ns_available', namespaceId)) + (await balanceOf(tx, 'ns_held', namespaceId)),
    countUnfinishedJobs: (namespaceId: string) => countUnfinishedJobs(tx, namespaceId),
    markNamespaceDeleted: (namespaceId: string) => markNamespaceDeleted(tx, namespaceId),
    revokeNamespaceApiKeys: (namespaceId: string) => revokeNamespaceApiKeys(tx, namespaceId),
  });
  return {
    createAccount: (name: string) => withTransaction(db, (tx) => createAccount(tx, name)),
    findAccount: (accountId: string) => findAccount(db, accountId),
    renameNamespace: (namespaceId: string, name: string) => nameTakenAs(renameNamespace(db, namespaceId, name)),
    transaction: <T>(fn: (tx: ReturnType<typeof inTransaction>) => Promise<T>) => withTransaction(db, (tx) => fn(inTransaction(tx))),
  };
}
