// Fast tier (docs/testing.md): WebhooksService's rules on the in-memory webhook tables, with a host
// resolver in place of DNS. The same service on the real engines: test/integration/webhooks.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebhooksService, type ResolveHost } from '../../src/webhooks/webhooks.service.js';
import { AppError } from '../../src/errors.js';
import { FakeWebhookTables, FakeWebhooksStore } from '../fakes/webhooks.store.js';

const NS = 'ns-1';
const OTHER_NS = 'ns-2';
const DNS: Record<string, string[]> = {
  'hooks.example.com': ['93.184.216.34'],
  'sneaky.example.com': ['93.184.216.34', '10.0.0.7'],
  'mapped.example.com': ['::ffff:127.0.0.1'],
};

function setUp(allowPrivateTargets = false) {
  const tables = new FakeWebhookTables();
  const store = new FakeWebhooksStore(tables);
  const asked: string[] = [];
  const resolveHost: ResolveHost = (host) => {
    asked.push(host);
    return Promise.resolve(DNS[host] ?? []);
  };
  return { tables, asked, service: new WebhooksService({ store, allowPrivateTargets, resolveHost }) };
}

const invalid = (e: unknown) => e instanceof AppError && e.code === 'invalid_request';
const notFound = (e: unknown) => e instanceof AppError && e.code === 'not_found';

test('a malformed target is refused before anything is resolved or written', async () => {
  const { tables, asked, service } = setUp();
  for (const url of ['not a url', 'ftp://hooks.example.com/x', 'https://user:pw@hooks.example.com/x', `https://hooks.example.com/${'a'.repeat(2048)}`]) {
    await assert.rejects(service.create(NS, { url, events: ['job.completed'] }), invalid, url);
  }
  assert.deepEqual(asked, []);
  assert.deepEqual(tables.db.calls, []);
});

test('a target that is, or resolves to, an internal address is refused; so is one that does not resolve', async () => {
  const { tables, service } = setUp();
  for (const url of ['http://127.0.0.1:9/x', 'http://10.1.2.3/x', 'http://[::1]/x', 'http://169.254.169.254/latest', 'https://sneaky.example.com/x', 'https://mapped.example.com/x']) {
    await assert.rejects(service.create(NS, { url, events: ['job.completed'] }), (e: unknown) => invalid(e) && /private or loopback/.test((e as Error).message), url);
  }
  await assert.rejects(service.create(NS, { url: 'https://nowhere.example.com/x', events: ['job.completed'] }), /does not resolve/);
  assert.equal(tables.db.calls.includes('insertEndpoint'), false);
  const made = await service.create(NS, { url: 'https://hooks.example.com/x', events: ['job.completed'] });
  assert.equal(made.endpoint.url, 'https://hooks.example.com/x');
});

test('the operator may allow internal targets: then nothing is resolved', async () => {
  const { asked, service } = setUp(true);
  await service.create(NS, { url: 'http://127.0.0.1:9/x', events: ['job.completed'] });
  await service.create(NS, { url: 'http://receiver.internal/x', events: ['job.completed'] });
  assert.deepEqual(asked, []);
});

test('the secret is shown once, at creation: kept for signing, in no listing or later answer', async () => {
  const { tables, service } = setUp();
  const a = await service.create(NS, { url: 'https://hooks.example.com/a', events: ['job.completed', 'job.completed', 'credits.low'] });
  const b = await service.create(NS, { url: 'https://hooks.example.com/b', events: ['job.failed'] });
  assert.match(a.secret, /^whsec_[A-Za-z0-9+/]+=*$/);
  assert.equal(Buffer.from(a.secret.slice('whsec_'.length), 'base64').length, 32, 'Standard Webhooks: 24 to 64 random bytes');
  assert.notEqual(a.secret, b.secret);
  assert.equal(tables.endpoint(a.endpoint.id).secret, a.secret, 'the delivery worker signs with the secret shown');
  assert.deepEqual(a.endpoint.events, ['job.completed', 'credits.low'], 'events once each');
  assert.equal(a.endpoint.low_credits_threshold, '1.000000');
  tables.disable(a.endpoint.id, 'down');
  const later = JSON.stringify([a.endpoint, await service.list(NS), await service.enable(NS, a.endpoint.id), await service.messages(NS, a.endpoint.id, 10)]);
  for (const secret of [a.secret, b.secret]) assert.equal(later.includes(secret), false);
  assert.equal(later.includes('secret'), false);
});

