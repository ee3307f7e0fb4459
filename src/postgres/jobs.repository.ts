// Job rows: the authoritative record of every accepted job, its attempts and its settlement. Every state
// change is a conditional UPDATE fenced by status and attempt, so a late, duplicate or replayed event
// cannot move a job twice.
//
// The table is partitioned by day of `created_at` (migrations/0011). Every lookup by id also passes the
// creation time its id carries (jobIdTime) as `$2`: `created_at = $2` prunes the query to that day's
// partition at planning time. For an id that carries no time (accepted before ids were UUIDv7), $2 is
// NULL and the query visits each partition's primary-key index instead: correct, only slower.
import type { JobStatus } from '../domain/job-states.js';
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

export const JOB_COLUMNS = `id, namespace_id, api_key_id, model, status, attempt, max_attempts, node_id, max_tokens, prompt_tokens_bound, hold_micro, charged_micro,
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
 * The row accept_jobs (migrations/0018) inserts for `job`, as the accepting instance knows it without
 * reading it back: queued, no attempt yet, created at the time in its id.
 */
export function jobRowOf(job: NewJob): JobRow {
  return {
    id: job.id,
    namespace_id: job.namespaceId,
    api_key_id: job.apiKeyId,
    model: job.model,
    status: 'queued',
    attempt: 0,
    max_attempts: job.maxAttempts,
    node_id: null,
    max_tokens: job.maxTokens,
    prompt_tokens_bound: job.promptTokensBound,
    hold_micro: job.holdMicro,
    charged_micro: null,
    input_price_micro: job.inputPriceMicro,
    output_price_micro: job.outputPriceMicro,
    min_charge_micro: job.minChargeMicro,
    priority: job.priority ?? 'standard',
    surcharge_bps: job.surchargeBps ?? 0,
    prompt_tokens: null,
    completion_tokens: null,
    error_code: null,
    error_message: null,
    created_at: jobIdTime(job.id) ?? new Date(),
    deadline_at: job.deadlineAt,
    published_at: null,
    finished_at: null,
    network: job.network ?? 'mainnet',
    region: job.region ?? null,
    subcloud: job.subcloud ?? null,
    config_version: job.configVersion ?? null,
    attempt_timeout_ms: job.attemptTimeoutMs ?? null,
  };
}

export async function findJob(q: Queryable, id: string): Promise<JobRow | null> {
  const r = await q.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE ${JOB_BY_ID}`, byId(id));
  return r.rows[0] ?? null;
}

/** The job if it belongs to the namespace; another namespace's job is indistinguishable from none. */
export async function findJobInNamespace(q: Queryable, id: string, namespaceId: string): Promise<JobRow | null> {
  const r = await q.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE ${JOB_BY_ID} AND namespace_id = $3`, [...byId(id), namespaceId]);
  return r.rows[0] ?? null;
}

/**
 * Marks jobs published at the times their publish was confirmed, one statement for many (jobs/publish-marks.ts
 * sends them in batches, after a delay, and only for jobs not finished by then: a finished job leaves the
 * outbox by being finished).
 */
export async function markPublished(q: Queryable, marks: ReadonlyArray<{ id: string; at: Date }>): Promise<void> {
  if (marks.length === 0) return;
  const ids = marks.map((m) => m.id);
  await q.query(
    `UPDATE jobs SET published_at = u.at FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at)
      WHERE jobs.id = u.id AND jobs.published_at IS NULL AND jobs.finished_at IS NULL${withinDays(3, ids, 'jobs.')}`,
    [ids, marks.map((m) => m.at), ...daysParam(ids)],
  );
}

/** Unfinished jobs whose publish was never confirmed, oldest first (the outbox). */
export async function listUnpublished(q: Queryable, olderThan: Date, limit: number): Promise<JobRow[]> {
  const r = await q.query<JobRow>(
    `SELECT ${JOB_COLUMNS} FROM jobs WHERE published_at IS NULL AND finished_at IS NULL AND created_at < $1 ORDER BY created_at LIMIT $2`,
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
 * Ends attempt `attempt` (run by `nodeId`) without a result, if it may still end: the job is unfinished
 * and the attempt has not ended before. The job stays (or goes back to) queued, and `attempt` records the
 * attempt as ended, which fences it: its result can no longer settle (migrations/0018). True only for the
 * one call that ended it (its caller returns the node's slot); false when it had already ended or the
 * job is finished.
 */
/** Ends an attempt without a result, if it may still end; returns the job's namespace then (for its log), else null. */
export async function failAttempt(
  q: Queryable,
  a: { jobId: string; attempt: number; nodeId: string; outcome: string; reason: string; startedAt: Date | null },
): Promise<{ namespaceId: string } | null> {
  const r = await q.query<{ namespace_id: string }>(
    `WITH job AS (
       UPDATE jobs SET attempt = $3, status = 'queued'
        WHERE ${JOB_BY_ID} AND finished_at IS NULL
          AND ((status <> 'running' AND attempt < $3) OR (status = 'running' AND attempt = $3 AND node_id = $4))
        RETURNING id, created_at, namespace_id
     ), ended AS (
       INSERT INTO job_attempts (job_id, job_created_at, attempt, node_id, started_at, ended_at, outcome, reason)
       SELECT id, created_at, $3, $4, coalesce($7::timestamptz, now()), now(), $5, $6 FROM job
       ON CONFLICT (job_id, job_created_at, attempt) DO UPDATE SET outcome = EXCLUDED.outcome, reason = EXCLUDED.reason, ended_at = now()
       RETURNING job_id
     )
     SELECT job.namespace_id FROM job JOIN ended ON ended.job_id = job.id`,
    [...byId(a.jobId), a.attempt, a.nodeId, a.outcome, a.reason.slice(0, 500), a.startedAt],
  );
  const row = r.rows[0];
  return row ? { namespaceId: row.namespace_id } : null;
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

/**
 * Records on a job just ended without a result (endJobWithoutResult, same transaction) what its client was
 * charged for the part of an answer it received: the attempt and node, the backbone's token count, the charge.
 */
export async function chargeDelivered<R extends JobRow>(
  q: Queryable,
  row: R,
  d: { attempt: number; nodeId: string; usage: { prompt_tokens: number; completion_tokens: number }; chargedMicro: number },
): Promise<R> {
  await q.query(
    `UPDATE jobs SET charged_micro = $3, node_id = $4, attempt = greatest(attempt, $5), prompt_tokens = $6, completion_tokens = $7 WHERE ${JOB_BY_ID}`,
    [...byId(row.id), d.chargedMicro, d.nodeId, d.attempt, d.usage.prompt_tokens, d.usage.completion_tokens],
  );
  return { ...row, charged_micro: d.chargedMicro, node_id: d.nodeId, attempt: Math.max(row.attempt, d.attempt), prompt_tokens: d.usage.prompt_tokens, completion_tokens: d.usage.completion_tokens };
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
      WHERE ${JOB_BY_ID} AND finished_at IS NULL RETURNING ${JOB_COLUMNS}`,
    [...byId(id), status, code, message.slice(0, 1000)],
  );
  if (!r.rows[0]) return null;
  const interrupted = await q.query<{ node_id: string }>(
    `UPDATE job_attempts SET outcome = 'superseded', ended_at = now() WHERE ${ATTEMPTS_BY_JOB} AND outcome IS NULL RETURNING node_id`,
    byId(id),
  );
  return { ...r.rows[0], interrupted_node_id: interrupted.rows[0]?.node_id ?? null };
}
