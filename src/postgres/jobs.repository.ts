// Job rows: the authoritative record of every accepted job, its attempts and its settlement. Every state
// change is a conditional UPDATE fenced by status and attempt, so a late, duplicate or replayed event
// cannot move a job twice.
//
// The table is partitioned by day of `created_at` (migrations/0011). Every lookup by id also passes the
// creation time its id carries (jobIdTime) as `$2`: `created_at = $2` prunes the query to that day's
// partition at planning time. For an id that carries no time (accepted before ids were UUIDv7), $2 is
// NULL and the query visits each partition's primary-key index instead: correct, only slower.
import type { JobStatus } from '../domain/jobs.js';
import { jobIdTime } from '../domain/job-ids.js';
import type { PriorityClass } from '../domain/priority.js';
import type { Queryable } from './db.js';

export interface JobRow {
  id: string;
  namespace_id: string;
  api_key_id: string;
  model: string;
  status: JobStatus;
  attempt: number;
  max_attempts: number;
  node_id: string | null;
  max_tokens: number;
  prompt_tokens_bound: number;
  hold_micro: number;
  charged_micro: number | null;
  input_price_micro: number;
  output_price_micro: number;
  min_charge_micro: number;
  priority: PriorityClass;
  surcharge_bps: number;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  error_code: string | null;
  error_message: string | null;
  created_at: Date;
  deadline_at: Date;
  published_at: Date | null;
  finished_at: Date | null;
  /** Placement (migration 0012): the namespace's network and subcloud when accepted, the region asked for. */
  network: string;
  region: string | null;
  subcloud: string | null;
  /** Terms from the network config in force at accept (migration 0017); null on older jobs. */
  config_version: number | null;
  attempt_timeout_ms: number | null;
}

const COLUMNS = `id, namespace_id, api_key_id, model, status, attempt, max_attempts, node_id, max_tokens, prompt_tokens_bound, hold_micro, charged_micro,
  input_price_micro, output_price_micro, min_charge_micro, priority, surcharge_bps, prompt_tokens, completion_tokens, error_code, error_message,
  created_at, deadline_at, published_at, finished_at, network, region, subcloud, config_version, attempt_timeout_ms`;

/**
 * `WHERE` condition for job $1 in its own partition ($2: jobIdTime of $1); see the head of this file.
 * Rows that reference a job take its `created_at` from the job row in SQL, never through JavaScript:
 * a Date keeps milliseconds, and a job created by now() has microseconds.
 */
export const JOB_BY_ID = `id = $1 AND ($2::timestamptz IS NULL OR created_at = $2)`;
/** The same for the attempts of job $1 (partitioned by their job's creation day). */
const ATTEMPTS_BY_JOB = `job_id = $1 AND ($2::timestamptz IS NULL OR job_created_at = $2)`;

/** The parameters $1 and $2 of JOB_BY_ID and ATTEMPTS_BY_JOB. */
export function byId(id: string): [string, Date | null] {
  return [id, jobIdTime(id)];
}

/** The job reached PostgreSQL after its own deadline: it is not accepted (see insertJobs). */
export class JobPastDeadlineError extends Error {
  constructor(readonly jobId: string) {
    super(`job ${jobId} reached the database after its deadline (a stalled accept, or this instance's clock is behind the database's)`);
    this.name = 'JobPastDeadlineError';
  }
}

export interface NewJob {
  id: string;
  namespaceId: string;
  apiKeyId: string;
  model: string;
  maxAttempts: number;
  maxTokens: number;
  promptTokensBound: number;
  holdMicro: number;
  inputPriceMicro: number;
  outputPriceMicro: number;
  minChargeMicro: number;
  /** Default 'standard' with no surcharge. */
  priority?: PriorityClass;
  surchargeBps?: number;
  deadlineAt: Date;
  /** Placement; unset: mainnet, any region, no subcloud (the columns' defaults). */
  network?: string;
  region?: string | null;
  subcloud?: string | null;
  /** The network config version in force and its execution timeout per attempt; unset: null (the environment's). */
  configVersion?: number | null;
  attemptTimeoutMs?: number | null;
}