test('a namespace has at most 10 endpoints', async () => {
  const { service } = setUp();
  for (let i = 0; i < 10; i++) await service.create(NS, { url: `https://hooks.example.com/${i}`, events: ['job.completed'] });
  await assert.rejects(service.create(NS, { url: 'https://hooks.example.com/11', events: ['job.completed'] }), /at most 10/);
  await service.create(OTHER_NS, { url: 'https://hooks.example.com/other', events: ['job.completed'] });
  assert.equal((await service.list(NS)).length, 10);
});

test('a disabled endpoint shows why; it takes no redelivery until enabled; enabling clears the reason', async () => {
  const { tables, service } = setUp();
  const { endpoint } = await service.create(NS, { url: 'https://hooks.example.com/x', events: ['job.completed'] });
  const msg = tables.enqueue(endpoint.id, 'job.completed', { type: 'job.completed' });
  tables.disable(endpoint.id, 'every delivery failed');
  const [listed] = await service.list(NS);
  assert.deepEqual([listed!.enabled, listed!.disabled_reason], [false, 'every delivery failed']);
  assert.ok(listed!.disabled_at);
  await assert.rejects(service.redeliver(NS, endpoint.id, msg), /enable it first/);
  await assert.rejects(service.enable(OTHER_NS, endpoint.id), notFound, "another namespace's endpoint is not found");
  assert.equal((await service.list(NS))[0]!.enabled, false);
  const enabled = await service.enable(NS, endpoint.id);
  assert.deepEqual([enabled.enabled, enabled.disabled_at, enabled.disabled_reason], [true, null, null]);
});

test('a redelivery queues the same message, under its own id, from its first attempt', async () => {
  const { tables, service } = setUp();
  const { endpoint } = await service.create(NS, { url: 'https://hooks.example.com/x', events: ['job.completed'] });
  const other = await service.create(NS, { url: 'https://hooks.example.com/y', events: ['job.completed'] });
  const msg = tables.enqueue(endpoint.id, 'job.completed', { type: 'job.completed', data: { id: 'job-1' } });
  Object.assign(tables.message(msg), { status: 'failed', attempts: 4 });
  tables.advance(60_000);
  await service.redeliver(NS, endpoint.id, msg);
  const [m] = await service.messages(NS, endpoint.id, 10);
  assert.deepEqual([m!.id, m!.status, m!.next_attempt_at], [msg, 'pending', new Date(tables.now).toISOString()]);
  assert.equal(tables.message(msg).attempts, 0);
  assert.equal(tables.db.state.messages.length, 1, 'no new message: the receiver deduplicates on its id');
  await assert.rejects(service.redeliver(NS, other.endpoint.id, msg), notFound, "another endpoint's message is not found");
  await assert.rejects(service.redeliver(OTHER_NS, endpoint.id, msg), notFound);
  await assert.rejects(service.messages(OTHER_NS, endpoint.id, 10), notFound);
});

test("an endpoint is removed by its namespace only", async () => {
  const { service } = setUp();
  const { endpoint } = await service.create(NS, { url: 'https://hooks.example.com/x', events: ['job.completed'] });
  await assert.rejects(service.remove(OTHER_NS, endpoint.id), notFound);
  assert.equal((await service.list(NS)).length, 1);
  await service.remove(NS, endpoint.id);
  assert.deepEqual(await service.list(NS), []);
  await assert.rejects(service.remove(NS, endpoint.id), notFound);
});

test("the notices are the namespace's own, newest first", async () => {
  const { tables, service } = setUp();
  const notice = (ns: string, subject: string) =>
    tables.db.state.notices.push({ namespace_id: ns, id: subject, at: new Date(tables.now), kind: 'webhook_endpoint_disabled', subject, message: `m ${subject}`, detail: {} });
  notice(NS, 'first');
  notice(OTHER_NS, 'theirs');
  notice(NS, 'second');
  assert.deepEqual((await service.notices(NS, 10)).map((n) => n.subject), ['second', 'first']);
});
