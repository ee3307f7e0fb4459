// Fast tier (docs/testing.md): the webhook worker's rules (WebhookDelivery) on the in-memory webhook
// tables, with a recording sender in place of HTTP. The same worker on the real engines, with a real
// receiver: test/integration/webhooks.test.ts and webhooks-crash.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Webhook } from 'standardwebhooks';
import { WEBHOOK_BATCH, WebhookDelivery, type SendWebhook } from '../../src/webhooks/webhook-delivery.service.js';
import { WebhooksService } from '../../src/webhooks/webhooks.service.js';
import { FakeWebhookDeliveryStore, FakeWebhookTables, FakeWebhooksStore } from '../fakes/webhooks.store.js';

const NS = 'ns-1';
const SCHEDULE = [5_000, 60_000];

interface Sent {
  url: string;
  body: string;
  headers: Record<string, string>;
}

/** The worker and the owner's service on one set of tables; `answer` decides each send's fate. */
async function setUp(answer: (sent: Sent, n: number) => number | Error = () => 204) {
  const tables = new FakeWebhookTables();
  const sent: Sent[] = [];
  const send: SendWebhook = (url, body, headers) => {
    sent.push({ url, body, headers });
    const a = answer({ url, body, headers }, sent.length);
    return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
  };
  const logs: Array<{ level: number; msg: string }> = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        logs.push(JSON.parse(chunk.toString()) as { level: number; msg: string });
        done();
      },
    }),
  );
  const worker = new WebhookDelivery({ store: new FakeWebhookDeliveryStore(tables), allowPrivateTargets: false, retryScheduleMs: SCHEDULE, timeoutMs: 1_000, intervalMs: 1_000, logger, send });
  const owner = new WebhooksService({ store: new FakeWebhooksStore(tables), allowPrivateTargets: true });
  const made = await owner.create(NS, { url: 'https://hooks.example.com/in', events: ['job.completed'] });
  return { tables, sent, logs, worker, owner, endpoint: made.endpoint, secret: made.secret };
}

