// In-memory OperatorsStore (gate/operators.service.ts) for the service's fast tests: the operator's two
// ledger balances move only by postings, which must balance (domain/postings.ts builds them).
import type { Posting } from '../../src/domain/postings.js';
import type { NodeEarningsRow, WithdrawalRow } from '../../src/postgres/operators.repository.js';
import type { OperatorsStore, OperatorsTx } from '../../src/gate/operators.service.js';
import { FakeDatabase } from './fake-database.js';

export class FakeOperatorsStore implements OperatorsStore {
  readonly db = new FakeDatabase({
    accounts: new Set<string>(),
    /** node id -> operator */
    nodes: new Map<string, string>(),
    /** `${kind}:${owner}` -> micro-credits */
    balances: new Map<string, number>(),
    postings: [] as Posting[],
    withdrawals: [] as WithdrawalRow[],
    earnings: [] as Array<NodeEarningsRow & { operator: string; at: Date }>,
  });

  private balanceOf(kind: string, owner: string | null): number {
    return this.db.state.balances.get(`${kind}:${owner}`) ?? 0;
  }

  /** Credits the operator's earnings (as captures do). */
  earn(operatorId: string, micro: number): void {
    this.db.state.balances.set(`operator_earnings:${operatorId}`, this.balanceOf('operator_earnings', operatorId) + micro);
  }

  accountExists(accountId: string): Promise<boolean> {
    return Promise.resolve(this.db.state.accounts.has(accountId));
  }

  enrolNode(nodeId: string, operatorId: string): Promise<'enrolled' | 'enrolled_elsewhere'> {
    const holder = this.db.state.nodes.get(nodeId);
    if (holder !== undefined && holder !== operatorId) return Promise.resolve('enrolled_elsewhere');
    this.db.state.nodes.set(nodeId, operatorId);
    return Promise.resolve('enrolled');
  }

  earningsByNodeAndDay(operatorId: string, from: Date, to: Date): Promise<NodeEarningsRow[]> {
    return Promise.resolve(
      this.db.state.earnings.filter((e) => e.operator === operatorId && e.at >= from && e.at < to).map(({ node_id, day, jobs, earned_micro }) => ({ node_id, day, jobs, earned_micro })),
    );
  }

  balance(kind: 'operator_earnings' | 'operator_withdrawal', operatorId: string): Promise<number> {
    return Promise.resolve(this.balanceOf(kind, operatorId));
  }

  exportRequestedWithdrawals(): Promise<WithdrawalRow[]> {
    const now = new Date();
    const rows = this.db.state.withdrawals.filter((w) => w.status === 'requested');
    for (const w of rows) Object.assign(w, { status: 'exported', exported_at: now });
    return Promise.resolve(rows.map((w) => ({ ...w })));
  }

  transaction<T>(fn: (tx: OperatorsTx) => Promise<T>): Promise<T> {
    return this.db.transaction(() =>
      fn({
        lockOperator: () => Promise.resolve(),
        balance: (kind, operatorId) => Promise.resolve(this.balanceOf(kind, operatorId)),
        post: (p) => {
          this.db.call('post');
          if (p.lines.reduce((sum, l) => sum + l.amount, 0) !== 0) throw new Error('unbalanced posting');
          for (const l of p.lines) {
            const k = `${l.account.kind}:${l.account.owner}`;
            this.db.state.balances.set(k, (this.db.state.balances.get(k) ?? 0) + l.amount);
          }
          this.db.state.postings.push(p);
          return Promise.resolve(this.db.state.postings.length);
        },
        insertWithdrawal: (w) => {
          this.db.call('insertWithdrawal');
          const row: WithdrawalRow = {
            id: `w-${this.db.state.withdrawals.length + 1}`,
            operator_account_id: w.operatorAccountId,
            amount_micro: w.amountMicro,
            destination: w.destination,
            status: 'requested',
            created_at: new Date(),
            exported_at: null,
          };
          this.db.state.withdrawals.push(row);
          return Promise.resolve(row);
        },
      }),
    );
  }
}
