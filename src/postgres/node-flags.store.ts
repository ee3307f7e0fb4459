// The node flags service's store (network/node-flags.service.ts NodeFlagsStore) on PostgreSQL: the
// repository functions bound to the pool, and to one transaction inside `transaction`. It matches the port
// by shape (checked where the service is built, src/admin-services.ts), so this engine folder need not
// import the service's.
import type { NodeFlags } from '../domain/node-flags.js';
import { recordAdminChange, type AdminChange } from './admin-changes.repository.js';
import { withTransaction, type Db, type Tx } from './db.js';
import { getNodeFlags, putNodeFlags } from './node-flags.repository.js';
import { operatorOf } from './nodes.repository.js';

export function nodeFlagsStore(db: Db) {
  const inTransaction = (tx: Tx) => ({
    getForUpdate: (nodeId: string) => getNodeFlags(tx, nodeId, true),
    put: (nodeId: string, flags: NodeFlags, reason: string) => putNodeFlags(tx, nodeId, flags, reason),
    recordAdminChange: (change: AdminChange) => recordAdminChange(tx, change),
  });
  return {
    operatorOf: (nodeId: string) => operatorOf(db, nodeId),
    transaction: <T>(fn: (tx: ReturnType<typeof inTransaction>) => Promise<T>) => withTransaction(db, (tx) => fn(inTransaction(tx))),
  };
}
