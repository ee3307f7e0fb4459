// Blind probes, blind-job verdicts, node scores and the network's own principals (migration 0016).
import type { JobRequest } from '../domain/protocol.js';
import type { NodeScore } from '../domain/scores.js';
import type { Queryable } from './db.js';

export interface BlindProbeRow {
  id: string;
  model: string;
  request: JobRequest;
  expected_sha256: string | null;
  expected_contains: string | null;
  active: boolean;
  created_at: Date;
}

const PROBE_COLUMNS = `id, model, request, expected_sha256, expected_contains, active, created_at`;

export async function insertBlindProbe(
  q: Queryable,
  p: { model: string; request: JobRequest; expectedSha256: string | null; expectedContains: string | null },
): Promise<BlindProbeRow> {
  const r = await q.query<BlindProbeRow>(
    `INSERT INTO blind_probes (model, request, expected_sha256, expected_contains) VALUES ($1, $2, $3, $4) RETURNING ${PROBE_COLUMNS}`,
    [p.model, JSON.stringify(p.request), p.expectedSha256, p.expectedContains],
  );
  return r.rows[0]!;
}

export async function listBlindProbes(q: Queryable, activeOnly = false): Promise<BlindProbeRow[]> {
  const r = await q.query<BlindProbeRow>(`SELECT ${PROBE_COLUMNS} FROM blind_probes ${activeOnly ? 'WHERE active' : ''} ORDER BY created_at`);
  return r.rows;
}

/** Retires a probe (kept: past verdicts refer to it). Returns false when there is no such probe. */
export async function deactivateBlindProbe(q: Queryable, id: string): Promise<boolean> {
  const r = await q.query(`UPDATE blind_probes SET active = false WHERE id = $1`, [id]);
  return (r.rowCount ?? 0) > 0;
}

export async function recordBlindJob(q: Queryable, jobId: string, probeId: string): Promise<void> {
  await q.query(`INSERT INTO blind_jobs (job_id, probe_id) VALUES ($1, $2)`, [jobId, probeId]);
}

export interface PendingBlindJob {
  job_id: string;
  namespace_id: string;
  status: string;
  attempt: number;
  node_id: string | null;
  expected_sha256: string | null;
  expected_contains: string | null;
  /** Milliseconds since the job ended, by the database's clock. */
  ended_ms_ago: number;
}

/** Blind jobs whose job has ended and that have no verdict yet, oldest first. */
export async function listEndedUnevaluated(q: Queryable, limit: number): Promise<PendingBlindJob[]> {
  const r = await q.query<PendingBlindJob>(
    `SELECT b.job_id, j.namespace_id, j.status, j.attempt, j.node_id, p.expected_sha256, p.expected_contains,
            (extract(epoch FROM now() - j.finished_at) * 1000)::float8 AS ended_ms_ago
       FROM blind_jobs b JOIN jobs j ON j.id = b.job_id AND j.created_at = coalesce(job_id_time(b.job_id), j.created_at) JOIN blind_probes p ON p.id = b.probe_id
      WHERE b.evaluated_at IS NULL AND j.finished_at IS NOT NULL
      ORDER BY b.created_at LIMIT $1`,
    [limit],
  );
  return r.rows;
}

/** Records a verdict once: null `passed` means the job ended without an answer to judge. */
export async function recordBlindVerdict(q: Queryable, jobId: string, nodeId: string | null, passed: boolean | null, detail: string): Promise<boolean> {
  const r = await q.query(
    `UPDATE blind_jobs SET node_id = $2, passed = $3, detail = $4, evaluated_at = now() WHERE job_id = $1 AND evaluated_at IS NULL`,
    [jobId, nodeId, passed, detail],
  );
  return (r.rowCount ?? 0) > 0;
}

/** How many of the node's latest judged blind jobs in a row were failed. */
export async function blindFailureStreak(q: Queryable, nodeId: string, lookBack: number): Promise<number> {
  const r = await q.query<{ passed: boolean }>(
    `SELECT passed FROM blind_jobs WHERE node_id = $1 AND evaluated_at IS NOT NULL AND passed IS NOT NULL ORDER BY evaluated_at DESC LIMIT $2`,
    [nodeId, lookBack],
  );
  let streak = 0;
  for (const row of r.rows) {
    if (row.passed) break;
    streak++;
  }
  return streak;
}

