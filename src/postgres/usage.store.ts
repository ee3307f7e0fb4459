// The usage reports' store (space/usage.service.ts UsageStore) on PostgreSQL: the repository functions
// bound to one read-only snapshot transaction. It matches the port by shape (checked in src/admin-services.ts).
import { withTransaction, type Db, type Tx } from './db.js';
import { listRollupDays } from './job-history.repository.js';
import { listMeteringsBetween } from './space.repository.js';
import { usageFromJobs, usageFromRollups } from './usage.repository.js';

export function usageStore(db: Db) {
  const inSnapshot = (tx: Tx) => ({
    listMeteringsBetween: (namespaceId: string, from: string, to: string) => listMeteringsBetween(tx, namespaceId, from, to),
    listRollupDays: (from: string, to: string) => listRollupDays(tx, from, to),
    usageFromRollups: (namespaceId: string, fromDay: string, toDay: string) => usageFromRollups(tx, namespaceId, fromDay, toDay),
    usageFromJobs: (namespaceId: string, from: Date, to: Date) => usageFromJobs(tx, namespaceId, from, to),
  });
  return {
    snapshot: <T>(fn: (tx: ReturnType<typeof inSnapshot>) => Promise<T>) => withTransaction(db, (tx) => fn(inSnapshot(tx)), { isolation: 'snapshot', readOnly: true }),
  };
}
