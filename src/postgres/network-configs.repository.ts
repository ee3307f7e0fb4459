// Network config versions (migration 0017): append-only; a version, once stored, never changes.
import type { NetworkConfig } from '../domain/network-config.js';
import type { Queryable } from './db.js';

export interface NetworkConfigRow {
  version: number;
  digest: string;
  document: NetworkConfig;
  signature: string;
  published_at: Date;
  published_by: string;
}

const COLUMNS = `version, digest, document, signature, published_at, published_by`;

/**
 * Stores a version; null when that version number (or digest) is already stored: two instances making
 * the genesis version at once, or two publishers racing (the caller tells which).
 */
export async function insertNetworkConfig(
  q: Queryable,
  c: { version: number; digest: string; document: NetworkConfig; signature: string; publishedBy: string },
): Promise<NetworkConfigRow | null> {
  const r = await q.query<NetworkConfigRow>(
    `INSERT INTO network_configs (version, digest, document, signature, published_by) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT DO NOTHING RETURNING ${COLUMNS}`,
    [c.version, c.digest, JSON.stringify(c.document), c.signature, c.publishedBy],
  );
  return r.rows[0] ?? null;
}

/** The current version: the highest. */
export async function latestNetworkConfig(q: Queryable): Promise<NetworkConfigRow | null> {
  const r = await q.query<NetworkConfigRow>(`SELECT ${COLUMNS} FROM network_configs ORDER BY version DESC LIMIT 1`);
  return r.rows[0] ?? null;
}

export async function findNetworkConfig(q: Queryable, version: number): Promise<NetworkConfigRow | null> {
  const r = await q.query<NetworkConfigRow>(`SELECT ${COLUMNS} FROM network_configs WHERE version = $1`, [version]);
  return r.rows[0] ?? null;
}

/** Versions newest first, at most `limit`. */
export async function listNetworkConfigs(q: Queryable, limit: number): Promise<NetworkConfigRow[]> {
  const r = await q.query<NetworkConfigRow>(`SELECT ${COLUMNS} FROM network_configs ORDER BY version DESC LIMIT $1`, [limit]);
  return r.rows;
}

/** The longest job execution timeout any version ever stated (jobs accepted under an older one may still run). */
export async function longestExecutionTimeoutMs(q: Queryable): Promise<number | null> {
  const r = await q.query<{ ms: number | null }>(`SELECT max((document->'jobs'->>'executionTimeoutMs')::integer) AS ms FROM network_configs`);
  return r.rows[0]?.ms ?? null;
}
