// Node operators' money: earnings (their share of every capture, by node and day) and withdrawals. A
// withdrawal request moves credits from earnings to a pending-withdrawal account (a ledger hold) and
// waits to be exported for settlement, which happens outside the backbone. Nodes: an operator consents to
// a node's binding by enrolling its address, or by handing it an enrolment token (domain/enrolment.ts).
import { errors, formatCredits, MICRO } from '../errors.js';
import { toCsv } from '../domain/csv.js';
import { dayRange } from '../domain/day-range.js';
import { withTransaction, type Db } from '../postgres/db.js';
import { isAddress } from '../domain/signatures.js';
import { ENROLMENT_TOKEN_MAX_TTL_HOURS, issueEnrolmentToken } from '../domain/enrolment.js';
import { enrolNode } from '../postgres/nodes.repository.js';
import { findAccount } from '../postgres/accounts.repository.js';
import { balanceOf, post } from '../postgres/ledger.repository.js';
import * as postings from '../domain/postings.js';
import {
  earningsByNodeAndDay,
  exportRequestedWithdrawals,
  insertWithdrawal,
  lockOperator,
  type NodeEarningsRow,
  type WithdrawalRow,
} from '../postgres/operators.repository.js';

export class OperatorsService {
  /** `networkKey`: signs enrolment tokens (null: this process cannot issue them). */
  constructor(
    private readonly db: Db,
    private readonly networkKey: string | null = null,
  ) {}

  /** Enrols a node's address to the operator (idempotent); 409 when another operator holds the node. */
  async enrolNode(operatorId: string, address: string): Promise<{ node_id: string; operator_account_id: string }> {
    await this.requireAccount(operatorId);
    const nodeId = nodeAddress(address);
    if ((await enrolNode(this.db, nodeId, operatorId)) === 'enrolled_elsewhere') throw errors.conflict('That node is enrolled by another operator.', 'node_enrolled_elsewhere');
    return { node_id: nodeId, operator_account_id: operatorId };
  }

  /** An enrolment token for one node address: the node registers with it and is bound to this operator. */
  async enrolmentToken(operatorId: string, address: string, ttlHours = 24): Promise<{ node_id: string; token: string; expires_at: string }> {
    await this.requireAccount(operatorId);
    if (!this.networkKey) throw new Error('enrolment tokens need NETWORK_SIGNING_KEY');
    if (!Number.isFinite(ttlHours) || ttlHours <= 0 || ttlHours > ENROLMENT_TOKEN_MAX_TTL_HOURS) {
      throw errors.invalid(`ttl_hours must be above 0 and at most ${ENROLMENT_TOKEN_MAX_TTL_HOURS}`, 'ttl_hours');
    }
    const nodeId = nodeAddress(address);
    const expiresAt = Date.now() + Math.round(ttlHours * 3_600_000);
    return { node_id: nodeId, token: issueEnrolmentToken(this.networkKey, nodeId, operatorId, expiresAt), expires_at: new Date(expiresAt).toISOString() };
  }

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
      const txnId = await post(tx, postings.withdrawal(operatorId, micro, destination));
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

/** A node id from an address in any case (ids are lower-case addresses); 400 for anything else. */
function nodeAddress(address: unknown): string {
  if (typeof address !== 'string' || !isAddress(address.toLowerCase())) throw errors.invalid('node must be an EVM address (0x and 40 hex digits)', 'node');
  return address.toLowerCase();
}
