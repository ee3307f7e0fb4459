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
}

const COLUMNS = `id, namespace_id, api_key_id, model, status, attempt, max_attempts, node_id, max_tokens, prompt_tokens_bound, hold_micro, charged_micro,
  input_price_micro, output_price_micro, min_charge_micro, priority, surcharge_bps, prompt_tokens, completion_tokens, error_code, error_message,
  created_at, deadline_at, published_at, finished_at, network, region, subcloud`;

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

/** The job reached PostgreSQL after its own deadline: it is not accepted (see insertJob). */
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
}

/**
 * Inserts a queued job. `created_at` is the time in the job's id (or now() for an id without one). A
 * job whose deadline has already passed by the database's clock is refused (JobPastDeadlineError): so
 * no job can land in a day later than the day's end plus the longest deadline, which is when the
 * maintenance role takes a day as closed and rolls it up (src/maintenance/history.service.ts).
 */
export async function insertJob(q: Queryable, j: NewJob): Promise<JobRow> {
  const r = await q.query<JobRow>(
    `INSERT INTO jobs (id, namespace_id, api_key_id, model, status, max_attempts, max_tokens, prompt_tokens_bound, hold_micro,
                       input_price_micro, output_price_micro, min_charge_micro, deadline_at, created_at, network, region, subcloud, priority, surcharge_bps)
     SELECT $1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9, $10, $11, $12, coalesce($13::timestamptz, now()), $14, $15, $16, $17, $18
      WHERE $12::timestamptz > now()
     RETURNING ${COLUMNS}`,
    [
      j.id,
      j.namespaceId,
      j.apiKeyId,
      j.model,
      j.maxAttempts,
      j.maxTokens,
      j.promptTokensBound,
      j.holdMicro,
      j.inputPriceMicro,
      j.outputPriceMicro,
      j.minChargeMicro,
      j.deadlineAt,
      jobIdTime(j.id),
      j.network ?? 'mainnet',
      j.region ?? null,
      j.subcloud ?? null,
      j.priority ?? 'standard',
      j.surchargeBps ?? 0,
    ],
  );
  if (!r.rows[0]) throw new JobPastDeadlineError(j.id);
  return r.rows[0];
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

/** Locks the job row if `attempt` is its running attempt on `nodeId`; null otherwise. */
export async function lockRunningAttempt(q: Queryable, id: string, attempt: number, nodeId: string): Promise<JobRow | null> {
  const r = await q.query<JobRow>(`SELECT ${COLUMNS} FROM jobs WHERE ${JOB_BY_ID} AND attempt = $3 AND status = 'running' AND node_id = $4 FOR UPDATE`, [
    ...byId(id),
    attempt,
    nodeId,
  ]);
  return r.rows[0] ?? null;
}

/** Marks the current attempt completed; returns the row as it was, or null when the attempt is not current. */
export async function completeJob(
  q: Queryable,
  id: string,
  attempt: number,
  u: { promptTokens: number; completionTokens: number; chargedMicro: number },
): Promise<JobRow | null> {
  const r = await q.query<JobRow>(
    `UPDATE jobs SET status = 'completed', prompt_tokens = $4, completion_tokens = $5, charged_micro = $6, finished_at = now()
      WHERE ${JOB_BY_ID} AND attempt = $3 AND status = 'running' RETURNING ${COLUMNS}`,
    [...byId(id), attempt, u.promptTokens, u.completionTokens, u.chargedMicro],
  );
  if (!r.rows[0]) return null;
  await q.query(`UPDATE job_attempts SET outcome = 'completed', ended_at = now() WHERE ${ATTEMPTS_BY_JOB} AND attempt = $3`, [...byId(id), attempt]);
  return r.rows[0];
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
