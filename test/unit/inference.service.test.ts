// Fast tier (docs/testing.md): InferenceService's rules on in-memory fakes: validation and pricing
// refusals, idempotent replays, insufficient credits, no node online, the synchronous wait and the
// asynchronous answer, and what is not written when a step fails. The same service on the real engines:
// test/integration/chat.test.ts, concurrency.test.ts, hot-path.test.ts, streaming.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InferenceService } from '../../src/cloud/inference.service.js';
import { Catalog } from '../../src/catalog/catalog.service.js';
import type { Principal } from '../../src/cloud/auth.service.js';
import { AppError } from '../../src/errors.js';
import { requestPromptBound, worstCaseCost } from '../../src/domain/pricing.js';
import type { JobRequest } from '../../src/domain/protocol.js';
import type { JobParameters } from '../../src/domain/network-config.js';
import { FakeCatalogStore, modelRow, namespaceRow } from '../fakes/catalog.store.js';
import { FakeInferenceStore, FakeInflight, FakeLifecycle, FakePayloads, FakePresence } from '../fakes/inference.store.js';
import { FakeJobEvents } from '../fakes/job-events.js';
import { redisUnreachable } from '../fakes/auth.store.js';

const P: Principal = { keyId: 'key-1', namespaceId: 'ns-1', rateLimitRps: null, rateLimitBurst: null, monthlyCapMicro: null, expiresAt: null };
const TERMS: JobParameters = { defaultMaxTokens: 64, maxTokens: 1_000, executionTimeoutMs: 30_000, maxAttempts: 3 };
const REQUEST: JobRequest = { messages: [{ role: 'user', content: 'hello' }], max_tokens: 100 };

function setUp(opts: { credits?: number; redisReady?: () => boolean } = {}) {
  const catalogStore = new FakeCatalogStore();
  catalogStore.db.state.models.set('llama', modelRow('llama', { input_price_micro: 3, output_price_micro: 7, priority_surcharge_bps: { urgent: 5_000 } }));
  catalogStore.db.state.models.set('mistral', modelRow('mistral'));
  catalogStore.db.state.namespaces.set('ns-1', namespaceRow('ns-1', { network: 'testnet', subcloud: 'eu' }));
  const store = new FakeInferenceStore();
  store.db.state.available.set('ns-1', opts.credits ?? 1_000_000);
  const payloads = new FakePayloads();
  const presence = new FakePresence();
  presence.online.set('llama', 1);
  const events = new FakeJobEvents();
  const lifecycle = new FakeLifecycle(store);
  const inflight = new FakeInflight();
  const warnings: unknown[] = [];
  const service = new InferenceService({
    config: { JOB_DEADLINE_MS: 60_000, PAYLOAD_RETENTION_HOURS: 72 },
    store,
    catalog: new Catalog(catalogStore),
    settlement: store,
    payloads,
    presence,
    inflight,
    events,
    lifecycle,
    networkConfig: { jobs: () => TERMS, current: () => null, heartbeat: () => ({ intervalMs: 5_000, ttlMs: 15_000 }) },
    logger: { warn: (o: unknown) => warnings.push(o) },
    ...(opts.redisReady ? { redisReady: opts.redisReady } : {}),
  });
  return { catalogStore, store, payloads, presence, events, lifecycle, inflight, warnings, service };
}

const refusedAs = (code: string, message?: RegExp) => (e: unknown) => e instanceof AppError && e.code === code && (!message || message.test(e.message));

/** Nothing of a refused request was written: no row, no hold, no message, no input. */
function nothingWritten(f: ReturnType<typeof setUp>, credits = 1_000_000): void {
  assert.equal(f.store.db.state.jobs.size, 0, 'no job row');
  assert.equal(f.store.db.state.available.get('ns-1'), credits, 'no hold');
  assert.equal(f.lifecycle.published.length, 0, 'nothing published');
  assert.equal(f.payloads.inputs.size, 0, 'no input stored');
}

test('an accepted job: its row holds the worst case at the model\'s prices, on the namespace\'s placement; published; input stored', async () => {
  const f = setUp();
  const { job, replayed, watch } = await f.service.accept(P, ['llama'], REQUEST);
  const hold = worstCaseCost({ inputPriceMicro: 3, outputPriceMicro: 7, minChargeMicro: 0, surchargeBps: 0 }, requestPromptBound(REQUEST), 100);
  assert.equal(replayed, false);
  assert.equal(watch, null, 'an asynchronous caller watches nothing');
  assert.deepEqual([job.status, job.hold_micro, job.network, job.subcloud, job.max_attempts], ['queued', hold, 'testnet', 'eu', 3]);
  assert.equal(f.store.db.state.available.get('ns-1'), 1_000_000 - hold);
  assert.deepEqual(f.lifecycle.published.map((t) => t.jobId), [job.id]);
  assert.deepEqual(f.payloads.inputs.get(job.id), { namespaceId: 'ns-1', retentionHours: 72 });
});

