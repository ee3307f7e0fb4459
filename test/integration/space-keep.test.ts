// Space on the real engines (issue 10, parts 1 and 2): the zero plan's results held in Redis until read
// once; pins kept past their plan and the drop of their day, metered and shown in usage reports; a lowered
// plan never deletes data sooner than promised; payloads sealed at rest, crypto-shredded by
// DELETE /v1/jobs/{id} and by a namespace's deletion (a copy taken before is unreadable); a master key
// rotation keeps old payloads readable. The tests that move the clock forward (sweeps) come last.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';
import { requestJson } from '../helpers/http.js';
import { PayloadsRepository } from '../../src/mongo/payloads.repository.js';
import { jobBucket } from '../../src/mongo/payload-buckets.js';
import { payloadKeysStore } from '../../src/postgres/payload-keys.store.js';
import { PayloadKeys } from '../../src/space/payload-keys.service.js';
import { bytesOf, type Sealed } from '../../src/mongo/payload-cipher.js';
import { newJobId } from '../../src/domain/job-ids.js';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';

const PRICE = 1_000_000_000;
const ZERO_HOLD_SECONDS = 120;
const DAY = 86_400_000;

let stack: TestStack;
let redis: Redis;

before(async () => {
  stack = await TestStack.start({ config: { SPACE_PRICE_MICRO_PER_GIB_DAY: PRICE, SPACE_MAX_RETENTION_DAYS: 90, SPACE_ZERO_HOLD_SECONDS: ZERO_HOLD_SECONDS } });
  await stack.model();
  await stack.node();
  redis = new Redis(stack.config.REDIS_URL);
});

after(async () => {
  redis.disconnect();
  await stack.close();
});

const check = (fn: () => Promise<void>) => stack.check(fn);
const admin = (method: string, path: string, body?: unknown) => requestJson(stack.url, method, path, body, stack.config.ADMIN_TOKEN);
const mongo = () => stack.backbone.mongo.db;

async function chat(t: Tenant, content: string): Promise<string> {
  const r = await t.client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: 'user', content }], max_tokens: 8 });
  assert.match(r.choices[0]?.message.content ?? '', /^simulated answer/);
  return r.id.replace(/^chatcmpl-/, '');
}

/** The job's result document as stored in its bucket (waits for the write). */
async function storedResult(jobId: string, hours: number): Promise<Record<string, unknown>> {
  return stack.until('the result document', async () => (await mongo().collection(jobBucket('job_results', jobId, hours)).findOne({ jobId })) ?? undefined);
}

