// The quarantine service's store (gate/quarantine.service.ts QuarantineStore) on PostgreSQL: the
// repository functions bound to the pool, and to one transaction inside `transaction`. It matches the
// port by shape (checked where the service is built).
import { findApiKey } from './api-keys.repository.js';
import { withTransaction, type Db, type Tx } from './db.js';
import { findJob } from './jobs.repository.js';
import { listQuarantine, lockOpenQuarantine, resolveQuarantine } from './quarantine.repository.js';

type Resolution = 'requeued' | 'discarded';

export function quarantineStore(db: Db) {
  const inTransaction = (tx: Tx) => ({
    lockOpen: (jobId: string) => lockOpenQuarantine(tx, jobId),
    findJob: (jobId: string) => findJob(tx, jobId),
    findApiKey: (keyId: string) => findApiKey(tx, keyId),
    resolve: (jobId: string, resolution: Resolution, requeuedJobId: string | null) => resolveQuarantine(tx, jobId, resolution, requeuedJobId),
  });
  return {
    list: (limit: number) => listQuarantine(db, limit),
    resolve: (jobId: string, resolution: Resolution, requeuedJobId: string | null) => resolveQuarantine(db, jobId, resolution, requeuedJobId),
    transaction: <T>(fn: (tx: ReturnType<typeof inTransaction>) => Promise<T>) => withTransaction(db, (tx) => fn(inTransaction(tx))),
  };
}
