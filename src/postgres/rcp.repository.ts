// Contribution point records (migrations/0009): append-only.
import type { Queryable } from './db.js';

/** Records `points` for each completed job, credited to the node that ran it; a second write of a job changes nothing. */
export async function recordJobPoints(q: Queryable, epoch: number, points: number, jobs: ReadonlyArray<{ nodeId: string; jobId: string }>): Promise<void> {
  if (jobs.length === 0) return;
  await q.query(
    `INSERT INTO rcp_records (node_id, epoch, kind, points, job_id)
     SELECT u.node, $1, 'job', $2, u.job FROM unnest($3::text[], $4::uuid[]) AS u(node, job)
     ON CONFLICT DO NOTHING`,
    [epoch, points, jobs.map((j) => j.nodeId), jobs.map((j) => j.jobId)],
  );
}

/** Writes an epoch's uptime records; a second write of the same epoch changes nothing. */
export async function recordUptime(q: Queryable, epoch: number, rows: ReadonlyArray<{ nodeId: string; points: number }>): Promise<void> {
  if (rows.length === 0) return;
  await q.query(
    `INSERT INTO rcp_records (node_id, epoch, kind, points)
     SELECT u.node, $1, 'uptime', u.points FROM unnest($2::text[], $3::bigint[]) AS u(node, points)
      WHERE EXISTS (SELECT 1 FROM nodes n WHERE n.id = u.node)
     ON CONFLICT DO NOTHING`,
    [epoch, rows.map((r) => r.nodeId), rows.map((r) => r.points)],
  );
}

export interface RcpEpochRow {
  epoch: number;
  job_points: number;
  uptime_points: number;
}

export async function rcpByEpoch(q: Queryable, nodeId: string, limit: number): Promise<RcpEpochRow[]> {
  const r = await q.query<RcpEpochRow>(
    `SELECT epoch, coalesce(sum(points) FILTER (WHERE kind = 'job'), 0)::bigint AS job_points,
            coalesce(sum(points) FILTER (WHERE kind = 'uptime'), 0)::bigint AS uptime_points
       FROM rcp_records WHERE node_id = $1 GROUP BY epoch ORDER BY epoch DESC LIMIT $2`,
    [nodeId, limit],
  );
  return r.rows;
}
