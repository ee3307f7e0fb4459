// The admin records service's store (gate/admin-records.service.ts AdminRecordsStore) on PostgreSQL: the
// repository functions bound to the pool. It matches the port by shape (checked in src/admin-services.ts).
import { listAdminChanges } from './admin-changes.repository.js';
import type { Db } from './db.js';
import { rcpByEpoch } from './rcp.repository.js';

export function adminRecordsStore(db: Db) {
  return {
    listAdminChanges: (filter: Parameters<typeof listAdminChanges>[1]) => listAdminChanges(db, filter),
    rcpByEpoch: (nodeId: string, limit: number) => rcpByEpoch(db, nodeId, limit),
  };
}
