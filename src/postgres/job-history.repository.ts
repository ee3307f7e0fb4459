// Job history (migrations/0011): the day partitions of `jobs` and `job_attempts`, and the daily rollups
// that outlive them. Partition DDL lives in the SQL functions create_job_partitions and
// drop_job_partitions; this module calls them and does the rollups.
import type { Queryable } from './db.js';

/** Days (YYYY-MM-DD) that have a `jobs` partition, oldest first. */
export async function listJobPartitionDays(q: Queryable): Promise<string[]> {
  const r = await q.query<{ day: string }>(
    `SELECT to_char(to_date(substr(c.relname, 6), 'YYYYMMDD'), 'YYYY-MM-DD') AS day
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = 'jobs'::regclass AND c.relname ~ '^jobs_[0-9]{8}$'
      ORDER BY 1`,
  );
  return r.rows.map((x) => x.day);
}

/**
 * Creates the day's partitions unless they exist; true when it created them. DDL on the hot table: it
 * waits at most `lockTimeoutMs` for its locks (then throws; partitions are made days ahead, so a later
 * run retries in time). Must run inside a transaction (SET LOCAL).
 */
export async function createJobPartitions(tx: Queryable, day: string, lockTimeoutMs: number): Promise<boolean> {
  await tx.query(`SELECT set_config('lock_timeout', $1, true)`, [`${lockTimeoutMs}ms`]);
  const r = await tx.query<{ created: boolean }>(`SELECT create_job_partitions($1::date) AS created`, [day]);
  return r.rows[0]!.created;
}

/**
 * Before a drop: holds off any write to the day's `jobs` partition until the transaction ends (SHARE
 * lock), so that a rollup taken now is exactly what the drop removes. Sets the transaction's lock_timeout
 * for the DDL that follows. Returns false when the day has no partition.
 */
export async function lockJobDayForDrop(tx: Queryable, day: string, lockTimeoutMs: number): Promise<boolean> {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) throw new Error(`not a day: ${day}`);
  await tx.query(`SELECT set_config('lock_timeout', $1, true)`, [`${lockTimeoutMs}ms`]);
  const partition = `jobs_${day.replaceAll('-', '')}`; // digits only: safe as an identifier
  const exists = await tx.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [partition]);
  if (!exists.rows[0]!.ok) return false;
  await tx.query(`LOCK TABLE "${partition}" IN SHARE MODE`);
  return true;
}

/** Drops the day's partitions (and its quarantine entries); false when there was none. After lockJobDayForDrop. */
export async function dropJobPartitions(tx: Queryable, day: string): Promise<boolean> {
  const r = await tx.query<{ dropped: boolean }>(`SELECT drop_job_partitions($1::date) AS dropped`, [day]);
  await tx.query(`UPDATE job_rollup_days SET raw_dropped_at = now() WHERE day = $1`, [day]);
  return r.rows[0]!.dropped;
}

export interface RollupDay {
  day: string;
  jobs: number;
  charged_micro: number;
  raw_dropped: boolean;
}

/** Rolled-up days in [from, to] (YYYY-MM-DD, inclusive), oldest first. */
export async function listRollupDays(q: Queryable, from: string, to: string): Promise<RollupDay[]> {
  const r = await q.query<RollupDay>(
    `SELECT to_char(day, 'YYYY-MM-DD') AS day, jobs, charged_micro, raw_dropped_at IS NOT NULL AS raw_dropped
       FROM job_rollup_days WHERE day BETWEEN $1::date AND $2::date ORDER BY day`,
    [from, to],
  );
  return r.rows;
}

/** Jobs created on the day that have not finished yet. */
export async function countUnfinishedOnDay(q: Queryable, day: string): Promise<number> {
  const r = await q.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM jobs
      WHERE created_at >= $1::date::timestamp AT TIME ZONE 'UTC' AND created_at < ($1::date + 1)::timestamp AT TIME ZONE 'UTC'
        AND finished_at IS NULL`,
    [day],
  );
  return r.rows[0]!.n;
}

/**
 * Rolls the day's raw jobs up into `job_rollups`, replacing any earlier rollup of that day (so running it
 * again never counts twice), and records the day as rolled up with its totals. Run it in one REPEATABLE
 * READ transaction: the rows and the totals then come from one snapshot. A concurrent rollup of the same
 * day fails on job_rollups' unique key instead of doubling it.
 */
export async function rollUpJobDay(tx: Queryable, day: string): Promise<{ jobs: number; charged_micro: number }> {
  await tx.query(`DELETE FROM job_rollups WHERE day = $1::date`, [day]);
  const r = await tx.query<{ jobs: number; charged_micro: number }>(
    `WITH rolled AS (
       INSERT INTO job_rollups (day, namespace_id, api_key_id, model, node_id, status, jobs, prompt_tokens, completion_tokens,
                                charged_micro, latency_ms_sum, latency_ms_max)
       SELECT $1::date, namespace_id, api_key_id, model, node_id, status, count(*),
              coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0), coalesce(sum(charged_micro), 0),
              coalesce(sum(latency_ms), 0), coalesce(max(latency_ms), 0)
         FROM (SELECT *, round(extract(epoch FROM finished_at - created_at) * 1000)::bigint AS latency_ms FROM jobs
                WHERE created_at >= $1::date::timestamp AT TIME ZONE 'UTC' AND created_at < ($1::date + 1)::timestamp AT TIME ZONE 'UTC') j
        GROUP BY namespace_id, api_key_id, model, node_id, status
       RETURNING jobs, charged_micro
     )
     INSERT INTO job_rollup_days (day, jobs, charged_micro)
     SELECT $1::date, coalesce(sum(jobs), 0), coalesce(sum(charged_micro), 0) FROM rolled
     ON CONFLICT (day) DO UPDATE SET jobs = EXCLUDED.jobs, charged_micro = EXCLUDED.charged_micro, rolled_up_at = now()
     RETURNING jobs, charged_micro`,
    [day],
  );
  return r.rows[0]!;
}
