// The maintenance role's webhook worker: sends the messages the outbox holds (migrations/0023), each
// signed per the Standard Webhooks specification (`webhook-id`, `webhook-timestamp`, `webhook-signature`:
// HMAC-SHA256 with the endpoint's `whsec_` secret, by the `standardwebhooks` library), retried on the
// WEBHOOK_RETRY_SCHEDULE_MS waits (about a day by default); a message that exhausts them fails, and its
// endpoint is disabled when nothing reached it since (its owner sees why in the endpoint listing). A 2xx
// answer is a delivery; redirects are not followed (a redirect could lead into the private network).
import http from 'node:http';
import https from 'node:https';
import { lookup } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import type { Logger } from 'pino';
import { Webhook } from 'standardwebhooks';
import type { DueMessage } from '../postgres/webhooks.repository.js';
import { isInternalAddress } from '../domain/webhook-targets.js';
import { PeriodicTask } from '../common/periodic-task.js';

/** Messages claimed per round: a round sends them concurrently, then claims again while it got a full one. */
export const WEBHOOK_BATCH = 50;

/**
 * What the worker needs from PostgreSQL (postgres/webhooks.store.ts; in memory: test/fakes/webhooks.store.ts).
 */
export interface WebhookDeliveryStore {
  /** Up to `limit` due messages of enabled endpoints, leased for `leaseMs` (no other worker claims them meanwhile). */
  claimDue(limit: number, leaseMs: number): Promise<DueMessage[]>;
  /**
   * Records one attempt: delivered (`ok`); or pending again in `retryInMs`; or (null) failed for good,
   * which disables the endpoint when nothing reached it since the message was made and leaves its owner
   * a notice. True when this disabled the endpoint.
   */
  recordAttempt(m: DueMessage, a: AttemptOutcome & { durationMs: number; retryInMs: number | null }): Promise<boolean>;
}

export interface AttemptOutcome {
  ok: boolean;
  responseStatus: number | null;
  error: string | null;
}

/** POSTs a signed message; resolves with the answer's status code, rejects when none came. */
export type SendWebhook = (url: string, body: string, headers: Record<string, string>) => Promise<number>;

export class WebhookDelivery {
  private readonly task: PeriodicTask;
  private readonly send: SendWebhook;

  constructor(
    private readonly d: {
      store: WebhookDeliveryStore;
      allowPrivateTargets: boolean;
      retryScheduleMs: readonly number[];
      timeoutMs: number;
      intervalMs: number;
      logger: Logger;
      /** How a message is sent (default: HTTP(S), refusing internal addresses after DNS; see `post`). */
      send?: SendWebhook;
    },
  ) {
    this.task = new PeriodicTask('webhook delivery', d.intervalMs, () => this.deliverDue(), d.logger);
    this.send = d.send ?? ((url, body, headers) => this.post(url, body, headers));
  }

  start(): void {
    this.task.start({ immediately: true });
  }

  async stop(): Promise<void> {
    await this.task.stop();
  }

  /** Sends every due message (in batches, concurrently within one); returns how many were tried. */
  async deliverDue(): Promise<number> {
    let tried = 0;
    for (;;) {
      // Leased for longer than one send can take, so that no other worker sends it meanwhile.
      const batch = await this.d.store.claimDue(WEBHOOK_BATCH, this.d.timeoutMs * 3);
      await Promise.all(batch.map((m) => this.deliver(m)));
      tried += batch.length;
      if (batch.length < WEBHOOK_BATCH) return tried;
    }
  }

  private async deliver(m: DueMessage): Promise<void> {
    const body = JSON.stringify(m.payload);
    const now = new Date();
    const started = Date.now();
    let outcome: AttemptOutcome;
    try {
      const signature = new Webhook(m.secret).sign(m.id, now, body);
      const status = await this.send(m.url, body, {
        'content-type': 'application/json',
        'user-agent': 'Resultity-Webhooks/1',
        'webhook-id': m.id,
        'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
        'webhook-signature': signature,
      });
      outcome = { ok: status >= 200 && status < 300, responseStatus: status, error: status >= 200 && status < 300 ? null : `HTTP ${status}` };
    } catch (err) {
      outcome = { ok: false, responseStatus: null, error: err instanceof Error ? err.message : String(err) };
    }
    const retryInMs = outcome.ok ? null : (this.d.retryScheduleMs[m.attempts] ?? null);
    const disabled = await this.d.store.recordAttempt(m, { ...outcome, durationMs: Date.now() - started, retryInMs });
    if (!outcome.ok) this.d.logger.info({ messageId: m.id, endpointId: m.endpoint_id, attempt: m.attempts + 1, error: outcome.error }, 'webhook delivery failed');
    if (disabled) this.d.logger.warn({ endpointId: m.endpoint_id }, 'webhook endpoint disabled after persistent failure');
  }

  /** POSTs `body`; resolves with the status code. Refuses internal addresses at connect time, after DNS. */
  private post(url: string, body: string, headers: Record<string, string>): Promise<number> {
    const target = new URL(url);
    // A literal address is connected to without a look-up: judged here.
    const literal = target.hostname.replace(/^\[|\]$/g, '');
    if (isIP(literal) && !this.d.allowPrivateTargets && isInternalAddress(literal)) {
      return Promise.reject(new Error(`refused: ${literal} is a private or loopback address`));
    }
    const checkedLookup: LookupFunction = (hostname, options, callback) => {
      lookup(hostname, { ...options, all: true }, (err, addresses) => {
        if (err) return callback(err, '', 4);
        const list = addresses;
        const refused = !this.d.allowPrivateTargets && list.some((a) => isInternalAddress(a.address));
        if (refused) return callback(new Error(`refused: ${hostname} resolves to a private or loopback address`), '', 4);
        if (options.all) return callback(null, list);
        return callback(null, list[0]!.address, list[0]!.family);
      });
    };
    return new Promise((resolve, reject) => {
      const req = (target.protocol === 'https:' ? https : http).request(
        target,
        { method: 'POST', headers: { ...headers, 'content-length': Buffer.byteLength(body) }, lookup: checkedLookup, timeout: this.d.timeoutMs },
        (res) => {
          res.resume(); // the answer's body is not read: only its status counts
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.d.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}
