// Node flags, authoritative copy (migrations/0006).
import type { NodeFlags } from '../domain/node-flags.js';
import type { Queryable } from './db.js';

interface Row {
  node_id: string;
  paused: boolean;
  frozen: boolean;
  shadow_banned: boolean;
  cooldown_until: Date | null;
  reason: string;
}

function toFlags(r: Row): NodeFlags & { nodeId: string; reason: string } {
  return { nodeId: r.node_id, paused: r.paused, frozen: r.frozen, shadowBanned: r.shadow_banned, cooldownUntil: r.cooldown_until?.getTime() ?? null, reason: r.reason };
}

export async function putNodeFlags(q: Queryable, nodeId: string, f: NodeFlags, reason: string): Promise<NodeFlags & { nodeId: string; reason: string }> {
  const r = await q.query<Row>(
    `INSERT INTO node_flags (node_id, paused, frozen, shadow_banned, cooldown_until, reason) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (node_id) DO UPDATE SET paused = EXCLUDED.paused, frozen = EXCLUDED.frozen, shadow_banned = EXCLUDED.shadow_banned,
       cooldown_until = EXCLUDED.cooldown_until, reason = EXCLUDED.reason, updated_at = now()
     RETURNING node_id, paused, frozen, shadow_banned, cooldown_until, reason`,
    [nodeId, f.paused, f.frozen, f.shadowBanned, f.cooldownUntil === null ? null : new Date(f.cooldownUntil), reason],
  );
  return toFlags(r.rows[0]!);
}

/** `forUpdate`: lock the row to the end of the caller's transaction (to log the value it replaces). */
export async function getNodeFlags(q: Queryable, nodeId: string, forUpdate = false): Promise<(NodeFlags & { nodeId: string; reason: string }) | null> {
  const r = await q.query<Row>(`SELECT node_id, paused, frozen, shadow_banned, cooldown_until, reason FROM node_flags WHERE node_id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [nodeId]);
  return r.rows[0] ? toFlags(r.rows[0]) : null;
}

/** Every node that has any flag in force (what the Redis mirror must hold). */
export async function listActiveNodeFlags(q: Queryable): Promise<Array<NodeFlags & { nodeId: string; reason: string }>> {
  const r = await q.query<Row>(
    `SELECT node_id, paused, frozen, shadow_banned, cooldown_until, reason FROM node_flags
      WHERE paused OR frozen OR shadow_banned OR cooldown_until > now()`,
  );
  return r.rows.map(toFlags);
}
