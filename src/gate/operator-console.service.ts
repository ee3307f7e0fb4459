// The operator's side of the account API: an account's own nodes (online state from Redis presence,
// flags and their reason, score and its parts from PostgreSQL), each node's contribution points per
// epoch, the account's earnings by node and day, and its withdrawal requests. Every read is scoped by the
// caller's account: another account's node is "not found", exactly like one that does not exist.
//
// Shadow bans are never told (DESIGN.md: a shadow-banned node is "not told"): an operator's view shows
// no shadow-ban flag, and no reason while one is set (the reason may be the shadow ban's own).
import { errors, formatCredits } from '../errors.js';
import { addressSchema } from '../domain/protocol.js';
import type { OperatorNodeRow } from '../postgres/operator-nodes.repository.js';
import type { WithdrawalRow } from '../postgres/operators.repository.js';
import type { RcpEpochRow } from '../postgres/rcp.repository.js';
import type { NodePresence, NodePresenceView } from '../redis/node-presence.view.js';
import type { OperatorsService } from './operators.service.js';
import type { AccountPrincipal } from './account.service.js';

/** What the operator sees of one of its nodes. */
export interface OperatorNodeView {
  id: string;
  registered_at: Date;
  last_registered_at: Date;
  online: boolean;
  /** What the node declared in its last heartbeat; null while offline. */
  presence: NodePresence | null;
  flags: {
    paused: boolean;
    frozen: boolean;
    /** Null: no cooldown in force. */
    cooldown_until: Date | null;
    /** Why the flags were last set (by an admin or by the cooldown rule); null when none. */
    reason: string | null;
    updated_at: Date | null;
  };
  /** False while a visible flag keeps the node out of rotation. */
  in_rotation: boolean;
  /** score = success_rate × blind_accuracy × (½ + ½ × latency_factor); null before the first quality pass. */
  score: {
    score: number;
    success_rate: number;
    latency_factor: number;
    blind_accuracy: number;
    attempts: number;
    blind_jobs: number;
    updated_at: Date;
  } | null;
}

export interface RcpEpochView {
  epoch: number;
  starts_at: Date;
  ends_at: Date;
  job_points: number;
  uptime_points: number;
  total_points: number;
}

export interface WithdrawalView extends WithdrawalRow {
  amount: string;
}

/**
 * What the console reads from PostgreSQL, always scoped by the operator's account
 * (postgres/operator-console.store.ts; in memory: test/fakes/operator-console.store.ts).
 */
export interface OperatorConsoleStore {
  listNodes(operatorId: string): Promise<OperatorNodeRow[]>;
  /** The node if this operator holds it; null for another operator's node and for none. */
  findNode(operatorId: string, nodeId: string): Promise<OperatorNodeRow | null>;
  /** The node's points per epoch, newest first. */
  pointsByEpoch(nodeId: string, epochs: number): Promise<RcpEpochRow[]>;
  listWithdrawals(operatorId: string, limit: number): Promise<WithdrawalRow[]>;
}

export type OperatorsPort = Pick<OperatorsService, 'earnings' | 'enrolNode' | 'enrolmentToken' | 'requestWithdrawal'>;

export interface OperatorConsoleDeps {
  store: OperatorConsoleStore;
  presence: Pick<NodePresenceView, 'read'>;
  operators: OperatorsPort;
  /** RCP_EPOCH_SECONDS: epoch n covers [n × this, (n + 1) × this) seconds since the Unix epoch. */
  rcpEpochSeconds: number;
}

export class OperatorConsoleService {
  constructor(private readonly d: OperatorConsoleDeps) {}

  async nodes(p: AccountPrincipal): Promise<OperatorNodeView[]> {
    const rows = await this.d.store.listNodes(p.accountId);
    const presence = await this.d.presence.read(rows.map((r) => r.id));
    return rows.map((r) => nodeView(r, presence.get(r.id) ?? null));
  }