export interface AttemptStats {
  node_id: string;
  model: string;
  completed: number;
  failed: number;
  /** Mean completion time of the node's completed attempts on the model, ms; null without any. */
  latency_ms: number | null;
}

/**
 * Attempt outcomes per node and model since `since`. Dropped connections and attempts superseded by
 * another are not the node's fault and are left out. `maxJobAgeMs` (the longest a job lives: its deadline)
 * bounds how long before `since` a job of such an attempt can have been created, which keeps the scan to
 * the day partitions of the window.
 */
export async function attemptStats(q: Queryable, since: Date, maxJobAgeMs: number): Promise<AttemptStats[]> {
  const r = await q.query<AttemptStats>(
    `SELECT a.node_id, j.model,
            count(*) FILTER (WHERE a.outcome = 'completed')::int AS completed,
            count(*) FILTER (WHERE a.outcome IN ('failed', 'timeout', 'invalid_result'))::int AS failed,
            (avg(extract(epoch FROM a.ended_at - a.started_at) * 1000) FILTER (WHERE a.outcome = 'completed'))::float8 AS latency_ms
       FROM job_attempts a JOIN jobs j ON j.id = a.job_id AND j.created_at = a.job_created_at
      WHERE a.started_at >= $1 AND a.ended_at IS NOT NULL
        -- An attempt starts after its job was created: these bounds keep both scans to the window's days.
        AND j.created_at >= $1 - $2::interval AND a.job_created_at >= $1 - $2::interval
      GROUP BY a.node_id, j.model`,
    [since, `${maxJobAgeMs} milliseconds`],
  );
  return r.rows;
}

export async function blindStats(q: Queryable, since: Date): Promise<Array<{ node_id: string; passed: number; evaluated: number }>> {
  const r = await q.query<{ node_id: string; passed: number; evaluated: number }>(
    `SELECT node_id, count(*) FILTER (WHERE passed)::int AS passed, count(*)::int AS evaluated
       FROM blind_jobs WHERE evaluated_at >= $1 AND passed IS NOT NULL AND node_id IS NOT NULL GROUP BY node_id`,
    [since],
  );
  return r.rows;
}

export interface NodeScoreRow {
  node_id: string;
  score: number;
  success_rate: number;
  latency_factor: number;
  blind_accuracy: number;
  usage_factor: number;
  attempts: number;
  blind_jobs: number;
  updated_at: Date;
}

export async function upsertNodeScore(q: Queryable, nodeId: string, s: NodeScore, attempts: number, blindJobs: number): Promise<void> {
  await q.query(
    `INSERT INTO node_scores (node_id, score, success_rate, latency_factor, blind_accuracy, usage_factor, attempts, blind_jobs) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (node_id) DO UPDATE SET score = EXCLUDED.score, success_rate = EXCLUDED.success_rate, latency_factor = EXCLUDED.latency_factor,
       blind_accuracy = EXCLUDED.blind_accuracy, usage_factor = EXCLUDED.usage_factor, attempts = EXCLUDED.attempts, blind_jobs = EXCLUDED.blind_jobs, updated_at = now()`,
    [nodeId, s.score, s.successRate, s.latencyFactor, s.blindAccuracy, s.usageFactor, attempts, blindJobs],
  );
}

export async function listNodeScores(q: Queryable): Promise<NodeScoreRow[]> {
  const r = await q.query<NodeScoreRow>(`SELECT * FROM node_scores ORDER BY node_id`);
  return r.rows;
}

export async function findSystemPrincipal(q: Queryable, purpose: string): Promise<{ namespace_id: string; api_key_id: string } | null> {
  const r = await q.query<{ namespace_id: string; api_key_id: string }>(`SELECT namespace_id, api_key_id FROM system_principals WHERE purpose = $1`, [purpose]);
  return r.rows[0] ?? null;
}

export async function saveSystemPrincipal(q: Queryable, purpose: string, namespaceId: string, apiKeyId: string): Promise<void> {
  await q.query(`INSERT INTO system_principals (purpose, namespace_id, api_key_id) VALUES ($1, $2, $3)`, [purpose, namespaceId, apiKeyId]);
}

/** When the newest blind job was submitted (in PostgreSQL, so the cadence holds whichever instance runs). */
export async function lastBlindJobAt(q: Queryable): Promise<Date | null> {
  const r = await q.query<{ at: Date | null }>(`SELECT max(created_at) AS at FROM blind_jobs`);
  return r.rows[0]?.at ?? null;
}
