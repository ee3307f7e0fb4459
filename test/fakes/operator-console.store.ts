// In-memory OperatorConsoleStore (gate/operator-console.service.ts) for the console's fast tests: nodes
// by operator, points per node and epoch, withdrawals by operator.
import type { OperatorNodeRow } from '../../src/postgres/operator-nodes.repository.js';
import type { WithdrawalRow } from '../../src/postgres/operators.repository.js';
import type { RcpEpochRow } from '../../src/postgres/rcp.repository.js';
import type { OperatorConsoleStore } from '../../src/gate/operator-console.service.js';
import { FakeDatabase } from './fake-database.js';

/** A node row as the console reads it: never flagged nor scored unless `over` says so. */
export function operatorNodeRow(id: string, over: Partial<OperatorNodeRow> = {}, at = new Date()): OperatorNodeRow {
  return {
    id,
    created_at: at,
    last_registered_at: at,
    paused: null,
    frozen: null,
    shadow_banned: null,
    cooldown_until: null,
    reason: null,
    flags_updated_at: null,
    score: null,
    success_rate: null,
    latency_factor: null,
    blind_accuracy: null,
    attempts: null,
    blind_jobs: null,
    score_updated_at: null,
    ...over,
  };
}

export class FakeOperatorConsoleStore implements OperatorConsoleStore {
  readonly db = new FakeDatabase({
    nodes: [] as Array<OperatorNodeRow & { operator: string }>,
    points: new Map<string, RcpEpochRow[]>(),
    withdrawals: [] as WithdrawalRow[],
  });

  addNode(operator: string, id: string, over: Partial<OperatorNodeRow> = {}): void {
    this.db.state.nodes.push({ operator, ...operatorNodeRow(id, over) });
  }

  private view({ operator: _operator, ...row }: OperatorNodeRow & { operator: string }): OperatorNodeRow {
    return row;
  }

  listNodes(operatorId: string): Promise<OperatorNodeRow[]> {
    return Promise.resolve(this.db.state.nodes.filter((n) => n.operator === operatorId).map((n) => this.view(n)));
  }

  findNode(operatorId: string, nodeId: string): Promise<OperatorNodeRow | null> {
    this.db.call('findNode');
    const n = this.db.state.nodes.find((x) => x.operator === operatorId && x.id === nodeId);
    return Promise.resolve(n ? this.view(n) : null);
  }

  pointsByEpoch(nodeId: string, epochs: number): Promise<RcpEpochRow[]> {
    return Promise.resolve([...(this.db.state.points.get(nodeId) ?? [])].sort((a, b) => b.epoch - a.epoch).slice(0, epochs));
  }

  listWithdrawals(operatorId: string, limit: number): Promise<WithdrawalRow[]> {
    return Promise.resolve(this.db.state.withdrawals.filter((w) => w.operator_account_id === operatorId).slice(0, limit));
  }
}
