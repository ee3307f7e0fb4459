// Crypto-shredding is at once on every instance (issue 10, part 2), and zero-plan results wait in Redis
// sealed (part 3). Two backbones on the same engines: the stack (every role) and a second cloud instance
// with keys of its own in memory. What one deletes, the other can no longer read on its very next read,
// although it had just read (and sealed) under the same namespace key.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createBackbone, type Backbone } from '../../src/app.js';
import { PayloadsRepository, type ResultToSave } from '../../src/mongo/payloads.repository.js';
import { ZeroHolds } from '../../src/redis/zero-holds.repository.js';
import { RedisKeys } from '../../src/redis/client.js';
import { payloadKeysStore } from '../../src/postgres/payload-keys.store.js';
import { NamespaceShreddedError, PayloadKeys } from '../../src/space/payload-keys.service.js';
import { newJobId } from '../../src/domain/job-ids.js';
import { TestStack, TEST_MODEL } from '../helpers/stack.js';
import { requestJson } from '../helpers/http.js';

let stack: TestStack;
let other: Backbone;
let otherUrl: string;
let redis: Redis;

before(async () => {
  stack = await TestStack.start({ config: { SPACE_ZERO_HOLD_SECONDS: 120 } });
  other = await createBackbone({ config: stack.config, roles: ['cloud'], logger: pino({ level: 'warn' }), mongoUrl: stack.mongoUrl, migrate: false });
  otherUrl = await other.listen();
  await stack.model();
  await stack.node();
  redis = new Redis(stack.config.REDIS_URL);
});

after(async () => {
  redis.disconnect();
  await other.close();
  await stack.close();
});

const check = (fn: () => Promise<void>) => stack.check(fn);
const admin = (method: string, path: string, body?: unknown) => requestJson(stack.url, method, path, body, stack.config.ADMIN_TOKEN);

function result(namespaceId: string, content: string): ResultToSave {
  return { jobId: newJobId(), namespaceId, model: TEST_MODEL, attempt: 1, output: { content, finish_reason: 'stop' }, usage: { prompt_tokens: 1, completion_tokens: 1 }, nodeId: '0x0000000000000000000000000000000000000000', retentionHours: 72 };
}

