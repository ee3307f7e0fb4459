// The short-HTTP fallback: a job's signed outcome POSTed to the gateway when the socket is down. The work
// is already done, so a transient failure (gateway restarting, network blip) is retried a few times; a
// 4xx is the gateway's final word (stale attempt, bad signature) and is not.
import type { Logger } from 'pino';
import type { JobErrorMessage, ResultMessage } from '../domain/protocol.js';
import { backoffDelay, delay } from './backoff.js';
import { describeError } from './errors.js';

export interface PostMessageOptions {
  url: string;
  message: ResultMessage | JobErrorMessage;
  /** No retry starts after this moment (ms since the epoch): the gateway would refuse a late outcome. */
  deadline: number;
  /** Aborted when the agent is killed: pending deliveries are abandoned with it. */
  signal: AbortSignal;
  logger: Logger;
  maxAttempts?: number;
  requestTimeoutMs?: number;
  retryBaseMs?: number;
}

/** True once the gateway answered 2xx. Never throws. */
export async function postNodeMessage(opts: PostMessageOptions): Promise<boolean> {
  const { message, logger } = opts;
  const maxAttempts = opts.maxAttempts ?? 5;
  const log = logger.child({ jobId: message.jobId, attempt: message.attempt, kind: message.type });
  for (let i = 0; i < maxAttempts; i++) {
    if (opts.signal.aborted) return false;
    if (i > 0) {
      if (Date.now() >= opts.deadline) break;
      try {
        await delay(backoffDelay(i - 1, { baseMs: opts.retryBaseMs ?? 250, maxMs: 5_000 }), opts.signal);
      } catch {
        return false;
      }
    }
    try {
      const res = await fetch(opts.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(message),
        signal: AbortSignal.any([opts.signal, AbortSignal.timeout(opts.requestTimeoutMs ?? 10_000)]),
      });
      const text = await res.text();
      if (res.ok) {
        log.info({ status: res.status }, 'job outcome delivered over HTTP');
        return true;
      }
      log.warn({ status: res.status, body: text.slice(0, 500) }, 'gateway refused the job outcome');
      if (res.status !== 429 && res.status < 500) return false;
    } catch (err) {
      if (opts.signal.aborted) return false;
      log.warn({ err: describeError(err) }, 'posting the job outcome failed');
    }
  }
  log.error('giving up delivering the job outcome');
  return false;
}
