// Node operators' money: earnings (their share of every capture, by node and day) and withdrawals. A
// withdrawal request moves credits from earnings to a pending-withdrawal account (a ledger hold) and
// waits to be exported for settlement, which happens outside the backbone. Nodes: an operator consents to
// a node's binding by enrolling its address, or by handing it an enrolment token (domain/enrolment.ts).
import { errors, formatCredits, MICRO } from '../errors.js';
import { toCsv } from '../domain/csv.js';
import { dayRange } from '../domain/day-range.js';
import { isAddress } from '../domain/signatures.js';
import { ENROLMENT_TOKEN_MAX_TTL_HOURS, issueEnrolmentToken } from '../domain/enrolment.js';
import * as postings from '../domain/postings.js';
import type { NodeEarningsRow, WithdrawalRow } from '../postgres/operators.repository.js';

/** What the service needs from PostgreSQL (postgres/operators.store.ts; in memory: test/fakes/operators.store.ts). */
export interface OperatorsStore {
  accountExists(accountId: string): Promise<boolean>;
  /** Binds the node to the operator unless another operator holds it (idempotent). */
  enrolNode(nodeId: string, operatorId: string): Promise<'enrolled' | 'enrolled_elsewhere'>;
  earningsByNodeAndDay(operatorId: string, from: Date, to: Date): Promise<NodeEarningsRow[]>;
  /** The operator's balance on its earnings or pending-withdrawal ledger account, in micro-credits. */
  balance(kind: 'operator_earnings' | 'operator_withdrawal', operatorId: string): Promise<number>;
  /** Every withdrawal requested since the last export, marked exported (one statement). */
  exportRequestedWithdrawals(): Promise<WithdrawalRow[]>;
  /** All of `fn` or none of it. */
  transaction<T>(fn: (tx: OperatorsTx) => Promise<T>): Promise<T>;
}

export interface OperatorsTx {
  /** Serializes the operator's withdrawals to the end of the transaction. */
  lockOperator(operatorId: string): Promise<void>;
  balance(kind: 'operator_earnings', operatorId: string): Promise<number>;
  /** Posts a balanced ledger transaction (domain/postings.ts); its id. */
  post(p: postings.Posting): Promise<number | null>;
  insertWithdrawal(w: { operatorAccountId: string; amountMicro: number; destination: string; ledgerTxnId: number }): Promise<WithdrawalRow>;
}

export class OperatorsService {
  private readonly store: OperatorsStore;
  /** Signs enrolment tokens (null: this process cannot issue them). */
  private readonly networkKey: string | null;

  constructor(d: { store: OperatorsStore; networkKey?: string | null }) {
    this.store = d.store;
    this.networkKey = d.networkKey ?? null;
  }

  /** Enrols a node's address to the operator (idempotent); 409 when another operator holds the node. */
  async enrolNode(operatorId: string, address: string): Promise<{ node_id: string; operator_account_id: string }> {
    await this.requireAccount(operatorId);
    const nodeId = nodeAddress(address);
    if ((await this.store.enrolNode(nodeId, operatorId)) === 'enrolled_elsewhere') throw errors.conflict('That node is enrolled by another operator.', 'node_enrolled_elsewhere');
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
    const rows = await this.store.earningsByNodeAndDay(operatorId, r.from, r.end);
    return {
      operator_account_id: operatorId,
      earned: formatCredits(await this.store.balance('operator_earnings', operatorId)),
      pending_withdrawal: formatCredits(await this.store.balance('operator_withdrawal', operatorId)),
      by_node_and_day: rows.map(({ earned_micro, ...r }) => ({ ...r, earned: formatCredits(earned_micro) })),
    };
  }

  /** Records a withdrawal request as a ledger hold on the operator's earnings; 402 when they do not cover it. */
  async requestWithdrawal(operatorId: string, credits: number, destination: string): Promise<WithdrawalRow> {
    await this.requireAccount(operatorId);
    const micro = Math.round(credits * MICRO);
    if (!Number.isFinite(credits) || micro < 1) throw errors.invalid('amount must be at least 0.000001 credits', 'amount');
    if (!destination.trim() || destination.length > 200) throw errors.invalid('destination must be 1 to 200 characters', 'destination');
    return this.store.transaction(async (tx) => {
      // Earnings are a derived balance (no row to lock): serialize this operator's withdrawals instead.
      // Captures running meanwhile only add to the balance, so the check below cannot be overtaken.
      await tx.lockOperator(operatorId);
      const available = await tx.balance('operator_earnings', operatorId);
      if (available < micro) throw errors.insufficientCredits(micro, available);
      const txnId = await tx.post(postings.withdrawal(operatorId, micro, destination));
      return tx.insertWithdrawal({ operatorAccountId: operatorId, amountMicro: micro, destination, ledgerTxnId: txnId! });
    });
  }

  /** Every withdrawal requested since the last export, marked exported: the settlement batch, as CSV. */
  async exportWithdrawals(): Promise<{ rows: WithdrawalRow[]; csv: string }> {
    const rows = await this.store.exportRequestedWithdrawals();
    const view = rows.map((w) => ({ ...w, amount: formatCredits(w.amount_micro) }));
    return { rows, csv: toCsv(['id', 'operator_account_id', 'amount', 'destination', 'created_at'], view) };
  }

  private async requireAccount(id: string): Promise<void> {
    if (!(await this.store.accountExists(id))) throw errors.notFound('Account');
  }
}

/** A node id from an address in any case (ids are lower-case addresses); 400 for anything else. */
function nodeAddress(address: unknown): string {
  if (typeof address !== 'string' || !isAddress(address.toLowerCase())) throw errors.invalid('node must be an EVM address (0x and 40 hex digits)', 'node');
  return address.toLowerCase();
}
