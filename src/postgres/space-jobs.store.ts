// Space's job service's store (space/space-jobs.service.ts SpaceJobsStore) on PostgreSQL: the repository
// functions bound to the pool, and to one transaction inside `transaction`. It matches the port by shape
// (checked where the service is built, src/app.ts), so this engine folder need not import the service's.
import { withTransaction, type Db, type Tx } from './db.js';
import { findJobInNamespace } from './jobs.repository.js';
import { deletePayloadSalts } from './payload-keys.repository.js';
import { deletePin, insertPin, listPins, recordShred } from './space.repository.js';

export function spaceJobsStore(db: Db) {
  const inTransaction = (tx: Tx) => ({
    shredPayloadKeys: (namespaceId: string, jobId: string) => deletePayloadSalts(tx, jobId, namespaceId),
    deletePin: (namespaceId: string, jobId: string, kind: 'job_shredded') => deletePin(tx, namespaceId, jobId, kind),
    recordShred: (namespaceId: string, jobId: string, documents: number) => recordShred(tx, namespaceId, jobId, documents),
  });
  return {
    findJob: (namespaceId: string, jobId: string) => findJobInNamespace(db, jobId, namespaceId),
    insertPin: (namespaceId: string, jobId: string, bytes: number) => insertPin(db, namespaceId, jobId, bytes),
    deletePin: (namespaceId: string, jobId: string) => deletePin(db, namespaceId, jobId),
    listPins: (namespaceId: string) => listPins(db, namespaceId),
    transaction: <T>(fn: (tx: ReturnType<typeof inTransaction>) => Promise<T>) => withTransaction(db, (tx) => fn(inTransaction(tx))),
  };
}
