// The node registry: a node (its EVM address) bound to its operator's account.
import type { Queryable } from './db.js';

export type BindResult = 'bound' | 'unknown_operator' | 'bound_to_other_operator';

/**
 * Records a node's registration. The first registration binds the node to the operator it names; a node
 * already bound to another operator is refused (rebinding is an explicit, signed operation, not a side
 * effect of connecting).
 */
export async function bindNode(q: Queryable, nodeId: string, operatorAccountId: string): Promise<BindResult> {
  const r = await q.query<{ operator_account_id: string }>(
    `INSERT INTO nodes (id, operator_account_id)
     SELECT $1, a.id FROM accounts a WHERE a.id = $2
     ON CONFLICT (id) DO UPDATE SET last_registered_at = now()
     RETURNING operator_account_id`,
    [nodeId, operatorAccountId],
  );
  const row = r.rows[0];
  if (!row) {
    const existing = await q.query(`SELECT 1 FROM nodes WHERE id = $1`, [nodeId]);
    return existing.rowCount ? 'bound_to_other_operator' : 'unknown_operator';
  }
  return row.operator_account_id === operatorAccountId ? 'bound' : 'bound_to_other_operator';
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
