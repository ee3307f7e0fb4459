// Space's PostgreSQL side (migrations/0024): a namespace's retention plan (on its row), its plan events,
// and the daily metering of extended retention.
import type { Queryable } from './db.js';
import type { NamespaceRetention, RetentionPlan } from '../domain/retention.js';

export interface SpaceEvent {
  at: Date;
  kind: 'plan_changed' | 'fell_back' | 'pinned' | 'unpinned' | 'job_shredded';
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

/** Namespaces that pay for storage: on an extended plan now, or holding pinned jobs. */
export async function listExtendedNamespaces(q: Queryable): Promise<Array<{ id: string; retention_plan: RetentionPlan; retention_days: number | null }>> {
  const r = await q.query<{ id: string; retention_plan: RetentionPlan; retention_days: number | null }>(
    `SELECT id, retention_plan, retention_days FROM namespaces n
      WHERE deleted_at IS NULL AND (retention_plan = 'extended' OR EXISTS (SELECT 1 FROM space_pins p WHERE p.namespace_id = n.id))
      ORDER BY id`,
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

export interface PinRow {
  job_id: string;
  pinned_at: Date;
  bytes: number;
}

/** Records a pin (false when the job was pinned already) and its event. */
export async function insertPin(q: Queryable, namespaceId: string, jobId: string, bytes: number): Promise<boolean> {
  const r = await q.query(
    `WITH pinned AS (
       INSERT INTO space_pins (job_id, namespace_id, bytes) VALUES ($1, $2, $3) ON CONFLICT (job_id) DO NOTHING RETURNING job_id
     )
     INSERT INTO space_events (namespace_id, kind, detail) SELECT $2, 'pinned', jsonb_build_object('job_id', job_id, 'bytes', $3::bigint) FROM pinned`,
    [jobId, namespaceId, bytes],
  );
  return (r.rowCount ?? 0) > 0;
}

/** Removes a pin and records its event; false when the job was not pinned in this namespace. */
export async function deletePin(q: Queryable, namespaceId: string, jobId: string, kind: 'unpinned' | 'job_shredded' = 'unpinned'): Promise<boolean> {
  const r = await q.query(
    `WITH gone AS (DELETE FROM space_pins WHERE job_id = $1 AND namespace_id = $2 RETURNING job_id)
     INSERT INTO space_events (namespace_id, kind, detail) SELECT $2, $3, jsonb_build_object('job_id', job_id) FROM gone`,
    [jobId, namespaceId, kind],
  );
  return (r.rowCount ?? 0) > 0;
}

/** Records a job's crypto-shredding (DELETE /v1/jobs/{id}) for its owner to see. */
export async function recordShred(q: Queryable, namespaceId: string, jobId: string, documents: number): Promise<void> {
  await q.query(`INSERT INTO space_events (namespace_id, kind, detail) VALUES ($1, 'job_shredded', jsonb_build_object('job_id', $2::text, 'documents', $3::int))`, [namespaceId, jobId, documents]);
}

export async function listPins(q: Queryable, namespaceId: string, limit = 1000): Promise<PinRow[]> {
  const r = await q.query<PinRow>(`SELECT job_id, pinned_at, bytes::float8 AS bytes FROM space_pins WHERE namespace_id = $1 ORDER BY pinned_at DESC LIMIT $2`, [namespaceId, limit]);
  return r.rows;
}

/** Releases every pin of a namespace (it could not pay for them); how many there were. */
export async function deleteAllPins(q: Queryable, namespaceId: string): Promise<number> {
  const r = await q.query(`DELETE FROM space_pins WHERE namespace_id = $1`, [namespaceId]);
  return r.rowCount ?? 0;
}

/** Storage charges of days `from` to `to` (YYYY-MM-DD, inclusive), for usage reports. */
export async function listMeteringsBetween(q: Queryable, namespaceId: string, from: string, to: string): Promise<MeteringRow[]> {
  const r = await q.query<MeteringRow>(
    `SELECT to_char(day, 'YYYY-MM-DD') AS day, stored_bytes::float8 AS stored_bytes, charged_micro::float8 AS charged_micro, fell_back
       FROM space_meterings WHERE namespace_id = $1 AND day BETWEEN $2::date AND $3::date ORDER BY day`,
    [namespaceId, from, to],
  );
  return r.rows;
}
