// The namespace console's store (gate/namespace-console.service.ts NamespaceConsoleStore) on PostgreSQL:
// the repository functions bound to the pool. It matches the port by shape (checked where it is built).
import { findOwnedNamespace } from './accounts.repository.js';
import type { Db } from './db.js';
import { listRecentJobs } from './namespace-jobs.repository.js';

export function namespaceConsoleStore(db: Db) {
  return {
    findOwnedNamespace: (accountId: string, namespaceId: string) => findOwnedNamespace(db, accountId, namespaceId),
    listRecentJobs: (namespaceId: string, since: Date, limit: number) => listRecentJobs(db, namespaceId, since, limit),
  };
}
