// Aggregates over the jobs table for the public status API: counts and latencies only, never a job,
// namespace, key or node.
import type { Queryable } from './db.js';

export interface RecentJobStats {
  completed: number;
  failed: number;
  expired: number;
  cancelled: number;
  /** Submission to completion (created_at to finished_at) of the completed jobs, in ms; null without any. */
  p50Ms: number | null;
  p99Ms: number | null;
}

/**
 * Jobs that reached a terminal state in the last `windowSeconds` (by the database's clock, which also
 * stamped them). Latency percentiles are over completed jobs only: a failed or expired job's duration
 * is a timeout, not a service time.
 *
 * Reads the jobs_finished index of each day partition of the live window (a probe per partition).
 */
export async function recentJobStats(q: Queryable, windowSeconds: number): Promise<RecentJobStats> {
  const r = await q.query<{ completed: number; failed: number; expired: number; cancelled: number; p50: number | null; p99: number | null }>(
    `SELECT count(*) FILTER (WHERE status = 'completed')::int AS completed,
            count(*) FILTER (WHERE status = 'failed')::int AS failed,
            count(*) FILTER (WHERE status = 'expired')::int AS expired,
            count(*) FILTER (WHERE status = 'cancelled')::int AS cancelled,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at)::float8 * 1000) FILTER (WHERE status = 'completed') AS p50,
            percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at)::float8 * 1000) FILTER (WHERE status = 'completed') AS p99
       FROM jobs
      WHERE finished_at > now() - make_interval(secs => $1)`,
    [windowSeconds],
  );
  const row = r.rows[0]!;
  return { completed: row.completed, failed: row.failed, expired: row.expired, cancelled: row.cancelled, p50Ms: row.p50, p99Ms: row.p99 };
}

/**
 * Accepted jobs not finished, per model: waiting in RabbitMQ, held by a scheduler until a node frees a
 * slot, between attempts, or running (an attempt in flight lives in Redis: its row stays queued). Reads
 * only unfinished jobs (the partial index jobs_unfinished_deadline).
 */
export async function waitingJobsByModel(q: Queryable): Promise<Map<string, number>> {
  const r = await q.query<{ model: string; n: number }>(
    `SELECT model, count(*)::int AS n FROM jobs WHERE finished_at IS NULL AND status = 'queued' GROUP BY model`,
  );
  return new Map(r.rows.map((row) => [row.model, row.n]));
}
