// Space's retention service's store (space/retention.service.ts RetentionStore) on PostgreSQL: the
// repository functions bound to the pool, and to one transaction inside `transaction`. It matches the port
// by shape (checked where the service is built: src/app.ts, src/cli/space.command.ts).
import type { NamespaceRetention } from '../domain/retention.js';
import { withTransaction, type Db, type Tx } from './db.js';
import { findNamespace } from './accounts.repository.js';
import { ledgerAccountId, postTransaction } from './ledger.repository.js';
import { deleteExpiredSalts } from './payload-keys.repository.js';
import { claimMetering, deleteAllPins, isMetered, listExtendedNamespaces, listMeterings, listSpaceEvents, setRetentionPlan } from './space.repository.js';

export function retentionStore(db: Db) {
  const inTransaction = (tx: Tx) => ({
    chargeStorage: async (namespaceId: string, micro: number, memo: string) =>
      postTransaction(tx, { kind: 'storage', jobId: null, memo }, [
        { accountId: await ledgerAccountId(tx, 'ns_available', namespaceId), amount: -micro },
        { accountId: await ledgerAccountId(tx, 'platform_revenue', null), amount: micro },
      ]),
    claimMetering: (m: Parameters<typeof claimMetering>[1]) => claimMetering(tx, m),
    setRetentionPlan: (namespaceId: string, plan: NamespaceRetention, by: 'metering') => setRetentionPlan(tx, namespaceId, plan, by),
    deleteAllPins: (namespaceId: string) => deleteAllPins(tx, namespaceId),
  });
  return {
    findNamespace: (namespaceId: string) => findNamespace(db, namespaceId),
    listSpaceEvents: (namespaceId: string) => listSpaceEvents(db, namespaceId),
    listMeterings: (namespaceId: string) => listMeterings(db, namespaceId),
    setRetentionPlan: (namespaceId: string, plan: NamespaceRetention, by: 'owner' | 'admin') => setRetentionPlan(db, namespaceId, plan, by),
    deleteExpiredSalts: (before: Date) => deleteExpiredSalts(db, before),
    listExtendedNamespaces: () => listExtendedNamespaces(db),
    isMetered: (namespaceId: string, day: string) => isMetered(db, namespaceId, day),
    transaction: <T>(fn: (tx: ReturnType<typeof inTransaction>) => Promise<T>) => withTransaction(db, (tx) => fn(inTransaction(tx))),
  };
}
