// Webhooks (issue 12, part 5) against a real HTTP receiver that verifies every delivery's signature with
// the `standardwebhooks` library: job.completed, job.failed and credits.low; retries, disable after
// persistent failure, listing with attempts, redelivery; private targets refused unless allowed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { TestStack, TEST_MODEL } from '../helpers/stack.js';
import { WebhooksService } from '../../src/webhooks/webhooks.service.js';

let stack: TestStack;
const check = (fn: () => Promise<void>) => stack.check(fn);

interface Received {
  type: string;
  data: Record<string, unknown>;
}
const received: Received[] = [];
let failing = false;
let secret = '';
let receiverUrl = '';
let receiver: http.Server;

before(async () => {
  stack = await TestStack.start({ config: { WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true', WEBHOOK_RETRY_SCHEDULE_MS: '100,100' } });
  await stack.model();
  await stack.node();
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (failing) return res.writeHead(503).end();
      try {
        const event = new Webhook(secret).verify(body, req.headers as Record<string, string>) as Received;
        received.push(event);
        res.writeHead(204).end();
      } catch {
        res.writeHead(400).end(); // a bad signature is never accepted
      }
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
});

after(async () => {
  receiver.close();
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

test('completed, failed and low-credit events arrive signed; failures are retried, then disable the endpoint; redelivery works', () =>
  check(async () => {
    const s = await call('POST', '/account/signup', { email: `wh-${Date.now()}@example.com`, password: 'a good long password' });
    const token = s.body.token as string;
    const ns = (await call('POST', '/account/namespaces', { name: 'hooks' }, token)).body.id as string;
    await stack.backbone.admin.topUp(ns, 2);
    const key = (await call('POST', `/account/namespaces/${ns}/keys`, { name: 'k' }, token)).body.key as string;
    const made = await call('POST', `/account/namespaces/${ns}/webhooks`, { url: receiverUrl, events: ['job.completed', 'job.failed', 'credits.low'], low_credits_threshold: 2 }, token);
    assert.equal(made.status, 201, JSON.stringify(made.body));
    secret = made.body.secret as string;
    assert.match(secret, /^whsec_/);
    const hook = made.body.id as string;

    const r = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: TEST_MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 }),
    });
    assert.equal(r.status, 200);
    const jobId = r.headers.get('x-resultity-job-id');
    const done = await stack.until('job.completed delivered', async () => received.find((e) => e.type === 'job.completed'));
    assert.equal(done.data.job_id, jobId);
    assert.equal(done.data.status, 'completed');
    await stack.until('credits.low delivered', async () => received.find((e) => e.type === 'credits.low'));

    // The receiver fails: retried on the schedule (2 waits), then failed and the endpoint disabled.
    failing = true;
    await stack.backbone.admin.topUp(ns, 1);
    const second = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: TEST_MODEL, messages: [{ role: 'user', content: 'again' }], max_tokens: 8 }),
    });
    assert.equal(second.status, 200);
    const disabled = await stack.until('endpoint disabled', async () => {
      const list = await call('GET', `/account/namespaces/${ns}/webhooks`, undefined, token);
      const e = (list.body.data as Array<{ enabled: boolean; disabled_reason: string | null }>)[0]!;
      return e.enabled ? undefined : e;
    });
    assert.match(disabled.disabled_reason ?? '', /503/);
    const msgs = await call('GET', `/account/namespaces/${ns}/webhooks/${hook}/messages`, undefined, token);
    const failed = (msgs.body.data as Array<{ id: string; status: string; attempts: unknown[] }>).find((m) => m.status === 'failed')!;
    assert.equal(failed.attempts.length, 3, 'the first try and two retries');

    assert.equal((await call('POST', `/account/namespaces/${ns}/webhooks/${hook}/messages/${failed.id}/redeliver`, {}, token)).status, 400);
    failing = false;
    assert.equal((await call('POST', `/account/namespaces/${ns}/webhooks/${hook}/enable`, {}, token)).status, 200);
    assert.equal((await call('POST', `/account/namespaces/${ns}/webhooks/${hook}/messages/${failed.id}/redeliver`, {}, token)).status, 202);
    await stack.until('redelivered', async () => (received.filter((e) => e.type === 'job.completed').length >= 2 ? true : undefined));
    await stack.assertLedgerBalanced();
  }));

test('a target on a private or loopback address is refused unless the operator allows it', () =>
  check(async () => {
    const ns = (await stack.tenant(1)).namespaceId;
    const strict = new WebhooksService({ db: stack.db, allowPrivateTargets: false });
    for (const url of ['http://127.0.0.1:9/x', 'http://10.1.2.3/x', 'http://[::1]/x', 'http://localhost/x']) {
      await assert.rejects(strict.create(ns, { url, events: ['job.completed'] }), /private or loopback|does not resolve/);
    }
    await assert.rejects(strict.create(ns, { url: 'ftp://example.com/x', events: ['job.completed'] }), /http/);
  }));