/**
 * Inserts queued jobs with one statement (a batch of accepts shares it; see jobs/settlement-batch.ts).
 * Returns their rows in the order given; null for a job whose deadline has already passed by the
 * database's clock. `created_at` is the time in the job's id (or now() for an id without one). Refusing
 * late jobs means no job can land in a day later than the day's end plus the longest deadline, which is
 * when the maintenance role takes a day as closed and rolls it up (src/maintenance/history.service.ts).
 */
export async function insertJobs(q: Queryable, jobs: readonly NewJob[]): Promise<Array<JobRow | null>> {
  if (jobs.length === 0) return [];
  const col = <T>(f: (j: NewJob) => T) => jobs.map(f);
  const r = await q.query<JobRow>(
    `INSERT INTO jobs (id, namespace_id, api_key_id, model, status, max_attempts, max_tokens, prompt_tokens_bound, hold_micro,
                       input_price_micro, output_price_micro, min_charge_micro, deadline_at, created_at, network, region, subcloud, priority, surcharge_bps,
                       config_version, attempt_timeout_ms)
     SELECT id, namespace_id, api_key_id, model, 'queued', max_attempts, max_tokens, prompt_tokens_bound, hold_micro,
            input_price_micro, output_price_micro, min_charge_micro, deadline_at, coalesce(created_at, now()), network, region, subcloud, priority, surcharge_bps,
            config_version, attempt_timeout_ms
       FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::int[], $6::int[], $7::int[], $8::bigint[], $9::bigint[], $10::bigint[],
                   $11::bigint[], $12::timestamptz[], $13::timestamptz[], $14::text[], $15::text[], $16::text[], $17::text[], $18::int[],
                   $19::int[], $20::int[])
         AS u(id, namespace_id, api_key_id, model, max_attempts, max_tokens, prompt_tokens_bound, hold_micro, input_price_micro,
              output_price_micro, min_charge_micro, deadline_at, created_at, network, region, subcloud, priority, surcharge_bps,
              config_version, attempt_timeout_ms)
      WHERE deadline_at > now()
     RETURNING ${COLUMNS}`,
    [
      col((j) => j.id),
      col((j) => j.namespaceId),
      col((j) => j.apiKeyId),
      col((j) => j.model),
      col((j) => j.maxAttempts),
      col((j) => j.maxTokens),
      col((j) => j.promptTokensBound),
      col((j) => j.holdMicro),
      col((j) => j.inputPriceMicro),
      col((j) => j.outputPriceMicro),
      col((j) => j.minChargeMicro),
      col((j) => j.deadlineAt),
      col((j) => jobIdTime(j.id)),
      col((j) => j.network ?? 'mainnet'),
      col((j) => j.region ?? null),
      col((j) => j.subcloud ?? null),
      col((j) => j.priority ?? 'standard'),
      col((j) => j.surchargeBps ?? 0),
      col((j) => j.configVersion ?? null),
      col((j) => j.attemptTimeoutMs ?? null),
    ],
  );
  const byJobId = new Map(r.rows.map((row) => [row.id, row]));
  return jobs.map((j) => byJobId.get(j.id) ?? null);
}

export async function findJob(q: Queryable, id: string): Promise<JobRow | null> {
  const r = await q.query<JobRow>(`SELECT ${COLUMNS} FROM jobs WHERE ${JOB_BY_ID}`, byId(id));
  return r.rows[0] ?? null;
}

/** The job if it belongs to the namespace; another namespace's job is indistinguishable from none. */
export async function findJobInNamespace(q: Queryable, id: string, namespaceId: string): Promise<JobRow | null> {
  const r = await q.query<JobRow>(`SELECT ${COLUMNS} FROM jobs WHERE ${JOB_BY_ID} AND namespace_id = $3`, [...byId(id), namespaceId]);
  return r.rows[0] ?? null;
}

