// Webhook endpoints, their messages (the outbox: written in the transaction of their event, by the hot
// path's batch functions of migrations/0025 and by enqueueJobEnded here) and delivery attempts.
import type { Queryable } from './db.js';
import { ADVISORY_LOCKS } from './advisory-lock.js';

export const WEBHOOK_EVENTS = ['job.completed', 'job.failed', 'credits.low'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export interface WebhookEndpointRow {
  id: string;
  namespace_id: string;
  url: string;
  events: WebhookEvent[];
  low_credits_threshold_micro: number;
  description: string;
  created_at: Date;
  disabled_at: Date | null;
  disabled_reason: string | null;
}

const ENDPOINT_COLUMNS = `id, namespace_id, url, events, low_credits_threshold_micro, description, created_at, disabled_at, disabled_reason`;

export async function insertEndpoint(
  q: Queryable,
  e: { namespaceId: string; url: string; secret: string; events: readonly WebhookEvent[]; lowCreditsThresholdMicro: number; description: string },
): Promise<WebhookEndpointRow> {
  const r = await q.query<WebhookEndpointRow>(
    `INSERT INTO webhook_endpoints (namespace_id, url, secret, events, low_credits_threshold_micro, description)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${ENDPOINT_COLUMNS}`,
    [e.namespaceId, e.url, e.secret, e.events, e.lowCreditsThresholdMicro, e.description],
  );
  return r.rows[0]!;
}

/**
 * Inserts the endpoint unless its namespace already has `max`; null then. Under a transaction-scoped
 * advisory lock on the namespace, so that `tx` must be a transaction: two creates in one namespace queue
 * there, and the second counts after the first committed (READ COMMITTED: each statement sees the commits
 * made before it). A lock rather than the namespace row's FOR UPDATE, which would also stall the row's
 * other writers.
 */
export async function insertEndpointWithin(
  tx: Queryable,
  e: { namespaceId: string; url: string; secret: string; events: readonly WebhookEvent[]; lowCreditsThresholdMicro: number; description: string },
  max: number,
): Promise<WebhookEndpointRow | null> {
  await tx.query(`SELECT pg_advisory_xact_lock($1, hashtext($2))`, [ADVISORY_LOCKS.webhookEndpoints, e.namespaceId]);
  const r = await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM webhook_endpoints WHERE namespace_id = $1`, [e.namespaceId]);
  if (r.rows[0]!.n >= max) return null;
  return insertEndpoint(tx, e);
}

export async function listEndpoints(q: Queryable, namespaceId: string): Promise<WebhookEndpointRow[]> {
  const r = await q.query<WebhookEndpointRow>(`SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE namespace_id = $1 ORDER BY created_at`, [namespaceId]);
  return r.rows;
}

export async function findEndpoint(q: Queryable, namespaceId: string, id: string): Promise<WebhookEndpointRow | null> {
  const r = await q.query<WebhookEndpointRow>(`SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE namespace_id = $1 AND id = $2`, [namespaceId, id]);
  return r.rows[0] ?? null;
}

export async function deleteEndpoint(q: Queryable, namespaceId: string, id: string): Promise<boolean> {
  const r = await q.query(`DELETE FROM webhook_endpoints WHERE namespace_id = $1 AND id = $2`, [namespaceId, id]);
  return (r.rowCount ?? 0) > 0;
}

/** Enables a disabled endpoint again (its owner fixed the receiver). */
export async function enableEndpoint(q: Queryable, namespaceId: string, id: string): Promise<boolean> {
  const r = await q.query(`UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL WHERE namespace_id = $1 AND id = $2`, [namespaceId, id]);
  return (r.rowCount ?? 0) > 0;
}

export interface WebhookMessageRow {
  id: string;
  endpoint_id: string;
  event_type: string;
  payload: Record<string, unknown>;
  created_at: Date;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: Date;
  delivered_at: Date | null;
}

export interface WebhookAttemptRow {
  message_id: string;
  at: Date;
  response_status: number | null;
  error: string | null;
  duration_ms: number;
}

export async function listMessages(q: Queryable, endpointId: string, limit: number): Promise<Array<WebhookMessageRow & { attempt_log: WebhookAttemptRow[] }>> {
  const r = await q.query<WebhookMessageRow & { attempt_log: WebhookAttemptRow[] | null }>(
    `SELECT m.id, m.endpoint_id, m.event_type, m.payload, m.created_at, m.status, m.attempts, m.next_attempt_at, m.delivered_at,
            (SELECT json_agg(json_build_object('at', a.at, 'response_status', a.response_status, 'error', a.error, 'duration_ms', a.duration_ms) ORDER BY a.at)
               FROM webhook_attempts a WHERE a.message_id = m.id) AS attempt_log
       FROM webhook_messages m WHERE m.endpoint_id = $1 ORDER BY m.created_at DESC, m.id LIMIT $2`,
    [endpointId, limit],
  );
  return r.rows.map((m) => ({ ...m, attempt_log: m.attempt_log ?? [] }));
}

/** Queues a message again from its first attempt (the owner asked for it). False when it is not this endpoint's. */
export async function requeueMessage(q: Queryable, endpointId: string, messageId: string): Promise<boolean> {
  const r = await q.query(
    `UPDATE webhook_messages SET status = 'pending', attempts = 0, next_attempt_at = now(), delivered_at = NULL WHERE endpoint_id = $1 AND id = $2`,
    [endpointId, messageId],
  );
  return (r.rowCount ?? 0) > 0;
}

export interface DueMessage {
  id: string;
  endpoint_id: string;
  url: string;
  secret: string;
  payload: Record<string, unknown>;
  attempts: number;
  created_at: Date;
}

/**
 * Claims up to `limit` due messages of enabled endpoints by pushing their next attempt `leaseMs` ahead,
 * so that another instance's worker skips them while this one sends (a crash mid-send retries after the
 * lease: at least once, which the receiver's idempotency on `webhook-id` absorbs).
 */
export async function claimDueMessages(q: Queryable, limit: number, leaseMs: number): Promise<DueMessage[]> {
  const r = await q.query<DueMessage>(
    `WITH due AS (
       SELECT m.id FROM webhook_messages m JOIN webhook_endpoints e ON e.id = m.endpoint_id
        WHERE m.status = 'pending' AND m.next_attempt_at <= now() AND e.disabled_at IS NULL
        ORDER BY m.next_attempt_at LIMIT $1 FOR UPDATE OF m SKIP LOCKED)
     UPDATE webhook_messages m SET next_attempt_at = now() + make_interval(secs => $2::double precision / 1000)
       FROM due, webhook_endpoints e
      WHERE m.id = due.id AND e.id = m.endpoint_id
     RETURNING m.id, m.endpoint_id, e.url, e.secret, m.payload, m.attempts, m.created_at`,
    [limit, leaseMs],
  );
  return r.rows;
}

/**
 * Writes the job.failed messages of a job just ended without a result (failed or expired), for its
 * namespace's live endpoints that want them: inside the transaction that ended it (settlement.service.ts),
 * after its charge, so that none is lost and each says what was charged. A cancelled job (its client's
 * doing) has no event. The body is migration 0025's webhook_job_payload, as for job.completed.
 */
export async function enqueueJobEnded(
  q: Queryable,
  job: { id: string; namespace_id: string; model: string; status: string; charged_micro: number | null; error_code: string | null; error_message: string | null },
): Promise<void> {
  if (job.status !== 'failed' && job.status !== 'expired') return;
  await q.query(
    `INSERT INTO webhook_messages (id, endpoint_id, event_type, payload)
     SELECT webhook_message_id(), w.id, 'job.failed', webhook_job_payload('job.failed', $1, $2, $3, $4, $5, NULL, NULL, $6, $7)
       FROM webhook_endpoints w WHERE w.namespace_id = $2 AND w.disabled_at IS NULL AND 'job.failed' = ANY (w.events)`,
    [job.id, job.namespace_id, job.model, job.status, job.charged_micro ?? 0, job.error_code, job.error_message],
  );
}

/**
 * Records one attempt and its outcome: delivered; or pending again after `retryInMs`; or (null) failed
 * for good, which disables the endpoint when nothing reached it since this message was made (persistent
 * failure) and, in the same statement, leaves its owner a notice (namespace_notices, migration 0025).
 * Returns true when this disabled the endpoint.
 */
export async function recordAttempt(
  q: Queryable,
  m: DueMessage,
  a: { ok: boolean; responseStatus: number | null; error: string | null; durationMs: number; retryInMs: number | null },
): Promise<boolean> {
  await q.query(`INSERT INTO webhook_attempts (message_id, response_status, error, duration_ms) VALUES ($1, $2, $3, $4)`, [
    m.id,
    a.responseStatus,
    a.error?.slice(0, 500) ?? null,
    a.durationMs,
  ]);
  if (a.ok) {
    await q.query(`UPDATE webhook_messages SET status = 'delivered', attempts = attempts + 1, delivered_at = now() WHERE id = $1`, [m.id]);
    return false;
  }
  if (a.retryInMs !== null) {
    await q.query(`UPDATE webhook_messages SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => $2::double precision / 1000) WHERE id = $1`, [
      m.id,
      a.retryInMs,
    ]);
    return false;
  }
  await q.query(`UPDATE webhook_messages SET status = 'failed', attempts = attempts + 1 WHERE id = $1`, [m.id]);
  const reason = `every delivery failed since ${m.created_at.toISOString()}; last: ${(a.error ?? `HTTP ${a.responseStatus}`).slice(0, 200)}`;
  const r = await q.query(
    `WITH disabled AS (
       UPDATE webhook_endpoints e SET disabled_at = now(), disabled_reason = $3
        WHERE e.id = $1 AND e.disabled_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM webhook_messages d WHERE d.endpoint_id = e.id AND d.delivered_at >= $2)
        RETURNING e.id, e.namespace_id, e.url, e.disabled_at
     )
     INSERT INTO namespace_notices (namespace_id, kind, subject, message, detail)
     SELECT namespace_id, 'webhook_endpoint_disabled', id::text,
            'Webhook endpoint ' || url || ' was disabled after persistent delivery failure: ' || $3 || '. Fix the receiver, then enable it again; its failed messages can be redelivered.',
            jsonb_build_object('webhook_id', id, 'url', url, 'disabled_at', disabled_at, 'reason', $3::text, 'message_id', $4::text)
       FROM disabled`,
    [m.endpoint_id, m.created_at, reason, m.id],
  );
  return (r.rowCount ?? 0) > 0;
}