  async node(p: AccountPrincipal, nodeId: string): Promise<OperatorNodeView> {
    const row = await this.owned(p, nodeId);
    const presence = await this.d.presence.read([row.id]);
    return nodeView(row, presence.get(row.id) ?? null);
  }

  /** The node's contribution points per epoch, newest first. */
  async contributionPoints(p: AccountPrincipal, nodeId: string, epochs: number): Promise<RcpEpochView[]> {
    const row = await this.owned(p, nodeId);
    const ms = this.d.rcpEpochSeconds * 1000;
    return (await this.d.store.pointsByEpoch(row.id, epochs)).map((e) => ({
      epoch: e.epoch,
      starts_at: new Date(e.epoch * ms),
      ends_at: new Date((e.epoch + 1) * ms),
      job_points: e.job_points,
      uptime_points: e.uptime_points,
      total_points: e.job_points + e.uptime_points,
    }));
  }

  earnings(p: AccountPrincipal, range: { from?: string; to?: string }): ReturnType<OperatorsPort['earnings']> {
    return this.d.operators.earnings(p.accountId, range);
  }

  /** Enrols a node's address to the caller (its consent to the node's binding). */
  enrolNode(p: AccountPrincipal, node: string): ReturnType<OperatorsPort['enrolNode']> {
    return this.d.operators.enrolNode(p.accountId, node);
  }

  /** An enrolment token for one node address, to hand to that node (`resultity node run --enrolment-token`). */
  enrolmentToken(p: AccountPrincipal, node: string, ttlHours?: number): ReturnType<OperatorsPort['enrolmentToken']> {
    return this.d.operators.enrolmentToken(p.accountId, node, ttlHours);
  }

  async withdrawals(p: AccountPrincipal, limit: number): Promise<WithdrawalView[]> {
    return (await this.d.store.listWithdrawals(p.accountId, limit)).map(withdrawalView);
  }

  /** A withdrawal of the caller's own earnings (a ledger hold until exported for settlement); 402 when they do not cover it. */
  async requestWithdrawal(p: AccountPrincipal, credits: number, destination: string): Promise<WithdrawalView> {
    return withdrawalView(await this.d.operators.requestWithdrawal(p.accountId, credits, destination));
  }

  private async owned(p: AccountPrincipal, nodeId: string): Promise<OperatorNodeRow> {
    // Node ids are lower-case addresses; a malformed one cannot name a node (and costs no query).
    const id = nodeId.toLowerCase();
    const row = addressSchema.safeParse(id).success ? await this.d.store.findNode(p.accountId, id) : null;
    if (!row) throw errors.notFound('Node');
    return row;
  }
}

function withdrawalView(w: WithdrawalRow): WithdrawalView {
  return { ...w, amount: formatCredits(w.amount_micro) };
}

export function nodeView(r: OperatorNodeRow, presence: NodePresence | null, now = Date.now()): OperatorNodeView {
  const cooldownUntil = r.cooldown_until && r.cooldown_until.getTime() > now ? r.cooldown_until : null;
  const paused = r.paused === true;
  const frozen = r.frozen === true;
  const reason = r.shadow_banned === true || !r.reason ? null : r.reason;
  return {
    id: r.id,
    registered_at: r.created_at,
    last_registered_at: r.last_registered_at,
    online: presence !== null,
    presence,
    flags: { paused, frozen, cooldown_until: cooldownUntil, reason, updated_at: r.flags_updated_at },
    in_rotation: !paused && !frozen && cooldownUntil === null,
    score:
      r.score === null || r.score_updated_at === null
        ? null
        : {
            score: r.score,
            success_rate: r.success_rate ?? 0,
            latency_factor: r.latency_factor ?? 0,
            blind_accuracy: r.blind_accuracy ?? 0,
            attempts: r.attempts ?? 0,
            blind_jobs: r.blind_jobs ?? 0,
            updated_at: r.score_updated_at,
          },
  };
}
