// Job rows: the authoritative record of every accepted job, its attempts and its settlement. Every state
// change is a conditional UPDATE fenced by status and attempt, so a late, duplicate or replayed event
// cannot move a job twice.
import type { JobStatus } from '../domain/jobs.js';
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

export async function insertJob(q: Queryable, j: NewJob): Promise<JobRow> {
  const r = await q.query<JobRow>(
    `INSERT INTO jobs (id, namespace_id, api_key_id, model, status, max_attempts, max_tokens, prompt_tokens_bound, hold_micro,
                       input_price_micro, output_price_micro, min_charge_micro, deadline_at, network, region, subcloud, priority, surcharge_bps)
     VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING ${COLUMNS}`,
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
      j.network ?? 'mainnet',
      j.region ?? null,
      j.subcloud ?? null,
      j.priority ?? 'standard',
      j.surchargeBps ?? 0,
    ],
  );
  return r.rows[0]!;
}

export async function findJob(q: Queryable, id: string): Promise<JobRow | null> {
  const r = await q.query<JobRow>(`SELECT ${COLUMNS} FROM jobs WHERE id = $1`, [id]);
  return r.rows[0] ?? null;
}

/** The job if it belongs to the namespace; another namespace's job is indistinguishable from none. */
export async function findJobInNamespace(q: Queryable, id: string, namespaceId: string): Promise<JobRow | null> {
  const r = await q.query<JobRow>(`SELECT ${COLUMNS} FROM jobs WHERE id = $1 AND namespace_id = $2`, [id, namespaceId]);
  return r.rows[0] ?? null;
}

export async function markPublished(q: Queryable, id: string): Promise<void> {
  await q.query(`UPDATE jobs SET published_at = now() WHERE id = $1 AND published_at IS NULL`, [id]);
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
 * The attempt counter is also the fence that makes any earlier attempt's result stale. Two statements:
 * run it inside a transaction.
 */
export async function startAttempt(q: Queryable, id: string, nodeId: string, expectedAttempt: number): Promise<number | null> {
  const r = await q.query<{ attempt: number }>(
    `UPDATE jobs SET attempt = attempt + 1, status = 'running', node_id = $2, started_at = coalesce(started_at, now())
      WHERE id = $1 AND status = 'queued' AND attempt = $3 AND attempt < max_attempts RETURNING attempt`,
    [id, nodeId, expectedAttempt],
  );
  const attempt = r.rows[0]?.attempt;
  if (attempt === undefined) return null;
  await q.query(`INSERT INTO job_attempts (job_id, attempt, node_id) VALUES ($1, $2, $3)`, [id, attempt, nodeId]);
  return attempt;
}

/**
 * Ends a running attempt without a result; the job goes back to queued. True only for the one call that
 * ended it (its caller returns the node's slot); false when the attempt was no longer current.
 */
export async function failAttempt(q: Queryable, id: string, attempt: number, outcome: string, reason: string): Promise<boolean> {
  const r = await q.query(
    `WITH job AS (
       UPDATE jobs SET status = 'queued' WHERE id = $1 AND attempt = $2 AND status = 'running' RETURNING id
     )
     UPDATE job_attempts SET outcome = $3, reason = $4, ended_at = now()
      WHERE job_id = (SELECT id FROM job) AND attempt = $2 AND outcome IS NULL`,
    [id, attempt, outcome, reason.slice(0, 500)],
  );
  return (r.rowCount ?? 0) > 0;
}

/** Locks the job row if `attempt` is its running attempt on `nodeId`; null otherwise. */
export async function lockRunningAttempt(q: Queryable, id: string, attempt: number, nodeId: string): Promise<JobRow | null> {
  const r = await q.query<JobRow>(`SELECT ${COLUMNS} FROM jobs WHERE id = $1 AND attempt = $2 AND status = 'running' AND node_id = $3 FOR UPDATE`, [
    id,
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
    `UPDATE jobs SET status = 'completed', prompt_tokens = $3, completion_tokens = $4, charged_micro = $5, finished_at = now()
      WHERE id = $1 AND attempt = $2 AND status = 'running' RETURNING ${COLUMNS}`,
    [id, attempt, u.promptTokens, u.completionTokens, u.chargedMicro],
  );
  if (!r.rows[0]) return null;
  await q.query(`UPDATE job_attempts SET outcome = 'completed', ended_at = now() WHERE job_id = $1 AND attempt = $2`, [id, attempt]);
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
    `UPDATE jobs SET status = $2, error_code = $3, error_message = $4, charged_micro = 0, finished_at = now()
      WHERE id = $1 AND finished_at IS NULL RETURNING ${COLUMNS}`,
    [id, status, code, message.slice(0, 1000)],
  );
  if (!r.rows[0]) return null;
  const interrupted = await q.query<{ node_id: string }>(
    `UPDATE job_attempts SET outcome = 'superseded', ended_at = now() WHERE job_id = $1 AND outcome IS NULL RETURNING node_id`,
    [id],
  );
  return { ...r.rows[0], interrupted_node_id: interrupted.rows[0]?.node_id ?? null };
}
