// Payload encryption's PostgreSQL side (migrations/0026): namespaces' wrapped data keys and the per-document
// salts that derive each payload document's key. Never holds an unwrapped key.
import type { Queryable } from './db.js';
import { CATALOG_CHANNEL } from './catalog-changes.js';

export interface NamespaceKeyRow {
  namespace_id: string;
  master_version: number;
  /** null once the namespace was crypto-shredded. */
  wrapped: Buffer | null;
}

export async function findNamespaceKey(q: Queryable, namespaceId: string): Promise<NamespaceKeyRow | null> {
  const r = await q.query<NamespaceKeyRow>(`SELECT namespace_id, master_version, wrapped FROM namespace_keys WHERE namespace_id = $1`, [namespaceId]);
  return r.rows[0] ?? null;
}

/**
 * Stores a namespace's first wrapped key unless one is there already (another instance made it first);
 * the row as it then stands, whoever made it. Refused (null) for a namespace deleted or unknown.
 */
export async function insertNamespaceKey(q: Queryable, namespaceId: string, masterVersion: number, wrapped: Buffer): Promise<NamespaceKeyRow | null> {
  await q.query(
    `INSERT INTO namespace_keys (namespace_id, master_version, wrapped)
     SELECT id, $2, $3 FROM namespaces WHERE id = $1 AND deleted_at IS NULL
     ON CONFLICT (namespace_id) DO NOTHING`,
    [namespaceId, masterVersion, wrapped],
  );
  return findNamespaceKey(q, namespaceId);
}

/** Wrapped keys under another master version than `current` (rotation's work list), a page at a time. */
export async function listKeysToRewrap(q: Queryable, current: number, limit: number): Promise<NamespaceKeyRow[]> {
  const r = await q.query<NamespaceKeyRow>(
    `SELECT namespace_id, master_version, wrapped FROM namespace_keys WHERE master_version <> $1 AND wrapped IS NOT NULL ORDER BY namespace_id LIMIT $2`,
    [current, limit],
  );
  return r.rows;
}

/** Replaces a wrapped key, if it is still the one read (a concurrent rewrap or shred wins otherwise). */
export async function replaceWrappedKey(q: Queryable, row: NamespaceKeyRow, masterVersion: number, wrapped: Buffer): Promise<boolean> {
  const r = await q.query(
    `UPDATE namespace_keys SET master_version = $3, wrapped = $4, rewrapped_at = now() WHERE namespace_id = $1 AND master_version = $2 AND wrapped IS NOT NULL`,
    [row.namespace_id, row.master_version, masterVersion, wrapped],
  );
  return (r.rowCount ?? 0) > 0;
}

/**
 * Destroys a namespace's key (also done by a trigger when the namespace is marked deleted, whose change every
 * instance hears on the catalogue's channel); announced on that channel here too, so that every instance
 * forgets the key it keeps for sealing.
 */
export async function shredNamespaceKey(q: Queryable, namespaceId: string): Promise<boolean> {
  const r = await q.query(`UPDATE namespace_keys SET wrapped = NULL, shredded_at = now() WHERE namespace_id = $1 AND wrapped IS NOT NULL`, [namespaceId]);
  await q.query(`DELETE FROM payload_keys WHERE namespace_id = $1`, [namespaceId]);
  await q.query(`SELECT pg_notify($1, 'namespaces:' || $2)`, [CATALOG_CHANNEL, namespaceId]);
  return (r.rowCount ?? 0) > 0;
}

/** Stores salts, one per document (ids made by the writer), in one statement. */
export async function insertPayloadSalts(q: Queryable, rows: ReadonlyArray<{ id: string; jobId: string; namespaceId: string; salt: Buffer }>): Promise<void> {
  await q.query(`INSERT INTO payload_keys (id, job_id, namespace_id, salt) SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bytea[])`, [
    rows.map((x) => x.id),
    rows.map((x) => x.jobId),
    rows.map((x) => x.namespaceId),
    rows.map((x) => x.salt),
  ]);
}

/** A document's salt as a read finds it, with its namespace's key as wrapped at that moment. */
export interface PayloadSaltRow {
  jobId: string;
  namespaceId: string;
  salt: Buffer;
  masterVersion: number;
  wrapped: Buffer;
}

/**
 * The salts of these documents that still exist (a shredded job's are gone), with their job and their
 * namespace's wrapped key, in the same statement: a namespace shredded (its key set to NULL) yields none,
 * whichever process asks and whatever it remembers, from that commit on.
 */
export async function findPayloadSalts(q: Queryable, ids: readonly string[]): Promise<Map<string, PayloadSaltRow>> {
  const out = new Map<string, PayloadSaltRow>();
  if (ids.length === 0) return out;
  const r = await q.query<{ id: string; job_id: string; namespace_id: string; salt: Buffer; master_version: number; wrapped: Buffer }>(
    `SELECT k.id, k.job_id, k.namespace_id, k.salt, n.master_version, n.wrapped
       FROM payload_keys k JOIN namespace_keys n ON n.namespace_id = k.namespace_id AND n.wrapped IS NOT NULL
      WHERE k.id = ANY($1::uuid[])`,
    [ids],
  );
  for (const row of r.rows) out.set(row.id, { jobId: row.job_id, namespaceId: row.namespace_id, salt: row.salt, masterVersion: row.master_version, wrapped: row.wrapped });
  return out;
}

/** Crypto-shreds one job: its documents' salts go; how many there were. */
export async function deletePayloadSalts(q: Queryable, jobId: string, namespaceId: string): Promise<number> {
  const r = await q.query(`DELETE FROM payload_keys WHERE job_id = $1 AND namespace_id = $2`, [jobId, namespaceId]);
  return r.rowCount ?? 0;
}

/**
 * Deletes salts written before `before` whose job is not pinned: their documents have expired under any
 * plan (the caller passes the longest retention ago), so this only shreds what is already gone.
 */
export async function deleteExpiredSalts(q: Queryable, before: Date, limit = 10_000): Promise<number> {
  const r = await q.query(
    `DELETE FROM payload_keys WHERE id IN (
       SELECT k.id FROM payload_keys k WHERE k.created_at < $1 AND NOT EXISTS (SELECT 1 FROM space_pins p WHERE p.job_id = k.job_id) LIMIT $2)`,
    [before, limit],
  );
  return r.rowCount ?? 0;
}
