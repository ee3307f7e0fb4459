// An operator's own nodes with what PostgreSQL knows of each: registration, flags (migrations/0006) and
// the latest score and its parts (migrations/0016). Read-only, for the operator console (account API);
// every query is scoped by the operator's account, so another account's node is simply absent.
import type { Queryable } from './db.js';

export interface OperatorNodeRow {
  id: string;
  created_at: Date;
  last_registered_at: Date;
  /** Null when the node never had a flag. */
  paused: boolean | null;
  frozen: boolean | null;
  shadow_banned: boolean | null;
  cooldown_until: Date | null;
  reason: string | null;
  flags_updated_at: Date | null;
  /** Null until the quality pass first scored the node. */
  score: number | null;
  success_rate: number | null;
  latency_factor: number | null;
  blind_accuracy: number | null;
  attempts: number | null;
  blind_jobs: number | null;
  score_updated_at: Date | null;
}

const SELECT = `SELECT n.id, n.created_at, n.last_registered_at,
       f.paused, f.frozen, f.shadow_banned, f.cooldown_until, f.reason, f.updated_at AS flags_updated_at,
       s.score, s.success_rate, s.latency_factor, s.blind_accuracy, s.attempts, s.blind_jobs, s.updated_at AS score_updated_at
  FROM nodes n LEFT JOIN node_flags f ON f.node_id = n.id LEFT JOIN node_scores s ON s.node_id = n.id`;

/** The operator's nodes, oldest registration first. */
export async function listOperatorNodes(q: Queryable, operatorAccountId: string): Promise<OperatorNodeRow[]> {
  const r = await q.query<OperatorNodeRow>(`${SELECT} WHERE n.operator_account_id = $1 ORDER BY n.created_at, n.id`, [operatorAccountId]);
  return r.rows;
}

/** One node of the operator's; null when it does not exist or belongs to another account (the caller cannot tell which). */
export async function findOperatorNode(q: Queryable, operatorAccountId: string, nodeId: string): Promise<OperatorNodeRow | null> {
  const r = await q.query<OperatorNodeRow>(`${SELECT} WHERE n.operator_account_id = $1 AND n.id = $2`, [operatorAccountId, nodeId]);
  return r.rows[0] ?? null;
}