export async function markPublished(q: Queryable, id: string): Promise<void> {
  await q.query(`UPDATE jobs SET published_at = now() WHERE ${JOB_BY_ID} AND published_at IS NULL`, byId(id));
}

/** Unfinished jobs whose publish was never confirmed, oldest first (the outbox). */
/** Clears an unfinished job's publish mark, so that the outbox publishes it again. */
export async function markUnpublished(q: Queryable, id: string): Promise<void> {
  await q.query(`UPDATE jobs SET published_at = NULL WHERE ${JOB_BY_ID} AND finished_at IS NULL`, byId(id));
}

export async function listUnpublished(q: Queryable, olderThan: Date, limit: number): Promise<Array<Pick<JobRow, 'id' | 'model' | 'priority' | 'deadline_at'>>> {
  const r = await q.query<Pick<JobRow, 'id' | 'model' | 'priority' | 'deadline_at'>>(
    `SELECT id, model, priority, deadline_at FROM jobs WHERE published_at IS NULL AND finished_at IS NULL AND created_at < $1 ORDER BY created_at LIMIT $2`,
    [olderThan, limit],
  );
  return r.rows;
}

export async function listOverdue(q: Queryable, now: Date, limit: number): Promise<string[]> {
  const r = await q.query<{ id: string }>(
    `SELECT id FROM jobs WHERE finished_at IS NULL AND deadline_at < $1 ORDER BY deadline_at LIMIT $2`,
    [now, limit],
  );
  return r.rows.map((x) => x.id);
}

/**
 * Starts attempt `expectedAttempt + 1` on `nodeId`, but only if the job is still queued at
 * `expectedAttempt`: two schedulers holding duplicate messages of one job (an outbox republish, a
 * publisher retry) cannot both start an attempt; the loser gets null and waits on the winner's attempt.
 * The attempt counter is also the fence that makes any earlier attempt's result stale.
 */
export async function startAttempt(q: Queryable, id: string, nodeId: string, expectedAttempt: number): Promise<number | null> {
  const r = await q.query<{ attempt: number }>(
    `WITH started AS (
       UPDATE jobs SET attempt = attempt + 1, status = 'running', node_id = $3, started_at = coalesce(started_at, now())
        WHERE ${JOB_BY_ID} AND status = 'queued' AND attempt = $4 AND attempt < max_attempts RETURNING id, created_at, attempt
     )
     INSERT INTO job_attempts (job_id, job_created_at, attempt, node_id) SELECT id, created_at, attempt, $3 FROM started RETURNING attempt`,
    [...byId(id), nodeId, expectedAttempt],
  );
  return r.rows[0]?.attempt ?? null;
}

/**
 * Ends a running attempt without a result; the job goes back to queued. True only for the one call that
 * ended it (its caller returns the node's slot); false when the attempt was no longer current.
 */
export async function failAttempt(q: Queryable, id: string, attempt: number, outcome: string, reason: string): Promise<boolean> {
  const r = await q.query(
    `WITH job AS (
       UPDATE jobs SET status = 'queued' WHERE ${JOB_BY_ID} AND attempt = $3 AND status = 'running' RETURNING id
     )
     UPDATE job_attempts SET outcome = $4, reason = $5, ended_at = now()
      WHERE ${ATTEMPTS_BY_JOB} AND job_id = (SELECT id FROM job) AND attempt = $3 AND outcome IS NULL`,
    [...byId(id), attempt, outcome, reason.slice(0, 500)],
  );
  return (r.rowCount ?? 0) > 0;
}

/**
 * Partition pruning for statements on many jobs: when every id carries its creation time (UUIDv7), a
 * `created_at = ANY(...)` condition lets PostgreSQL visit only those days' partitions. Ids without a time
 * (random v4 ids of jobs older than migration 0011) get no condition: every partition's index is probed.
 */
function withinDays(param: number, ids: readonly string[], qualifier = ''): string {
  return ids.every((id) => jobIdTime(id) !== null) ? ` AND ${qualifier}created_at = ANY($${param}::timestamptz[])` : '';
}

