// Node flags, set by the admin (pause, freeze, shadow-ban, cooldown, reinstatement) or by rule: a node
// whose attempts fail several times in a row (timeouts, errors, invalid results) is put in cooldown.
// PostgreSQL holds the flags; the Redis mirror is what every reservation checks.
import type { Config } from '../config.js';
import { errors } from '../errors.js';
import { NO_FLAGS, type NodeFlags } from '../domain/node-flags.js';
import type { AdminChange } from '../postgres/admin-changes.repository.js';
import type { NodeFlagsMirror } from '../redis/node-flags.mirror.js';

export type FlagChange = { paused?: boolean; frozen?: boolean; shadowBanned?: boolean; cooldownSeconds?: number };
export type StoredFlags = NodeFlags & { nodeId: string; reason: string };

export interface CooldownRule {
  /** Consecutive failed attempts that put a node in cooldown. */
  failures: number;
  /** How long the cooldown lasts. */
  seconds: number;
  /** Failures further apart than this do not add up. */
  windowMs: number;
}

/** The cooldown rule as configured; failures more than 10 minutes apart do not add up. */
export function cooldownRule(config: Pick<Config, 'NODE_COOLDOWN_FAILURES' | 'NODE_COOLDOWN_SECONDS'>): CooldownRule {
  return { failures: config.NODE_COOLDOWN_FAILURES, seconds: config.NODE_COOLDOWN_SECONDS, windowMs: 600_000 };
}

/**
 * What the service needs from PostgreSQL: the port its fast tests fake (test/fakes/node-flags.store.ts);
 * on the engine it is postgres/node-flags.store.ts.
 */
export interface NodeFlagsStore {
  /** The node's operator account, or null: no such node. */
  operatorOf(nodeId: string): Promise<string | null>;
  /** All of `fn` or none of it: the flags read (locked), written and logged in one transaction. */
  transaction<T>(fn: (tx: NodeFlagsTx) => Promise<T>): Promise<T>;
}

export interface NodeFlagsTx {
  /** The node's flags, locked to the end of the transaction; null: none were ever set. */
  getForUpdate(nodeId: string): Promise<StoredFlags | null>;
  put(nodeId: string, flags: NodeFlags, reason: string): Promise<StoredFlags>;
  recordAdminChange(change: AdminChange): Promise<void>;
}

/** The Redis side (redis/node-flags.mirror.ts): what every reservation checks, and the failure streaks. */
export type NodeFlagsMirrorPort = Pick<NodeFlagsMirror, 'write' | 'bumpFailures' | 'clearFailures'>;

export class NodeFlagsService {
  constructor(
    private readonly d: { store: NodeFlagsStore; mirror: NodeFlagsMirrorPort; rule: CooldownRule },
  ) {}

  /**
   * Sets the flags given (the others stay as they were); in force on every instance at the next
   * reservation. `actor` names the person who asked (admin API or CLI): the change is then written to the
   * admin change log in the same transaction; rule-made changes (cooldowns) pass none.
   */
  async set(nodeId: string, change: FlagChange, reason = '', actor: string | null = null): Promise<StoredFlags> {
    if (!(await this.d.store.operatorOf(nodeId))) throw errors.notFound('Node');
    const saved = await this.d.store.transaction(async (tx) => {
      const before = await tx.getForUpdate(nodeId);
      const current = before ?? NO_FLAGS;
      const next: NodeFlags = {
        paused: change.paused ?? current.paused,
        frozen: change.frozen ?? current.frozen,
        shadowBanned: change.shadowBanned ?? current.shadowBanned,
        cooldownUntil:
          change.cooldownSeconds === undefined ? current.cooldownUntil : change.cooldownSeconds > 0 ? Date.now() + change.cooldownSeconds * 1000 : null,
      };
      const after = await tx.put(nodeId, next, reason);
      if (actor !== null) await tx.recordAdminChange({ actor, action: 'node_flags.set', subject: nodeId, before, after });
      return after;
    });
    await this.d.mirror.write(nodeId, saved);
    return saved;
  }

  reinstate(nodeId: string, reason = 'reinstated', actor: string | null = null): Promise<StoredFlags> {
    return this.set(nodeId, { paused: false, frozen: false, shadowBanned: false, cooldownSeconds: 0 }, reason, actor);
  }

  /** Counts a failed attempt against the node; the rule's threshold puts it in cooldown. */
  async recordFailure(nodeId: string, outcome: string): Promise<void> {
    const streak = await this.d.mirror.bumpFailures(nodeId, this.d.rule.windowMs);
    if (streak < this.d.rule.failures) return;
    await this.d.mirror.clearFailures(nodeId);
    await this.set(nodeId, { cooldownSeconds: this.d.rule.seconds }, `cooldown: ${streak} failed attempts in a row (last: ${outcome})`);
  }

  /** A completed attempt ends the node's failure streak. */
  async recordSuccess(nodeId: string): Promise<void> {
    await this.d.mirror.clearFailures(nodeId);
  }
}