/** A job submitted asynchronously (202) through the stack, waited for until completed through the search (which reads no payload). */
async function asyncJob(apiKey: string, content: string): Promise<string> {
  const res = await fetch(`${stack.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', prefer: 'respond-async' },
    body: JSON.stringify({ model: TEST_MODEL, messages: [{ role: 'user', content }], max_tokens: 8 }),
  });
  assert.equal(res.status, 202, await res.clone().text());
  const jobId = ((await res.json()) as { id: string }).id.replace(/^chatcmpl-/, '');
  await stack.until('the job to complete', async () => {
    const page = await requestJson(stack.url, 'GET', '/v1/jobs?status=completed', undefined, apiKey);
    return (page.body.data as Array<{ id: string }>).some((j) => j.id === jobId) ? true : undefined;
  });
  return jobId;
}

test('zero plan: the held result is sealed in Redis (no prompt or output in the raw value) and opens on another instance, once', () =>
  check(async () => {
    const t = await stack.tenant(10);
    assert.equal((await admin('PUT', `/admin/namespaces/${t.namespaceId}/retention`, { plan: 'zero' })).status, 200);
    const jobId = await asyncJob(t.apiKey, 'a zero plan secret');
    const raw = await redis.getBuffer(`${stack.config.REDIS_KEY_PREFIX}zerohold:${t.namespaceId}:${jobId}`);
    assert.ok(raw, 'held');
    assert.doesNotMatch(raw.toString('latin1'), /simulated answer|zero plan secret|completion_tokens|"model"/, 'nothing readable in the raw value');
    const read = await requestJson(otherUrl, 'GET', `/v1/jobs/${jobId}`, undefined, t.apiKey);
    assert.equal(read.status, 200, read.text);
    assert.match(read.text, /simulated answer/, 'the other instance opens it');
    assert.doesNotMatch((await requestJson(stack.url, 'GET', `/v1/jobs/${jobId}`, undefined, t.apiKey)).text, /simulated answer/, 'read once');
  }));

test("DELETE /v1/jobs/{id} on one instance: the other's next read has no output", () =>
  check(async () => {
    const t = await stack.tenant(10);
    const r = await t.client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: 'user', content: 'delete me' }], max_tokens: 8 });
    const jobId = r.id.replace(/^chatcmpl-/, '');
    const seen = await stack.until('the stored output, read on the other instance', async () => {
      const v = await requestJson(otherUrl, 'GET', `/v1/jobs/${jobId}`, undefined, t.apiKey);
      return /simulated answer/.test(v.text) ? v : undefined;
    });
    assert.equal(seen.status, 200);
    assert.equal((await requestJson(stack.url, 'DELETE', `/v1/jobs/${jobId}`, undefined, t.apiKey)).status, 200);
    const after = await requestJson(otherUrl, 'GET', `/v1/jobs/${jobId}`, undefined, t.apiKey);
    assert.equal(after.body.status, 'completed');
    assert.doesNotMatch(after.text, /simulated answer/, 'shredded on the other instance at once');
  }));

test("a namespace deleted on one instance: another, which had just sealed and read under its key, reads nothing of it on its next read, announcement or not", () =>
  check(async () => {
    const t = await stack.tenant(0);
    // The other backbone's stores, with its own payload keys (its memory of the namespace's key), and an
    // instance that will not hear the deletion's announcement at all (as any instance before it arrives).
    const payloads = new PayloadsRepository(other.mongo.db, other.payloadKeys);
    const unaware = new PayloadKeys({ store: payloadKeysStore(stack.db), masterKeys: stack.config.PAYLOAD_MASTER_KEYS!, logger: pino({ level: 'silent' }) });
    const unawarePayloads = new PayloadsRepository(other.mongo.db, unaware);
    const holds = new ZeroHolds(redis, new RedisKeys(stack.config.REDIS_KEY_PREFIX), 120, unaware);
    const stored = result(t.namespaceId, 'namespace secret');
    await payloads.saveResult(stored);
    const storedUnaware = result(t.namespaceId, 'namespace secret too');
    await unawarePayloads.saveResult(storedUnaware);
    assert.ok(await payloads.find(stored.jobId, t.namespaceId), 'read before the delete');
    assert.ok(await unawarePayloads.find(storedUnaware.jobId, t.namespaceId), 'read before the delete');
    const heldJob = newJobId();
    await holds.hold(t.namespaceId, heldJob, { attempt: 1, model: TEST_MODEL, output: { content: 'held secret', finish_reason: 'stop' }, usage: { prompt_tokens: 1, completion_tokens: 1 }, at: Date.now() });

    await stack.backbone.admin.accounts.deleteNamespace(t.namespaceId);
    // The very next reads, with no pause for the announcement to arrive (and none ever, for `unaware`).
    assert.equal(await payloads.find(stored.jobId, t.namespaceId), null, 'the stored document, on the other backbone');
    assert.equal(await unawarePayloads.find(stored.jobId, t.namespaceId), null, 'the stored document, unannounced');
    assert.equal(await unawarePayloads.find(storedUnaware.jobId, t.namespaceId), null, 'its own stored document, unannounced');
    assert.equal(await holds.take(t.namespaceId, heldJob), null, 'the held result, unannounced');
    // Sealing after the delete with the key still in memory: what it seals opens nowhere.
    const late = result(t.namespaceId, 'sealed after the delete');
    await unawarePayloads.saveResult(late);
    assert.equal(await unawarePayloads.find(late.jobId, t.namespaceId), null, 'sealed after the delete: unreadable');
    // The announcement reaches the other backbone's memory well within its cache's 30 s: sealing is refused.
    await stack.until(
      'sealing refused on the other backbone',
      () => payloads.saveResult(result(t.namespaceId, 'refused')).then(() => undefined, (err: unknown) => (err instanceof NamespaceShreddedError ? true : undefined)),
      3_000,
    );
  }));
