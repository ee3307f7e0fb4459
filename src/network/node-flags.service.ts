// Node flags, set by the admin (pause, freeze, shadow-ban, cooldown, reinstatement) or by rule: a node
// whose attempts fail several times in a row (timeouts, errors, invalid results) is put in cooldown.
// PostgreSQL holds the flags; the Redis mirror is what every reservation checks.
import type { Config } from '../config.js';
import { errors } from '../errors.js';
import { NO_FLAGS, type NodeFlags } from '../domain/node-flags.js';
import { withTransaction, type Db } from '../postgres/db.js';
import { recordAdminChange } from '../postgres/admin-changes.repository.js';
import { getNodeFlags, putNodeFlags } from '../postgres/node-flags.repository.js';
import { operatorOf } from '../postgres/nodes.repository.js';
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

export class NodeFlagsService {
  constructor(
    private readonly d: { db: Db; mirror: NodeFlagsMirror; rule: CooldownRule },
  ) {}

  /**
   * Sets the flags given (the others stay as they were); in force on every instance at the next
   * reservation. `actor` names the person who asked (admin API or CLI): the change is then written to the
   * admin change log in the same transaction; rule-made changes (cooldowns) pass none.
   */
  async set(nodeId: string, change: FlagChange, reason = '', actor: string | null = null): Promise<StoredFlags> {
    if (!(await operatorOf(this.d.db, nodeId))) throw errors.notFound('Node');
    const saved = await withTransaction(this.d.db, async (tx) => {
      const before = await getNodeFlags(tx, nodeId, true);
      const current = before ?? NO_FLAGS;
      const next: NodeFlags = {
        paused: change.paused ?? current.paused,
        frozen: change.frozen ?? current.frozen,
        shadowBanned: change.shadowBanned ?? current.shadowBanned,
        cooldownUntil:
          change.cooldownSeconds === undefined ? current.cooldownUntil : change.cooldownSeconds > 0 ? Date.now() + change.cooldownSeconds * 1000 : null,
      };
      const after = await putNodeFlags(tx, nodeId, next, reason);
      if (actor !== null) await recordAdminChange(tx, { actor, action: 'node_flags.set', subject: nodeId, before, after });
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
