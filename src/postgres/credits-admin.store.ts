// The credits admin service's store (gate/credits-admin.service.ts CreditsAdminStore) on PostgreSQL: the
// repository functions bound to the pool, and to one transaction inside `transaction`. It matches the
// port by shape (checked where the service is built, src/admin-services.ts).
import type { Posting } from '../domain/postings.js';
import { findNamespace } from './accounts.repository.js';
import { withTransaction, type Db, type Tx } from './db.js';
import { balanceOf, ledgerTotals, post } from './ledger.repository.js';

export function creditsAdminStore(db: Db) {
  const inTransaction = (tx: Tx) => ({
    post: async (posting: Posting) => {
      await post(tx, posting);
    },
    findNamespace: (namespaceId: string) => findNamespace(tx, namespaceId),
  });
  return {
    findNamespace: (namespaceId: string) => findNamespace(db, namespaceId),
    balances: async (namespaceId: string) => ({ available: await balanceOf(db, 'ns_available', namespaceId), held: await balanceOf(db, 'ns_held', namespaceId) }),
    ledgerTotals: () => ledgerTotals(db),
    transaction: <T>(fn: (tx: ReturnType<typeof inTransaction>) => Promise<T>) => withTransaction(db, (tx) => fn(inTransaction(tx))),
  };
}
