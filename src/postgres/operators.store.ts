// The operators service's store (gate/operators.service.ts OperatorsStore) on PostgreSQL: the repository
// functions bound to the pool, and to one transaction inside `transaction`. It matches the port by shape
// (checked where the service is built).
import type { Posting } from '../domain/postings.js';
import { findAccount } from './accounts.repository.js';
import { withTransaction, type Db, type Tx } from './db.js';
import { balanceOf, post } from './ledger.repository.js';
import { enrolNode } from './nodes.repository.js';
import { earningsByNodeAndDay, exportRequestedWithdrawals, insertWithdrawal, lockOperator } from './operators.repository.js';

type OperatorAccount = 'operator_earnings' | 'operator_withdrawal';

export function operatorsStore(db: Db) {
  const inTransaction = (tx: Tx) => ({
    lockOperator: (operatorId: string) => lockOperator(tx, operatorId),
    balance: (kind: 'operator_earnings', operatorId: string) => balanceOf(tx, kind, operatorId),
    post: (p: Posting) => post(tx, p),
    insertWithdrawal: (w: Parameters<typeof insertWithdrawal>[1]) => insertWithdrawal(tx, w),
  });
  return {
    accountExists: async (accountId: string) => (await findAccount(db, accountId)) !== null,
    enrolNode: (nodeId: string, operatorId: string) => enrolNode(db, nodeId, operatorId),
    earningsByNodeAndDay: (operatorId: string, from: Date, to: Date) => earningsByNodeAndDay(db, operatorId, from, to),
    balance: (kind: OperatorAccount, operatorId: string) => balanceOf(db, kind, operatorId),
    exportRequestedWithdrawals: () => exportRequestedWithdrawals(db),
    transaction: <T>(fn: (tx: ReturnType<typeof inTransaction>) => Promise<T>) => withTransaction(db, (tx) => fn(inTransaction(tx))),
  };
}
