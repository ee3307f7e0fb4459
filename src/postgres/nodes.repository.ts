// The node registry: a node (its EVM address) bound to its operator's account.
import type { Queryable } from './db.js';

export type BindResult = 'bound' | 'unknown_operator' | 'bound_to_other_operator' | 'not_enrolled';

/**
 * Records a node's registration. A node binds only to the operator that consented: the operator enrolled
 * its address beforehand (enrolNode: the node's row exists, bound to it), or the node presents an
 * enrolment token of that operator's (`consented`, checked by the caller: domain/enrolment.ts), which binds
 * it now. A node bound to another operator is refused (rebinding is an explicit operation, not a side
 * effect of connecting).
 */
export async function bindNode(q: Queryable, nodeId: string, operatorAccountId: string, consented: boolean): Promise<BindResult> {
  const r = await q.query<{ operator_account_id: string }>(
    `WITH seen AS (UPDATE nodes SET last_registered_at = now() WHERE id = $1 RETURNING operator_account_id),
     bound AS (
       INSERT INTO nodes (id, operator_account_id)
       SELECT $1, a.id FROM accounts a WHERE $3 AND a.id = $2 AND NOT EXISTS (SELECT 1 FROM seen)
       ON CONFLICT (id) DO NOTHING
       RETURNING operator_account_id
     )
     SELECT operator_account_id FROM seen UNION ALL SELECT operator_account_id FROM bound`,
    [nodeId, operatorAccountId, consented],
  );
  const row = r.rows[0];
  if (!row) {
    if (!consented) return 'not_enrolled';
    const existing = await q.query(`SELECT 1 FROM nodes WHERE id = $1`, [nodeId]);
    return existing.rowCount ? 'bound_to_other_operator' : 'unknown_operator';
  }
  return row.operator_account_id === operatorAccountId ? 'bound' : 'bound_to_other_operator';
}

export type EnrolResult = 'enrolled' | 'enrolled_elsewhere';

/**
 * The operator's consent, given ahead of the node's first registration: binds the address to the
 * operator. Idempotent for the same operator; 'enrolled_elsewhere' when another operator holds the node.
 */
export async function enrolNode(q: Queryable, nodeId: string, operatorAccountId: string): Promise<EnrolResult> {
  const r = await q.query<{ operator_account_id: string }>(
    `WITH enrolled AS (
       INSERT INTO nodes (id, operator_account_id) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING RETURNING operator_account_id
     )
     SELECT operator_account_id FROM enrolled UNION ALL SELECT operator_account_id FROM nodes WHERE id = $1`,
    [nodeId, operatorAccountId],
  );
  return r.rows[0]?.operator_account_id === operatorAccountId ? 'enrolled' : 'enrolled_elsewhere';
}

/** enrolNode for many addresses at once (a fleet's operator); addresses held by another operator stay theirs. */
export async function enrolNodes(q: Queryable, nodeIds: readonly string[], operatorAccountId: string): Promise<void> {
  await q.query(`INSERT INTO nodes (id, operator_account_id) SELECT unnest($1::text[]), $2 ON CONFLICT (id) DO NOTHING`, [nodeIds, operatorAccountId]);
}

export async function operatorOf(q: Queryable, nodeId: string): Promise<string | null> {
  const r = await q.query<{ operator_account_id: string }>(`SELECT operator_account_id FROM nodes WHERE id = $1`, [nodeId]);
  return r.rows[0]?.operator_account_id ?? null;
}

/** The operator account of each node that exists (one statement for a batch of settlements). */
export async function operatorsOf(q: Queryable, nodeIds: readonly string[]): Promise<Map<string, string>> {
  if (nodeIds.length === 0) return new Map();
  const r = await q.query<{ id: string; operator_account_id: string }>(`SELECT id, operator_account_id FROM nodes WHERE id = ANY($1::text[])`, [nodeIds]);
  return new Map(r.rows.map((row) => [row.id, row.operator_account_id]));
}

/** A node exists once it has registered (bound to its operator). */
export async function nodeExists(q: Queryable, nodeId: string): Promise<boolean> {
  const r = await q.query(`SELECT 1 FROM nodes WHERE id = $1`, [nodeId]);
  return (r.rowCount ?? 0) > 0;
}
