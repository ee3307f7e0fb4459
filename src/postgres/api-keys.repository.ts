// API keys, stored as SHA-256 hashes (see the migration for why a fast hash suffices).
import type { Queryable } from './db.js';

export interface ApiKeyRow {
  id: string;
  namespace_id: string;
  key_prefix: string;
  name: string;
  rate_limit_rps: number | null;
  rate_limit_burst: number | null;
  monthly_cap_micro: number | null;
  expires_at: Date | null;
  last_used_at: Date | null;
  created_at: Date;
  revoked_at: Date | null;
}

const COLUMNS = `id, namespace_id, key_prefix, name, rate_limit_rps, rate_limit_burst, monthly_cap_micro, expires_at, last_used_at, created_at, revoked_at`;

/** A key as written: its secret is hashed before it reaches the store. */
export interface NewApiKey {
  namespaceId: string;
  keyHash: Buffer;
  keyPrefix: string;
  name: string;
  rateLimitRps: number | null;
  rateLimitBurst: number | null;
  monthlyCapMicro: number | null;
  expiresAt: Date | null;
}

export async function insertApiKey(
  q: Queryable,
  k: NewApiKey,
): Promise<ApiKeyRow> {
  const r = await q.query<ApiKeyRow>(
    `INSERT INTO api_keys (namespace_id, key_hash, key_prefix, name, rate_limit_rps, rate_limit_burst, monthly_cap_micro, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${COLUMNS}`,
    [k.namespaceId, k.keyHash, k.keyPrefix, k.name, k.rateLimitRps, k.rateLimitBurst, k.monthlyCapMicro, k.expiresAt],
  );
  return r.rows[0]!;
}

/** The active (not revoked, not expired) key with this hash. */
export async function findActiveApiKeyByHash(q: Queryable, keyHash: Buffer): Promise<ApiKeyRow | null> {
  const r = await q.query<ApiKeyRow>(
    `SELECT ${COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`,
    [keyHash],
  );
  return r.rows[0] ?? null;
}

/** Revokes a key; returns its hash (to evict it from caches) or null when no active key had that id. */
export async function revokeApiKey(q: Queryable, id: string): Promise<Buffer | null> {
  const r = await q.query<{ key_hash: Buffer }>(`UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING key_hash`, [id]);
  return r.rows[0]?.key_hash ?? null;
}

export async function listApiKeys(q: Queryable, namespaceId: string): Promise<ApiKeyRow[]> {
  const r = await q.query<ApiKeyRow>(`SELECT ${COLUMNS} FROM api_keys WHERE namespace_id = $1 ORDER BY created_at`, [namespaceId]);
  return r.rows;
}

export async function findApiKey(q: Queryable, id: string): Promise<ApiKeyRow | null> {
  const r = await q.query<ApiKeyRow>(`SELECT ${COLUMNS} FROM api_keys WHERE id = $1`, [id]);
  return r.rows[0] ?? null;
}

export async function touchApiKey(q: Queryable, id: string): Promise<void> {
  await q.query(`UPDATE api_keys SET last_used_at = now() WHERE id = $1`, [id]);
}

/** Revokes every active key of a namespace; returns their hashes (to evict them from caches). */
export async function revokeNamespaceApiKeys(q: Queryable, namespaceId: string): Promise<Buffer[]> {
  const r = await q.query<{ key_hash: Buffer }>(
    `UPDATE api_keys SET revoked_at = now() WHERE namespace_id = $1 AND revoked_at IS NULL RETURNING key_hash`,
    [namespaceId],
  );
  return r.rows.map((row) => row.key_hash);
}
