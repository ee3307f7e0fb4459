// The API keys admin service's store (gate/api-keys-admin.service.ts ApiKeysAdminStore) on PostgreSQL:
// the repository functions bound to the pool, and to one transaction inside `transaction`. It matches the
// port by shape (checked where the service is built, src/admin-services.ts).
import { carryMonthlySpend, countActiveApiKeys, lockAccountForQuota } from './account-quotas.repository.js';
import { lockNamespaceLedger } from './accounts-admin.store.js';
import { findNamespace, lockLiveNamespace } from './accounts.repository.js';
import { findApiKey, insertApiKey, listApiKeys, revokeApiKey } from './api-keys.repository.js';
import { withTransaction, type Db, type Tx } from './db.js';

export function apiKeysAdminStore(db: Db) {
  const inTransaction = (tx: Tx) => ({
    lockAccountForQuota: (accountId: string) => lockAccountForQuota(tx, accountId),
    countActiveApiKeys: (accountId: string) => countActiveApiKeys(tx, accountId),
    lockLiveNamespace: (namespaceId: string) => lockLiveNamespace(tx, namespaceId),
    insertApiKey: (key: Parameters<typeof insertApiKey>[1]) => insertApiKey(tx, key),
    lockLedger: (namespaceId: string) => lockNamespaceLedger(tx, namespaceId),
    revokeApiKey: (keyId: string) => revokeApiKey(tx, keyId),
    carryMonthlySpend: (fromKeyId: string, toKeyId: string) => carryMonthlySpend(tx, fromKeyId, toKeyId),
  });
  return {
    findNamespace: (namespaceId: string) => findNamespace(db, namespaceId),
    findApiKey: (keyId: string) => findApiKey(db, keyId),
    listApiKeys: (namespaceId: string) => listApiKeys(db, namespaceId),
    revokeApiKey: (keyId: string) => revokeApiKey(db, keyId),
    transaction: <T>(fn: (tx: ReturnType<typeof inTransaction>) => Promise<T>) => withTransaction(db, (tx) => fn(inTransaction(tx))),
  };
}