function daysParam(ids: readonly string[]): [Date[]] | [] {
  const times = ids.map(jobIdTime);
  return times.every((t): t is Date => t !== null) ? [times] : [];
}

/** A result's claim on a job: its attempt, run by its node. */
export interface AttemptRef {
  jobId: string;
  attempt: number;
  nodeId: string;
}

/**
 * Locks, in job-id order, the job rows whose running attempt is one of `refs` (attempt and node both
 * matching); the others are not returned. Id order, so that two transactions locking overlapping sets
 * (duplicate results in two batches) cannot deadlock.
 */
export async function lockRunningAttempts(q: Queryable, refs: readonly AttemptRef[]): Promise<JobRow[]> {
  if (refs.length === 0) return [];
  const r = await q.query<JobRow>(
    `SELECT ${COLUMNS} FROM jobs
      WHERE (id, attempt, node_id) IN (SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[])) AND status = 'running'${withinDays(4, refs.map((x) => x.jobId))}
      ORDER BY id FOR UPDATE`,
    [refs.map((x) => x.jobId), refs.map((x) => x.attempt), refs.map((x) => x.nodeId), ...daysParam(refs.map((x) => x.jobId))],
  );
  return r.rows;
}

/**
 * Marks each job's current attempt completed, with its usage and charge; returns the rows completed (the
 * others' attempt was not current). One job at most once per call.
 */
export async function completeJobs(
  q: Queryable,
  jobs: ReadonlyArray<{ jobId: string; attempt: number; promptTokens: number; completionTokens: number; chargedMicro: number }>,
): Promise<JobRow[]> {
  if (jobs.length === 0) return [];
  const ids = jobs.map((j) => j.jobId);
  const r = await q.query<JobRow>(
    `WITH done AS (
       UPDATE jobs SET status = 'completed', prompt_tokens = u.p, completion_tokens = u.c, charged_micro = u.charged, finished_at = now()
         FROM unnest($1::uuid[], $2::int[], $3::int[], $4::int[], $5::bigint[]) AS u(job_id, job_attempt, p, c, charged)
        WHERE jobs.id = u.job_id AND jobs.attempt = u.job_attempt AND jobs.status = 'running'${withinDays(6, ids, 'jobs.')}
        RETURNING ${COLUMNS}
     ), attempts AS (
       UPDATE job_attempts a SET outcome = 'completed', ended_at = now() FROM done
        WHERE a.job_id = done.id AND a.job_created_at = done.created_at AND a.attempt = done.attempt
     )
     SELECT * FROM done`,
    [ids, jobs.map((j) => j.attempt), jobs.map((j) => j.promptTokens), jobs.map((j) => j.completionTokens), jobs.map((j) => j.chargedMicro), ...daysParam(ids)],
  );
  return r.rows;
}

/**
 * Ends an unfinished job as failed, expired or cancelled, charging nothing. Null when it had already ended.
 * `interrupted_node_id` is the node of the attempt this cut short (still running, so still holding a slot
 * on that node): the caller must release that slot.
 */
export async function endJobWithoutResult(
  q: Queryable,
  id: string,
  status: 'failed' | 'expired' | 'cancelled',
  code: string,
  message: string,
): Promise<(JobRow & { interrupted_node_id: string | null }) | null> {
  const r = await q.query<JobRow>(
    `UPDATE jobs SET status = $3, error_code = $4, error_message = $5, charged_micro = 0, finished_at = now()
      WHERE ${JOB_BY_ID} AND finished_at IS NULL RETURNING ${COLUMNS}`,
    [...byId(id), status, code, message.slice(0, 1000)],
  );
  if (!r.rows[0]) return null;
  const interrupted = await q.query<{ node_id: string }>(
    `UPDATE job_attempts SET outcome = 'superseded', ended_at = now() WHERE ${ATTEMPTS_BY_JOB} AND outcome IS NULL RETURNING node_id`,
    byId(id),
  );
  return { ...r.rows[0], interrupted_node_id: interrupted.rows[0]?.node_id ?? null };
}