test('a priority class pays its surcharge on the hold', async () => {
  const f = setUp();
  const standard = (await f.service.accept(P, ['llama'], REQUEST)).job.hold_micro;
  const urgent = (await f.service.accept(P, ['llama'], REQUEST, { priority: 'urgent' })).job;
  assert.equal(urgent.hold_micro, Math.ceil(standard * 1.5));
  assert.equal(urgent.surcharge_bps, 5_000);
});

test('validation refusals write nothing: past the network\'s max_tokens, past the model\'s context, an unknown model', async () => {
  const f = setUp();
  await assert.rejects(f.service.accept(P, ['llama'], { ...REQUEST, max_tokens: 1_001 }), refusedAs('invalid_request', /network's maximum of 1000/));
  f.catalogStore.db.state.models.set('small', modelRow('small', { context_tokens: 50 }));
  f.presence.online.set('small', 1);
  await assert.rejects(f.service.accept(P, ['small'], REQUEST), refusedAs('invalid_request', /model's context of 50/));
  await assert.rejects(f.service.accept(P, ['nope'], REQUEST), refusedAs('model_not_found'));
  nothingWritten(f);
});

test('a request whose worst case no account could hold is refused as invalid, not as a server error', async () => {
  const f = setUp();
  f.catalogStore.db.state.models.set('dear', modelRow('dear', { output_price_micro: Number.MAX_SAFE_INTEGER }));
  f.presence.online.set('dear', 1);
  await assert.rejects(f.service.accept(P, ['dear'], REQUEST), refusedAs('invalid_request', /more than any account can hold/));
  nothingWritten(f);
});

test('insufficient credits: refused with what is available, and no row, hold, message or input is left', async () => {
  const f = setUp({ credits: 10 });
  await assert.rejects(f.service.accept(P, ['llama'], REQUEST), refusedAs('insufficient_credits'));
  nothingWritten(f, 10);
  assert.equal(f.events.watched.length, 0, 'nobody listens for a job that was not accepted');
});

test('no node online: 503 with Retry-After of a heartbeat, naming the placement; nothing written', async () => {
  const f = setUp();
  f.presence.online.set('llama', 0);
  await assert.rejects(
    f.service.accept(P, ['llama'], REQUEST, { region: 'eu-west' }),
    (e: unknown) => refusedAs('model_unavailable', /'llama' on testnet in region eu-west in subcloud eu/)(e) && (e as AppError).details.retryAfterSeconds === 5,
  );
  assert.deepEqual(f.presence.asked[0], { network: 'testnet', model: 'llama', region: 'eu-west', subcloud: 'eu' });
  nothingWritten(f);
});

test('fallback models: the first that can run is taken; when none can, the first one\'s reason is the answer', async () => {
  const f = setUp();
  f.presence.online.set('llama', 0);
  f.presence.online.set('mistral', 1);
  assert.equal((await f.service.accept(P, ['llama', 'mistral'], REQUEST)).job.model, 'mistral');
  f.presence.online.set('mistral', 0);
  await assert.rejects(f.service.accept(P, ['nope', 'llama'], REQUEST), refusedAs('model_not_found'));
});

test('Redis unreachable: presence is not asked, and the job is accepted all the same (it waits in the queue)', async () => {
  const down = setUp({ redisReady: () => false });
  down.presence.online.set('llama', 0);
  assert.equal((await down.service.accept(P, ['llama'], REQUEST)).job.status, 'queued');
  assert.equal(down.presence.asked.length, 0);
  const failing = setUp();
  failing.presence.failure = redisUnreachable();
  assert.equal((await failing.service.accept(P, ['llama'], REQUEST)).job.status, 'queued');
  failing.presence.failure = new Error('WRONGTYPE (fake)');
  await assert.rejects(failing.service.accept(P, ['llama'], REQUEST), /WRONGTYPE/);
});

test('an Idempotency-Key replayed with the same request returns the first job, charged and published once', async () => {
  const f = setUp();
  const first = await f.service.accept(P, ['llama'], REQUEST, { idempotencyKey: 'k1' });
  const again = await f.service.accept(P, ['llama'], REQUEST, { idempotencyKey: 'k1' });
  assert.equal(again.replayed, true);
  assert.equal(again.job.id, first.job.id);
  assert.equal(f.store.db.state.jobs.size, 1);
  assert.equal(f.store.db.state.available.get('ns-1'), 1_000_000 - first.job.hold_micro);
  assert.equal(f.lifecycle.published.length, 1);
});

test('an Idempotency-Key reused with another request (or other terms) is a conflict, writing nothing', async () => {
  const f = setUp();
  await f.service.accept(P, ['llama'], REQUEST, { idempotencyKey: 'k1' });
  await assert.rejects(f.service.accept(P, ['llama'], { ...REQUEST, max_tokens: 101 }, { idempotencyKey: 'k1' }), refusedAs('conflict'));
  await assert.rejects(f.service.accept(P, ['llama'], REQUEST, { idempotencyKey: 'k1', priority: 'urgent' }), refusedAs('conflict'));
  assert.equal(f.store.db.state.jobs.size, 1);
  assert.equal(f.lifecycle.published.length, 1);
});

test('racing retries of one Idempotency-Key: one job, the loser answered with it as a replay', async () => {
  const f = setUp();
  const [a, b] = await Promise.all([f.service.accept(P, ['llama'], REQUEST, { idempotencyKey: 'k1' }), f.service.accept(P, ['llama'], REQUEST, { idempotencyKey: 'k1' })]);
  assert.equal(a.job.id, b.job.id);
  assert.deepEqual([a.replayed, b.replayed].sort(), [false, true]);
  assert.equal(f.store.db.state.jobs.size, 1);
  assert.equal(f.lifecycle.published.length, 1);
});

test('a synchronous caller watches from before the publish, and the completion event answers without reading back', async () => {
  const f = setUp();
  const accepted = await f.service.accept(P, ['llama'], REQUEST, { watch: true });
  assert.ok(accepted.watch);
  assert.deepEqual(f.events.watched, [accepted.job.id]);
  const calls = f.store.db.calls.length;
  const output = { content: 'hi there', finish_reason: 'stop' as const };
  setTimeout(() => f.events.emit({ kind: 'finished', jobId: accepted.job.id, status: 'completed', completed: { attempt: 1, output, usage: { prompt_tokens: 5, completion_tokens: 2 }, chargedMicro: 29 } }), 5);
  const outcome = await f.service.waitForTerminal(accepted.job, 5_000, undefined, accepted.watch);
  assert.deepEqual(outcome.output, output);
  assert.deepEqual([outcome.job.status, outcome.job.charged_micro, outcome.job.completion_tokens], ['completed', 29, 2]);
  assert.equal(f.store.db.calls.length, calls, 'no row read while the event came in time');
  assert.equal(f.events.listening(accepted.job.id), 0, 'the watch was closed');
});

test('a wait that runs out answers with the job as it stands (queued, no output), for the caller to turn into 202', async () => {
  const f = setUp();
  const accepted = await f.service.accept(P, ['llama'], REQUEST, { watch: true });
  const outcome = await f.service.waitForTerminal(accepted.job, 30, undefined, accepted.watch);
  assert.deepEqual([outcome.job.status, outcome.output], ['queued', null]);
  assert.equal(f.events.listening(accepted.job.id), 0);
});

test('a publish that was not confirmed: the input is written at once and the accept waits for it (the outbox republishes from it)', async () => {
  const f = setUp();
  f.lifecycle.confirms = false;
  const { job } = await f.service.accept(P, ['llama'], REQUEST);
  assert.deepEqual(f.payloads.writtenNow, [job.id]);
  assert.ok(f.payloads.inputs.has(job.id));
  assert.equal(f.store.db.state.jobs.get(job.id)?.status, 'queued', 'the accepted job stands, for the outbox');
});

test('an input copy that fails to store does not fail the accepted job (it runs from its queue message)', async () => {
  const f = setUp();
  f.payloads.failInserts = true;
  const { job } = await f.service.accept(P, ['llama'], REQUEST);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(f.lifecycle.published.length, 1);
  assert.equal(f.warnings.length, 1);
  assert.equal(f.store.db.state.jobs.get(job.id)?.status, 'queued');
});

test('the zero plan stores no input', async () => {
  const f = setUp();
  f.catalogStore.db.state.namespaces.set('ns-1', namespaceRow('ns-1', { retention_plan: 'zero' }));
  await f.service.accept(P, ['llama'], REQUEST);
  assert.equal(f.payloads.inputs.size, 0);
  assert.equal(f.lifecycle.published.length, 1);
});

test('reads: a malformed id is not found without a lookup; another namespace\'s job is not found; an attempt in flight shows as running', async () => {
  const f = setUp();
  const { job } = await f.service.accept(P, ['llama'], REQUEST);
  const before = f.store.db.calls.length;
  await assert.rejects(f.service.findForNamespace('not-a-uuid', 'ns-1'), refusedAs('job_not_found'));
  assert.equal(f.store.db.calls.length, before);
  await assert.rejects(f.service.findForNamespace(job.id, 'ns-2'), refusedAs('job_not_found'));
  f.inflight.attempts.set(job.id, { attempt: 1, nodeId: '0xnode', instance: 'io-1', startedAt: Date.now(), done: false });
  const seen = (await f.service.findForNamespace(job.id, 'ns-1')).job;
  assert.deepEqual([seen.status, seen.attempt, seen.node_id], ['running', 1, '0xnode']);
});

test('cancelling: a queued job is ended as cancelled; an ended one is answered unchanged, and not ended again', async () => {
  const f = setUp();
  const { job } = await f.service.accept(P, ['llama'], REQUEST);
  assert.equal((await f.service.cancel(job.id, 'ns-1')).status, 'cancelled');
  assert.equal((await f.service.cancel(job.id, 'ns-1')).status, 'cancelled');
  assert.equal(f.lifecycle.ended.length, 1);
  await assert.rejects(f.service.cancel(job.id, 'ns-2'), refusedAs('job_not_found'));
});