/** The specification's signature, computed apart from the library the worker signs with. */
function specSignature(secret: string, id: string, timestamp: string, body: string): string {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

test('each message is sent signed (Standard Webhooks) with the secret its owner was shown, under its own id', async () => {
  const { tables, sent, worker, endpoint, secret } = await setUp();
  const payload = { type: 'job.completed', data: { id: 'job-1', charged: '0.000120' } };
  const id = tables.enqueue(endpoint.id, 'job.completed', payload);
  assert.equal(await worker.deliverDue(), 1);
  const [s] = sent;
  assert.equal(s!.url, 'https://hooks.example.com/in');
  assert.deepEqual(JSON.parse(s!.body), payload);
  assert.equal(s!.headers['webhook-id'], id);
  assert.equal(s!.headers['content-type'], 'application/json');
  assert.ok(Math.abs(Number(s!.headers['webhook-timestamp']) - Date.now() / 1000) < 5);
  assert.equal(s!.headers['webhook-signature'], specSignature(secret, id, s!.headers['webhook-timestamp']!, s!.body));
  assert.deepEqual(new Webhook(secret).verify(s!.body, s!.headers), payload);
  assert.equal(tables.message(id).status, 'delivered');
  assert.equal(await worker.deliverDue(), 0, 'a delivered message is not sent again');
});

test('a failed send is retried on the schedule; after the last retry the message fails, the endpoint is disabled and its owner told', async () => {
  const { tables, sent, logs, worker, owner, endpoint } = await setUp((_s, n) => (n === 2 ? new Error('connect ECONNREFUSED') : 503));
  const id = tables.enqueue(endpoint.id, 'job.completed', { type: 'job.completed' });
  assert.equal(await worker.deliverDue(), 1);
  assert.deepEqual([tables.message(id).status, tables.message(id).next_attempt_at.getTime() - tables.now], ['pending', SCHEDULE[0]]);
  tables.advance(SCHEDULE[0]! - 1);
  assert.equal(await worker.deliverDue(), 0, 'not before its wait');
  tables.advance(1);
  assert.equal(await worker.deliverDue(), 1);
  assert.equal(tables.message(id).next_attempt_at.getTime() - tables.now, SCHEDULE[1]);
  assert.equal((await owner.list(NS))[0]!.enabled, true, 'still enabled while retries remain');
  tables.advance(SCHEDULE[1]!);
  assert.equal(await worker.deliverDue(), 1);
  assert.equal(sent.length, SCHEDULE.length + 1);
  assert.equal(tables.message(id).status, 'failed');
  const [m] = await owner.messages(NS, endpoint.id, 10);
  assert.deepEqual(m!.attempts.map((a) => [a.response_status, a.error]), [[503, 'HTTP 503'], [null, 'connect ECONNREFUSED'], [503, 'HTTP 503']]);
  const [listed] = await owner.list(NS);
  assert.equal(listed!.enabled, false);
  assert.match(listed!.disabled_reason!, /every delivery failed.*HTTP 503/);
  const notices = await owner.notices(NS, 10);
  assert.deepEqual(notices.map((n) => [n.kind, n.subject]), [['webhook_endpoint_disabled', endpoint.id]]);
  assert.ok(logs.some((l) => l.level === 40 && /disabled after persistent failure/.test(l.msg)));
  tables.advance(3_600_000);
  assert.equal(await worker.deliverDue(), 0, 'nothing more is sent to a disabled endpoint');
});

test('a success on a retry delivers it: no later attempt, the endpoint stays enabled', async () => {
  const { tables, sent, worker, owner, endpoint } = await setUp((_s, n) => (n === 1 ? 500 : 200));
  const id = tables.enqueue(endpoint.id, 'job.completed', { type: 'job.completed' });
  await worker.deliverDue();
  tables.advance(SCHEDULE[0]!);
  await worker.deliverDue();
  tables.advance(SCHEDULE[1]! * 10);
  assert.equal(await worker.deliverDue(), 0);
  assert.equal(sent.length, 2);
  assert.equal(tables.message(id).status, 'delivered');
  assert.equal((await owner.list(NS))[0]!.enabled, true);
});

test('a redirect or other non-2xx answer is a failure, not a delivery', async () => {
  const { tables, worker, endpoint } = await setUp(() => 302);
  const id = tables.enqueue(endpoint.id, 'job.completed', { type: 'job.completed' });
  await worker.deliverDue();
  assert.deepEqual([tables.message(id).status, tables.message(id).attempt_log[0]!.error], ['pending', 'HTTP 302']);
});

test('enabled again, a failed message is redelivered under the same id and signed again', async () => {
  let up = false;
  const { tables, sent, worker, owner, endpoint, secret } = await setUp(() => (up ? 204 : 503));
  const id = tables.enqueue(endpoint.id, 'job.completed', { type: 'job.completed' });
  for (let i = 0; i <= SCHEDULE.length; i++) {
    await worker.deliverDue();
    tables.advance(SCHEDULE[i] ?? 0);
  }
  assert.equal((await owner.list(NS))[0]!.enabled, false);
  up = true;
  await owner.enable(NS, endpoint.id);
  await owner.redeliver(NS, endpoint.id, id);
  assert.equal(await worker.deliverDue(), 1);
  const last = sent.at(-1)!;
  assert.equal(last.headers['webhook-id'], id);
  assert.deepEqual(new Webhook(secret).verify(last.body, last.headers), { type: 'job.completed' });
  assert.equal(tables.message(id).status, 'delivered');
});

test('every due message is sent in one pass, batch after batch', async () => {
  const { tables, sent, worker, endpoint } = await setUp();
  const n = WEBHOOK_BATCH * 2 + 7;
  for (let i = 0; i < n; i++) tables.enqueue(endpoint.id, 'job.completed', { i });
  assert.equal(await worker.deliverDue(), n);
  assert.equal(new Set(sent.map((s) => s.headers['webhook-id'])).size, n);
  assert.ok(tables.db.state.messages.every((m) => m.status === 'delivered'));
});
