// The job-log reader's store (space/job-logs.service.ts JobLogsStore) on PostgreSQL: the lookups that
// scope a read to its reader, bound to the pool. It matches the port by shape (checked in src/app.ts).
import type { Db } from './db.js';
import { findJob, findJobInNamespace } from './jobs.repository.js';
import { findOperatorNode } from './operator-nodes.repository.js';

export function jobLogsStore(db: Db) {
  return {
    findJob: (jobId: string) => findJob(db, jobId),
    findJobInNamespace: (jobId: string, namespaceId: string) => findJobInNamespace(db, jobId, namespaceId),
    findOperatorNode: (accountId: string, nodeId: string) => findOperatorNode(db, accountId, nodeId),
  };
}
