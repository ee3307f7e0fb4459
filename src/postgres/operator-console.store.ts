// The operator console's store (gate/operator-console.service.ts OperatorConsoleStore) on PostgreSQL: the
// repository functions bound to the pool. It matches the port by shape (checked where the service is built).
import type { Db } from './db.js';
import { findOperatorNode, listOperatorNodes } from './operator-nodes.repository.js';
import { listWithdrawals } from './operators.repository.js';
import { rcpByEpoch } from './rcp.repository.js';

export function operatorConsoleStore(db: Db) {
  return {
    listNodes: (operatorId: string) => listOperatorNodes(db, operatorId),
    findNode: (operatorId: string, nodeId: string) => findOperatorNode(db, operatorId, nodeId),
    pointsByEpoch: (nodeId: string, epochs: number) => rcpByEpoch(db, nodeId, epochs),
    listWithdrawals: (operatorId: string, limit: number) => listWithdrawals(db, operatorId, limit),
  };
}