test('zero: an asynchronous result is held in Redis (with the configured TTL), read once, and never written to MongoDB', () =>
  check(async () => {
    const t = await stack.tenant(10);
    assert.equal((await admin('PUT', `/admin/namespaces/${t.namespaceId}/retention`, { plan: 'zero' })).status, 200);
    const res = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.apiKey}`, 'content-type': 'application/json', prefer: 'respond-async' },
      body: JSON.stringify({ model: TEST_MODEL, messages: [{ role: 'user', content: 'hold me once' }], max_tokens: 8 }),
    });
    assert.equal(res.status, 202, await res.clone().text());
    const jobId = ((await res.json()) as { id: string }).id.replace(/^chatcmpl-/, '');
    // Waited for through the search (which reads no payload), so that the first read below is the first.
    await stack.until('the job to complete', async () => {
      const page = await requestJson(stack.url, 'GET', '/v1/jobs?status=completed', undefined, t.apiKey);
      return (page.body.data as Array<{ id: string }>).some((j) => j.id === jobId) ? true : undefined;
    });
    const key = `${stack.config.REDIS_KEY_PREFIX}zerohold:${t.namespaceId}:${jobId}`;
    const ttl = await redis.ttl(key);
    assert.ok(ttl > 0 && ttl <= ZERO_HOLD_SECONDS, `held with the configured TTL (${ttl})`);
    const first = await requestJson(stack.url, 'GET', `/v1/jobs/${jobId}`, undefined, t.apiKey);
    assert.equal(first.status, 200, first.text);
    assert.match(first.text, /simulated answer/, 'the first read has the output');
    const second = await requestJson(stack.url, 'GET', `/v1/jobs/${jobId}`, undefined, t.apiKey);
    assert.equal(second.body.status, 'completed');
    assert.doesNotMatch(second.text, /simulated answer/, 'read once: gone after');
    assert.equal(await redis.exists(key), 0);
    for (const c of await mongo().listCollections({}, { nameOnly: true }).toArray()) {
      const filter = { $or: [{ namespaceId: t.namespaceId }, { jobId }] };
      if (/^(job_log|node_stats)\./.test(c.name)) {
        // The job's log is metadata the zero plan keeps (events, stage times, usage): never its prompt or output.
        const logged = JSON.stringify(await mongo().collection(c.name).find(filter).toArray());
        assert.doesNotMatch(logged, /hold me once|simulated answer/, `no prompt or output in ${c.name}`);
        continue;
      }
      assert.equal(await mongo().collection(c.name).countDocuments(filter), 0, `nothing in ${c.name}`);
    }
  }));

test('at rest: a stored document holds no prompt or output in clear; DELETE /v1/jobs/{id} makes a copy taken before unreadable at once', () =>
  check(async () => {
    const t = await stack.tenant(10);
    const other = await stack.tenant(10);
    const jobId = await chat(t, 'a secret prompt');
    const doc = await storedResult(jobId, stack.config.PAYLOAD_RETENTION_HOURS);
    const raw = JSON.stringify(doc);
    assert.doesNotMatch(raw, /secret prompt|simulated answer/, 'sealed at rest');
    const sealed = doc.sealed as Sealed;
    const copy: Sealed = { k: sealed.k, box: Buffer.from(bytesOf(sealed.box)) };
    // A fresh reader (no cached key) with the master key opens the copy before the delete...
    const reader = new PayloadKeys({ store: payloadKeysStore(stack.db), masterKeys: stack.config.PAYLOAD_MASTER_KEYS!, logger: pino({ level: 'silent' }) });
    const [before] = await reader.open([{ namespaceId: t.namespaceId, jobId, sealed: copy }]);
    assert.match(before?.toString() ?? '', /simulated answer/);
    // ...and not as another namespace's or another job's.
    assert.deepEqual(await reader.open([{ namespaceId: other.namespaceId, jobId, sealed: copy }]), [null]);
    assert.deepEqual(await reader.open([{ namespaceId: t.namespaceId, jobId: newJobId(), sealed: copy }]), [null]);

    assert.equal((await requestJson(stack.url, 'DELETE', `/v1/jobs/${jobId}`, undefined, other.apiKey)).status, 404, "another namespace's key cannot delete it");
    const del = await requestJson(stack.url, 'DELETE', `/v1/jobs/${jobId}`, undefined, t.apiKey);
    assert.equal(del.status, 200, del.text);
    assert.deepEqual(del.body, { id: jobId, object: 'chat.completion.job.deleted', deleted: true });
    assert.deepEqual(await reader.open([{ namespaceId: t.namespaceId, jobId, sealed: copy }]), [null], 'the copy is unreadable at once');
    // The bytes are still there (until their day is dropped), but no read returns them.
    assert.ok(await mongo().collection(jobBucket('job_results', jobId, stack.config.PAYLOAD_RETENTION_HOURS)).findOne({ jobId }));
    const view = await requestJson(stack.url, 'GET', `/v1/jobs/${jobId}`, undefined, t.apiKey);
    assert.equal(view.body.status, 'completed', 'the job, its usage and charge stay');
    assert.doesNotMatch(view.text, /simulated answer/);
    const again = await requestJson(stack.url, 'DELETE', `/v1/jobs/${jobId}`, undefined, t.apiKey);
    assert.equal(again.status, 200, 'idempotent');
    const missing = await requestJson(stack.url, 'DELETE', `/v1/jobs/${newJobId()}`, undefined, t.apiKey);
    assert.equal(missing.status, 404);
    assert.equal((missing.body.error as { type: string }).type, 'invalid_request_error');
  }));

test("a namespace's deletion shreds its key: its documents, and any copy, are unreadable from that commit on", () =>
  check(async () => {
    const t = await stack.tenant(0);
    const payloads = new PayloadsRepository(mongo(), stack.backbone.payloadKeys);
    const jobId = newJobId();
    await payloads.saveResult({ jobId, namespaceId: t.namespaceId, model: TEST_MODEL, attempt: 1, output: { content: 'namespace secret', finish_reason: 'stop' }, usage: { prompt_tokens: 1, completion_tokens: 1 }, nodeId: '0x0000000000000000000000000000000000000000', retentionHours: 72 });
    assert.ok(await payloads.find(jobId, t.namespaceId));
    const doc = await storedResult(jobId, 72);
    const copy: Sealed = { k: (doc.sealed as Sealed).k, box: Buffer.from(bytesOf((doc.sealed as Sealed).box)) };
    await stack.backbone.admin.accounts.deleteNamespace(t.namespaceId);
    const reader = new PayloadKeys({ store: payloadKeysStore(stack.db), masterKeys: stack.config.PAYLOAD_MASTER_KEYS!, logger: pino({ level: 'silent' }) });
    assert.deepEqual(await reader.open([{ namespaceId: t.namespaceId, jobId, sealed: copy }]), [null]);
    const key = await stack.db.query<{ wrapped: Buffer | null }>(`SELECT wrapped FROM namespace_keys WHERE namespace_id = $1`, [t.namespaceId]);
    assert.equal(key.rows[0]?.wrapped, null, 'the wrapped key itself is gone');
  }));

test('pins: a pinned job outlives the drop of its day, is metered with extended retention and shown in usage reports; unpinned, it goes', () =>
  check(async () => {
    const t = await stack.tenant(10);
    const kept = await chat(t, 'pin me');
    const loose = await chat(t, 'let me go');
    await storedResult(kept, 72);
    await storedResult(loose, 72);
    assert.equal(((await admin('GET', `/admin/namespaces/${t.namespaceId}/pins`)).body.data as unknown[]).length, 0);
    const pin = await admin('PUT', `/admin/namespaces/${t.namespaceId}/pins/${kept}`);
    assert.equal(pin.status, 200, pin.text);
    assert.ok((pin.body.bytes as number) > 0);
    assert.equal((await admin('PUT', `/admin/namespaces/${t.namespaceId}/pins/${newJobId()}`)).status, 404);

    const today = new Date().toISOString().slice(0, 10);
    const metered = (await stack.backbone.retention.meterDay(today)).find((m) => m.namespaceId === t.namespaceId);
    assert.ok(metered && metered.storedBytes === pin.body.bytes && metered.chargedMicro > 0, `a standard namespace pays for its pins: ${JSON.stringify(metered)}`);
    const usage = await requestJson(stack.url, 'GET', `/v1/usage?from=${today}&to=${today}`, undefined, t.apiKey);
    assert.equal(usage.status, 200, usage.text);
    assert.deepEqual(usage.body.storage, [{ day: today, stored_bytes: metered.storedBytes, credits_charged: (metered.chargedMicro / 1e6).toFixed(6), fell_back: false }]);
    const csv = await fetch(`${stack.url}/v1/usage?from=${today}&to=${today}&format=csv`, { headers: { authorization: `Bearer ${t.apiKey}` } });
    assert.match(await csv.text(), new RegExp(`${today},space:storage,`));

    // Five days on, past the standard 72 hours: the day's buckets are dropped whole.
    const later = new Date(Date.now() + 5 * DAY);
    const payloads = new PayloadsRepository(mongo(), stack.backbone.payloadKeys);
    assert.ok((await payloads.sweepExpired(later)).buckets > 0);
    const found = await payloads.find(kept, t.namespaceId, later);
    assert.match(found?.results?.['1']?.output.content ?? '', /^simulated answer/, 'the pinned job is still readable');
    assert.equal(await payloads.find(loose, t.namespaceId, later), null, 'the other went with its day');
    const exported = [];
    for await (const r of payloads.streamResults(t.namespaceId, {}, later)) exported.push(r.jobId);
    assert.deepEqual(exported, [kept], 'an export still has it');

    assert.equal((await admin('DELETE', `/admin/namespaces/${t.namespaceId}/pins/${kept}`)).status, 200);
    assert.equal(await payloads.find(kept, t.namespaceId, later), null, 'unpinned: gone with its day');
  }));

test('lowering a plan never deletes data sooner than the plan it was written under promised', () =>
  check(async () => {
    const t = await stack.tenant(10);
    assert.equal((await admin('PUT', `/admin/namespaces/${t.namespaceId}/retention`, { plan: 'extended', days: 30 })).status, 200);
    const early = await chat(t, 'written under thirty days');
    await storedResult(early, 720);
    assert.equal((await admin('PUT', `/admin/namespaces/${t.namespaceId}/retention`, { plan: 'standard' })).status, 200);
    await stack.until('the catalogue to see the new plan', async () => ((await stack.backbone.retention.view(t.namespaceId)).retention_plan === 'standard' ? true : undefined));
    const late = await chat(t, 'written under the standard plan');
    await storedResult(late, 72);
    const payloads = new PayloadsRepository(mongo(), stack.backbone.payloadKeys);
    for (const days of [10, 29]) {
      const at = new Date(Date.now() + days * DAY);
      await payloads.sweepExpired(at);
      assert.ok(await payloads.find(early, t.namespaceId, at), `still there ${days} days on`);
      assert.equal(await payloads.find(late, t.namespaceId, at), null, 'the later one follows the lower plan');
    }
    const at = new Date(Date.now() + 32 * DAY);
    await payloads.sweepExpired(at);
    assert.equal(await payloads.find(early, t.namespaceId, at), null, 'and goes once its thirty days have passed');
  }));

test('rotation: a new master key version re-wraps namespace keys, and payloads sealed before stay readable under it alone', () =>
  check(async () => {
    const t = await stack.tenant(10);
    const jobId = await chat(t, 'sealed under version one');
    const doc = await storedResult(jobId, 72);
    const sealed: Sealed = { k: (doc.sealed as Sealed).k, box: Buffer.from(bytesOf((doc.sealed as Sealed).box)) };
    const v1 = stack.config.PAYLOAD_MASTER_KEYS!.get(1)!;
    const v2 = randomBytes(32);
    const logger = pino({ level: 'silent' });
    const both = new PayloadKeys({ store: payloadKeysStore(stack.db), masterKeys: new Map([[1, v1], [2, v2]]), logger });
    assert.ok((await both.rewrapAll()) >= 1);
    assert.equal(await both.rewrapAll(), 0, 'nothing left under version one');
    const rows = await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM namespace_keys WHERE master_version = 1 AND wrapped IS NOT NULL`);
    assert.equal(rows.rows[0]!.n, 0);
    const onlyV2 = new PayloadKeys({ store: payloadKeysStore(stack.db), masterKeys: new Map([[2, v2]]), logger });
    const [opened] = await onlyV2.open([{ namespaceId: t.namespaceId, jobId, sealed }]);
    assert.match(opened?.toString() ?? '', /simulated answer/, 'readable under the new version alone');
    const onlyV1 = new PayloadKeys({ store: payloadKeysStore(stack.db), masterKeys: new Map([[1, v1]]), logger });
    await assert.rejects(onlyV1.open([{ namespaceId: t.namespaceId, jobId, sealed }]), /version 2/, 'the old version alone no longer unwraps it');
  }));
