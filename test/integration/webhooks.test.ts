// Webhooks (issue 12, part 5) against a real HTTP receiver that verifies every delivery's signature with
// the `standardwebhooks` library (test/helpers/webhook-receiver.ts): job.completed, job.failed and
// credits.low, one message per event and endpoint; retries, disable after persistent failure with the
// owner told (endpoint view and notices), listing with attempts, redelivery; private targets refused
// unless allowed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestStack, TEST_MODEL } from '../helpers/stack.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';
import { WebhooksService } from '../../src/webhooks/webhooks.service.js';
import { webhooksStore } from '../../src/postgres/webhooks.store.js';
import { withTransaction } from '../../src/postgres/db.js';
import { ledgerAccountId, postTransaction } from '../../src/postgres/ledger.repository.js';

let stack: TestStack;
let receiver: WebhookReceiver;
const check = (fn: () => Promise<void>) => stack.check(fn);
/** A model only a node whose runtime fails every job serves: its jobs end failed. */
const FAILING_MODEL = 'test/always-fails';

before(async () => {
  stack = await TestStack.start({ config: { WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true', WEBHOOK_RETRY_SCHEDULE_MS: '100,100' } });
  await stack.model();
  await stack.model(FAILING_MODEL);
  await stack.node();
  await stack.brokenNode([FAILING_MODEL]);
  receiver = await WebhookReceiver.start();
});

after(async () => {
  await receiver.close();
  await stack.close();
});

async function call(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${stack.url}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** An account (session), a namespace with `credits`, a key, and an endpoint at `path` for every event. */
async function owner(path: string, credits: number, lowCreditsThreshold: number) {
  const s = await call('POST', '/account/signup', { email: `wh-${Date.now()}-${Math.random().toString(36).slice(2)}@example.com`, password: 'a good long password' });
  const token = s.body.token as string;
  const ns = (await call('POST', '/account/namespaces', { name: 'hooks' }, token)).body.id as string;
  await stack.backbone.admin.credits.topUp(ns, credits);
  const key = (await call('POST', `/account/namespaces/${ns}/keys`, { name: 'k' }, token)).body.key as string;
  const made = await call('POST', `/account/namespaces/${ns}/webhooks`, { url: receiver.url(path), events: ['job.completed', 'job.failed', 'credits.low'], low_credits_threshold: lowCreditsThreshold }, token);
  assert.equal(made.status, 201, JSON.stringify(made.body));
  const secret = made.body.secret as string;
  assert.match(secret, /^whsec_/);
  receiver.expect(path, secret);
  return { token, ns, key, hook: made.body.id as string };
}

function chat(key: string, model: string, content: string): Promise<Response> {
  return fetch(`${stack.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content }], max_tokens: 8 }),
  });
}

async function messagesOfJob(jobId: string): Promise<Array<{ event_type: string }>> {
  return (await stack.db.query<{ event_type: string }>(`SELECT event_type FROM webhook_messages WHERE payload->'data'->>'job_id' = $1`, [jobId])).rows;
}

test('completed, failed and low-credit events arrive signed; failures are retried, then disable the endpoint and tell its owner; redelivery works', () =>
  check(async () => {
    const { token, ns, key, hook } = await owner('/main', 2, 2);

    const r = await chat(key, TEST_MODEL, 'hi');
    assert.equal(r.status, 200);
    const jobId = r.headers.get('x-resultity-job-id')!;
    const done = await stack.until('job.completed delivered', async () => receiver.of('/main', 'job.completed')[0]);
    assert.equal(done.data.job_id, jobId);
    assert.equal(done.data.status, 'completed');
    assert.equal(done.data.namespace_id, ns);
    assert.equal(done.data.model, TEST_MODEL);
    assert.ok(Number(done.data.credits_charged) > 0);
    assert.ok((done.data.usage as { completion_tokens: number }).completion_tokens > 0);
    const low = await stack.until('credits.low delivered', async () => receiver.of('/main', 'credits.low')[0]);
    assert.equal(low.data.namespace_id, ns);
    assert.equal(low.data.threshold, '2.000000');
    assert.ok(Number(low.data.available) < 2);
    // One message per event and endpoint: the batch functions write each once (migrations/0025).
    assert.deepEqual((await messagesOfJob(jobId)).map((m) => m.event_type), ['job.completed']);

    // The receiver fails: retried on the schedule (2 waits), then failed and the endpoint disabled.
    receiver.mode('/main', 'fail');
    await stack.backbone.admin.credits.topUp(ns, 1);
    const second = await chat(key, TEST_MODEL, 'again');
    assert.equal(second.status, 200);
    const disabled = await stack.until('endpoint disabled', async () => {
      const list = await call('GET', `/account/namespaces/${ns}/webhooks`, undefined, token);
      const e = (list.body.data as Array<{ enabled: boolean; disabled_at: string | null; disabled_reason: string | null }>)[0]!;
      return e.enabled ? undefined : e;
    });
    assert.match(disabled.disabled_reason ?? '', /503/);
    assert.ok(disabled.disabled_at);
    // ... and its owner is told: a notice on the namespace, naming the endpoint and why.
    const notices = await call('GET', `/account/namespaces/${ns}/notices`, undefined, token);
    assert.equal(notices.status, 200);
    const notice = (notices.body.data as Array<{ kind: string; subject: string; message: string; detail: { reason: string; url: string } }>)[0]!;
    assert.equal(notice.kind, 'webhook_endpoint_disabled');
    assert.equal(notice.subject, hook);
    assert.match(notice.message, /disabled after persistent delivery failure/);
    assert.match(notice.detail.reason, /503/);
    assert.equal(notice.detail.url, receiver.url('/main'));
    // Another account sees neither the endpoint nor the notices.
    const stranger = (await call('POST', '/account/signup', { email: `other-${Date.now()}@example.com`, password: 'a good long password' })).body.token as string;
    assert.equal((await call('GET', `/account/namespaces/${ns}/notices`, undefined, stranger)).status, 404);

    const msgs = await call('GET', `/account/namespaces/${ns}/webhooks/${hook}/messages`, undefined, token);
    const failed = (msgs.body.data as Array<{ id: string; status: string; attempts: unknown[] }>).find((m) => m.status === 'failed')!;
    assert.equal(failed.attempts.length, 3, 'the first try and two retries');

    assert.equal((await call('POST', `/account/namespaces/${ns}/webhooks/${hook}/messages/${failed.id}/redeliver`, {}, token)).status, 400);
    receiver.mode('/main', 'accept');
    assert.equal((await call('POST', `/account/namespaces/${ns}/webhooks/${hook}/enable`, {}, token)).status, 200);
    assert.equal((await call('POST', `/account/namespaces/${ns}/webhooks/${hook}/messages/${failed.id}/redeliver`, {}, token)).status, 202);
    await stack.until('redelivered', async () => (receiver.of('/main', 'job.completed').length >= 2 ? true : undefined));
    assert.equal(receiver.of('/main', 'job.completed').at(-1)!.id, failed.id, 'a redelivery keeps its webhook-id');
    assert.equal(receiver.rejected, 0);
  }));

test('a job that fails sends job.failed (no charge), once, signed; its hold is released', () =>
  check(async () => {
    const { ns, key } = await owner('/failing', 5, 0);
    const r = await chat(key, FAILING_MODEL, 'this fails');
    assert.notEqual(r.status, 200);
    const jobId = r.headers.get('x-resultity-job-id');
    const failed = await stack.until('job.failed delivered', async () => receiver.of('/failing', 'job.failed')[0]);
    assert.equal(failed.data.status, 'failed');
    assert.equal(failed.data.namespace_id, ns);
    assert.equal(failed.data.model, FAILING_MODEL);
    assert.equal(failed.data.credits_charged, '0.000000');
    assert.equal(failed.data.usage, null);
    const error = failed.data.error as { code: string; message: string };
    assert.equal(error.code, 'attempts_exhausted');
    assert.ok(error.message.length > 0);
    if (jobId) assert.equal(failed.data.job_id, jobId);
    assert.deepEqual((await messagesOfJob(failed.data.job_id as string)).map((m) => m.event_type), ['job.failed']);
    assert.equal(receiver.of('/failing', 'job.completed').length, 0);
    assert.deepEqual(await stack.balance(ns), { available: 5_000_000, held: 0 });
  }));

test('credits.low also fires for a posting outside the hot path (a storage charge), once per crossing', () =>
  check(async () => {
    const { ns } = await owner('/storage', 3, 2);
    const charge = (micro: number) =>
      withTransaction(stack.db, async (tx) =>
        postTransaction(tx, { kind: 'storage', jobId: null, memo: 'test storage charge' }, [
          { accountId: await ledgerAccountId(tx, 'ns_available', ns), amount: -micro },
          { accountId: await ledgerAccountId(tx, 'platform_revenue', null), amount: micro },
        ]),
      );
    await charge(500_000); // 3 -> 2.5: above the threshold, nothing
    await charge(1_000_000); // 2.5 -> 1.5: crosses it
    await charge(500_000); // 1.5 -> 1: already below, nothing more
    const low = await stack.until('credits.low delivered', async () => receiver.of('/storage', 'credits.low')[0]);
    assert.equal(low.data.available, '1.500000');
    assert.equal(low.data.threshold, '2.000000');
    const rows = await stack.db.query(`SELECT 1 FROM webhook_messages m JOIN webhook_endpoints e ON e.id = m.endpoint_id WHERE e.namespace_id = $1`, [ns]);
    assert.equal(rows.rowCount, 1);
  }));

test('a target on a private or loopback address is refused unless the operator allows it', () =>
  check(async () => {
    const ns = (await stack.tenant(1)).namespaceId;
    const strict = new WebhooksService({ store: webhooksStore(stack.db), allowPrivateTargets: false });
    for (const url of ['http://127.0.0.1:9/x', 'http://10.1.2.3/x', 'http://[::1]/x', 'http://localhost/x']) {
      await assert.rejects(strict.create(ns, { url, events: ['job.completed'] }), /private or loopback|does not resolve/);
    }
    await assert.rejects(strict.create(ns, { url: 'ftp://example.com/x', events: ['job.completed'] }), /http/);
  }));

test('concurrent creates on an empty namespace stop at exactly 10 endpoints; the rest get the usual refusal', () =>
  check(async () => {
    const ns = (await stack.tenant(1)).namespaceId;
    const service = new WebhooksService({ store: webhooksStore(stack.db), allowPrivateTargets: true });
    const results = await Promise.allSettled(Array.from({ length: 25 }, (_, i) => service.create(ns, { url: receiver.url(`/race-${i}`), events: ['job.completed'] })));
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as Error);
    assert.equal(results.length - refused.length, 10, 'made');
    for (const err of refused) assert.match(err.message, /^A namespace may have at most 10 webhook endpoints\.$/);
    const rows = await stack.db.query(`SELECT 1 FROM webhook_endpoints WHERE namespace_id = $1`, [ns]);
    assert.equal(rows.rowCount, 10);
  }));
