// Node operators' money: earnings (their share of every capture, by node and day) and withdrawals. A
// withdrawal request moves credits from earnings to a pending-withdrawal account (a ledger hold) and
// waits to be exported for settlement, which happens outside the backbone.
import { errors, formatCredits, MICRO } from '../errors.js';
import { toCsv } from '../domain/csv.js';
import { dayRange } from '../domain/day-range.js';
import { withTransaction, type Db } from '../postgres/db.js';
import { findAccount } from '../postgres/accounts.repository.js';
import { balanceOf, ledgerAccountId, postTransaction } from '../postgres/ledger.repository.js';
import {
  earningsByNodeAndDay,
  exportRequestedWithdrawals,
  insertWithdrawal,
  lockOperator,
  type NodeEarningsRow,
  type WithdrawalRow,
} from '../postgres/operators.repository.js';

export class OperatorsService {
  constructor(private readonly db: Db) {}

  async earnings(
    operatorId: string,
    range: { from?: string; to?: string } = {},
  ): Promise<{ operator_account_id: string; earned: string; pending_withdrawal: string; by_node_and_day: Array<Omit<NodeEarningsRow, 'earned_micro'> & { earned: string }> }> {
    await this.requireAccount(operatorId);
    const r = dayRange(range);
    const rows = await earningsByNodeAndDay(this.db, operatorId, r.from, r.end);
    return {
      operator_account_id: operatorId,
      earned: formatCredits(await balanceOf(this.db, 'operator_earnings', operatorId)),
      pending_withdrawal: formatCredits(await balanceOf(this.db, 'operator_withdrawal', operatorId)),
      by_node_and_day: rows.map(({ earned_micro, ...r }) => ({ ...r, earned: formatCredits(earned_micro) })),
    };
  }

  /** Records a withdrawal request as a ledger hold on the operator's earnings; 402 when they do not cover it. */
  async requestWithdrawal(operatorId: string, credits: number, destination: string): Promise<WithdrawalRow> {
    await this.requireAccount(operatorId);
    const micro = Math.round(credits * MICRO);
    if (!Number.isFinite(credits) || micro < 1) throw errors.invalid('amount must be at least 0.000001 credits', 'amount');
    if (!destination.trim() || destination.length > 200) throw errors.invalid('destination must be 1 to 200 characters', 'destination');
    return withTransaction(this.db, async (tx) => {
      // Earnings are a derived balance (no row to lock): serialize this operator's withdrawals instead.
      // Captures running meanwhile only add to the balance, so the check below cannot be overtaken.
      await lockOperator(tx, operatorId);
      const available = await balanceOf(tx, 'operator_earnings', operatorId);
      if (available < micro) throw errors.insufficientCredits(micro, available);
      const earnings = await ledgerAccountId(tx, 'operator_earnings', operatorId);
      const pending = await ledgerAccountId(tx, 'operator_withdrawal', operatorId);
      const txnId = await postTransaction(tx, { kind: 'withdrawal', jobId: null, memo: destination }, [
        { accountId: earnings, amount: -micro },
        { accountId: pending, amount: micro },
      ]);
      return insertWithdrawal(tx, { operatorAccountId: operatorId, amountMicro: micro, destination, ledgerTxnId: txnId! });
    });
  }

  /** Every withdrawal requested since the last export, marked exported: the settlement batch, as CSV. */
  async exportWithdrawals(): Promise<{ rows: WithdrawalRow[]; csv: string }> {
    const rows = await exportRequestedWithdrawals(this.db);
    const view = rows.map((w) => ({ ...w, amount: formatCredits(w.amount_micro) }));
    return { rows, csv: toCsv(['id', 'operator_account_id', 'amount', 'destination', 'created_at'], view) };
  }

  private async requireAccount(id: string): Promise<void> {
    if (!(await findAccount(this.db, id))) throw errors.notFound('Account');
  }
}
