// Subclouds, their members and the eligibility revision (migration 0012). Every change to the rules the
// Redis mirror holds bumps the revision in the same transaction (bumpEligibilityRevision).
import type { Network } from '../domain/eligibility.js';
import type { EligibilityRules } from '../domain/eligibility.js';
import type { Queryable } from './db.js';

export interface SubcloudRow {
  name: string;
  network: Network;
  allowed_models: string[];
  min_gpu_memory_mb: number;
  isolate: boolean;
  created_at: Date;
  updated_at: Date;
}

export interface SubcloudSettings {
  network: Network;
  allowedModels: string[];
  minGpuMemoryMb: number;
  isolate: boolean;
}

const COLUMNS = `name, network, allowed_models, min_gpu_memory_mb, isolate, created_at, updated_at`;

/** Bumps the eligibility revision; call inside the transaction of the change it covers. */
export async function bumpEligibilityRevision(q: Queryable): Promise<void> {
  await q.query(`UPDATE eligibility_revision SET revision = revision + 1`);
}

/** The current revision, as `<database uuid>:<counter>` (see migration 0012). */
export async function eligibilityRevision(q: Queryable): Promise<string> {
  const r = await q.query<{ revision: string }>(`SELECT database || ':' || revision AS revision FROM eligibility_revision`);
  return r.rows[0]!.revision;
}

/** Inserts a subcloud; null when the name is taken. */
export async function insertSubcloud(q: Queryable, name: string, s: SubcloudSettings): Promise<SubcloudRow | null> {
  const r = await q.query<SubcloudRow>(
    `INSERT INTO subclouds (name, network, allowed_models, min_gpu_memory_mb, isolate) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (name) DO NOTHING RETURNING ${COLUMNS}`,
    [name, s.network, s.allowedModels, s.minGpuMemoryMb, s.isolate],
  );
  return r.rows[0] ?? null;
}

/** Updates a subcloud's policy (not its network: see the service); null when it does not exist. */
export async function updateSubcloud(q: Queryable, name: string, s: Omit<SubcloudSettings, 'network'>): Promise<SubcloudRow | null> {
  const r = await q.query<SubcloudRow>(
    `UPDATE subclouds SET allowed_models = $2, min_gpu_memory_mb = $3, isolate = $4, updated_at = now() WHERE name = $1 RETURNING ${COLUMNS}`,
    [name, s.allowedModels, s.minGpuMemoryMb, s.isolate],
  );
  return r.rows[0] ?? null;
}

export async function findSubcloud(q: Queryable, name: string, forUpdate = false): Promise<SubcloudRow | null> {
  const r = await q.query<SubcloudRow>(`SELECT ${COLUMNS} FROM subclouds WHERE name = $1${forUpdate ? ' FOR UPDATE' : ''}`, [name]);
  return r.rows[0] ?? null;
}

/** Every subcloud (or the one named) with its members and the number of namespaces bound to it. */
export async function listSubclouds(q: Queryable, name?: string): Promise<Array<SubcloudRow & { members: string[]; namespaces: number }>> {
  const r = await q.query<SubcloudRow & { members: string[]; namespaces: number }>(
    `SELECT ${COLUMNS.split(', ').map((c) => `s.${c}`).join(', ')},
            coalesce((SELECT array_agg(node_id ORDER BY node_id) FROM subcloud_members m WHERE m.subcloud = s.name), '{}') AS members,
            (SELECT count(*)::int FROM namespaces n WHERE n.subcloud = s.name) AS namespaces
       FROM subclouds s WHERE $1::text IS NULL OR s.name = $1 ORDER BY s.name`,
    [name ?? null],
  );
  return r.rows;
}

/** Deletes a subcloud (its memberships go with it); 'bound' when namespaces are still bound to it. */
export async function deleteSubcloud(q: Queryable, name: string): Promise<'deleted' | 'not_found' | 'bound'> {
  const bound = await q.query(`SELECT 1 FROM namespaces WHERE subcloud = $1 LIMIT 1`, [name]);
  if ((bound.rowCount ?? 0) > 0) return 'bound';
  const r = await q.query(`DELETE FROM subclouds WHERE name = $1`, [name]);
  return (r.rowCount ?? 0) > 0 ? 'deleted' : 'not_found';
}

/** Adds a member; false when it already was one. */
export async function addSubcloudMember(q: Queryable, subcloud: string, nodeId: string): Promise<boolean> {
  const r = await q.query(`INSERT INTO subcloud_members (subcloud, node_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [subcloud, nodeId]);
  return (r.rowCount ?? 0) > 0;
}

/** Removes a member; false when it was not one. */
export async function removeSubcloudMember(q: Queryable, subcloud: string, nodeId: string): Promise<boolean> {
  const r = await q.query(`DELETE FROM subcloud_members WHERE subcloud = $1 AND node_id = $2`, [subcloud, nodeId]);
  return (r.rowCount ?? 0) > 0;
}

/**
 * The rules the Redis mirror holds, read at one revision. Run it in a REPEATABLE READ transaction, so
 * that the revision and the rows are one snapshot.
 */
export async function readEligibilityRules(q: Queryable): Promise<EligibilityRules> {
  const revision = await eligibilityRevision(q);
  const models = await q.query<{ name: string; version: string; min_gpu_memory_mb: number }>(`SELECT name, version, min_gpu_memory_mb FROM models`);
  const subclouds = await listSubclouds(q);
  return {
    revision,
    models: models.rows.map((m) => ({ name: m.name, version: m.version, minGpuMemoryMb: m.min_gpu_memory_mb })),
    subclouds: subclouds.map((s) => ({
      name: s.name,
      network: s.network,
      models: s.allowed_models,
      minGpuMemoryMb: s.min_gpu_memory_mb,
      isolate: s.isolate,
      members: s.members,
    })),
  };
}
