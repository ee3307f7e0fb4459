// API keys, stored as SHA-256 hashes (see the migration for why a fast hash suffices).
import type { Queryable } from './db.js';

export interface ApiKeyRow {
  id: string;
  namespace_id: string;
  key_prefix: string;
  name: string;
  rate_limit_rps: number | null;
  rate_limit_burst: number | null;
  created_at: Date;
  revoked_at: Date | null;
}

const COLUMNS = `id, namespace_id, key_prefix, name, rate_limit_rps, rate_limit_burst, created_at, revoked_at`;

export async function insertApiKey(
  q: Queryable,
  k: { namespaceId: string; keyHash: Buffer; keyPrefix: string; name: string; rateLimitRps: number | null; rateLimitBurst: number | null },
): Promise<ApiKeyRow> {
  const r = await q.query<ApiKeyRow>(
    `INSERT INTO api_keys (namespace_id, key_hash, key_prefix, name, rate_limit_rps, rate_limit_burst)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
    [k.namespaceId, k.keyHash, k.keyPrefix, k.name, k.rateLimitRps, k.rateLimitBurst],
  );
  return r.rows[0]!;
}

/** The active (not revoked) key with this hash. */
export async function findActiveApiKeyByHash(q: Queryable, keyHash: Buffer): Promise<ApiKeyRow | null> {
  const r = await q.query<ApiKeyRow>(`SELECT ${COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL`, [keyHash]);
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
