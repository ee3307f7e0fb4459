// Space's PostgreSQL side (migrations/0024): a namespace's retention plan (on its row), its plan events,
// and the daily metering of extended retention.
import type { Queryable } from './db.js';
import type { NamespaceRetention, RetentionPlan } from '../domain/retention.js';

export interface SpaceEvent {
  at: Date;
  kind: 'plan_changed' | 'fell_back';
  detail: Record<string, unknown>;
}

/** Sets a namespace's plan and records the change; false when the namespace does not exist. */
export async function setRetentionPlan(q: Queryable, namespaceId: string, plan: NamespaceRetention, by: 'owner' | 'admin' | 'metering'): Promise<boolean> {
  const r = await q.query(
    `WITH changed AS (
       UPDATE namespaces SET retention_plan = $2, retention_days = $3 WHERE id = $1 AND deleted_at IS NULL RETURNING id
     )
     INSERT INTO space_events (namespace_id, kind, detail)
     SELECT id, CASE WHEN $4 = 'metering' THEN 'fell_back' ELSE 'plan_changed' END, jsonb_build_object('plan', $2::text, 'days', $3::int, 'by', $4::text) FROM changed`,
    [namespaceId, plan.retention_plan, plan.retention_days, by],
  );
  return (r.rowCount ?? 0) > 0;
}

export async function listSpaceEvents(q: Queryable, namespaceId: string, limit = 100): Promise<SpaceEvent[]> {
  const r = await q.query<SpaceEvent>(`SELECT at, kind, detail FROM space_events WHERE namespace_id = $1 ORDER BY at DESC, id DESC LIMIT $2`, [namespaceId, limit]);
  return r.rows;
}

/** Namespaces on an extended plan now, with their days. */
export async function listExtendedNamespaces(q: Queryable): Promise<Array<{ id: string; retention_days: number }>> {
  const r = await q.query<{ id: string; retention_days: number }>(
    `SELECT id, retention_days FROM namespaces WHERE retention_plan = 'extended' AND deleted_at IS NULL ORDER BY id`,
  );
  return r.rows;
}

/**
 * Claims a namespace's metering of `day` (the row's primary key: once, whichever instance gets there
 * first); false when it was metered already. Inside the caller's transaction, with the charge.
 */
export async function claimMetering(q: Queryable, m: { namespaceId: string; day: string; storedBytes: number; chargedMicro: number; ledgerTxnId: number | null; fellBack: boolean }): Promise<boolean> {
  const r = await q.query(
    `INSERT INTO space_meterings (namespace_id, day, stored_bytes, charged_micro, ledger_txn_id, fell_back) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (namespace_id, day) DO NOTHING`,
    [m.namespaceId, m.day, m.storedBytes, m.chargedMicro, m.ledgerTxnId, m.fellBack],
  );
  return (r.rowCount ?? 0) > 0;
}

export async function isMetered(q: Queryable, namespaceId: string, day: string): Promise<boolean> {
  const r = await q.query(`SELECT 1 FROM space_meterings WHERE namespace_id = $1 AND day = $2`, [namespaceId, day]);
  return (r.rowCount ?? 0) > 0;
}

export interface MeteringRow {
  day: string;
  stored_bytes: number;
  charged_micro: number;
  fell_back: boolean;
}

export async function listMeterings(q: Queryable, namespaceId: string, limit = 100): Promise<MeteringRow[]> {
  const r = await q.query<MeteringRow>(
    `SELECT to_char(day, 'YYYY-MM-DD') AS day, stored_bytes::float8 AS stored_bytes, charged_micro::float8 AS charged_micro, fell_back
       FROM space_meterings WHERE namespace_id = $1 ORDER BY day DESC LIMIT $2`,
    [namespaceId, limit],
  );
  return r.rows;
}

export type { RetentionPlan };
