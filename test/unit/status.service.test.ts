// Fast tier (docs/testing.md): what the public status snapshot shows and hides (StatusService), on
// in-memory fakes of its store, the fleet and the queue depths. The same service on the real engines:
// test/integration/status.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PRIORITY_CLASSES } from '../../src/domain/priority.js';
import { StatusService } from '../../src/status/status.service.js';
import { FakeFleet, FakeQueueDepth, FakeStatusStore, type FakeNode } from '../fakes/status.store.js';

const queue = { queuesFor: (model: string) => PRIORITY_CLASSES.map((p) => `jobs.${model}.${p}`) };

function setUp(ttlMs = 0) {
  const store = new FakeStatusStore();
  const fleet = new FakeFleet();
  const depth = new FakeQueueDepth();
  const warnings: unknown[] = [];
  store.addModel('llama');
  store.addModel('qwen');
  const node = (id: string, n: Partial<FakeNode>) => fleet.nodes.push({ id, network: 'mainnet', region: 'eu', gpu: 'A100', capacity: 4, inUse: 0, models: ['llama'], ...n });
  const service = new StatusService({ store, nodes: fleet, depth, queue, logger: { warn: (o: unknown) => warnings.push(o) }, ttlMs });
  return { store, fleet, depth, warnings, node, service };
}

test('per model and per network: nodes, capacity, slots in use and free; both networks always listed, mainnet first', async () => {
  const { node, service } = setUp();
  node('0xa', { capacity: 4, inUse: 1, models: ['llama', 'qwen'] });
  node('0xb', { capacity: 2, inUse: 2, region: null, gpu: 'H100' });
  const s = await service.snapshot();
  assert.deepEqual(s.nodes, { online: 2, capacity: 6, in_use: 3 });
  assert.deepEqual(
    s.models.map((m) => [m.id, m.online_nodes, m.capacity, m.in_use, m.free]),
    [['llama', 2, 6, 3, 3], ['qwen', 1, 4, 1, 3]],
  );
  assert.deepEqual(s.networks.map((n) => n.network), ['mainnet', 'testnet']);
  const [main, test_] = s.networks;
  assert.deepEqual(main!.by_region, [{ region: null, online_nodes: 1 }, { region: 'eu', online_nodes: 1 }]);
  assert.deepEqual(main!.by_gpu, [{ gpu: 'A100', online_nodes: 1 }, { gpu: 'H100', online_nodes: 1 }]);
  assert.deepEqual(test_!.nodes, { online_nodes: 0, capacity: 0, in_use: 0, free: 0 });
  assert.deepEqual(test_!.models.map((m) => m.id), ['llama', 'qwen'], 'every catalogue model, even with no node');
});

test("a model's queued sums its priority queues; waiting is its unfinished jobs less its slots in use, never below zero", async () => {
  const { store, depth, node, service } = setUp();
  node('0xa', { capacity: 4, inUse: 3, models: ['llama', 'qwen'] });
  depth.ready.set('jobs.llama.urgent', 2).set('jobs.llama.bulk', 5).set('jobs.other.urgent', 100);
  store.db.state.unfinished.set('llama', 10).set('qwen', 1);
  const s = await service.snapshot();
  assert.deepEqual(s.models.map((m) => [m.id, m.queued, m.waiting]), [['llama', 7, 7], ['qwen', 0, 0]]);
});

test('while the broker is away the rest is served, queued is null, and the broker is not waited for', async () => {
  const { depth, warnings, node, service } = setUp();
  node('0xa', {});
  depth.connected = false;
  const s = await service.snapshot();
  assert.deepEqual(s.models.map((m) => m.queued), [null, null]);
  assert.equal(s.nodes.online, 1);
  assert.equal(depth.asked, 0);
  depth.connected = true;
  depth.failNext = new Error('channel closed');
  assert.deepEqual((await service.snapshot()).models.map((m) => m.queued), [null, null]);
  assert.equal(warnings.length, 1);
});

test("the last minute's jobs: counts, requests per second over every finished job, latencies rounded", async () => {
  const { store, service } = setUp();
  store.db.state.recent = { completed: 50, failed: 3, expired: 2, cancelled: 5, p50Ms: 812.4, p99Ms: 2999.6 };
  const s = await service.snapshot();
  assert.deepEqual(s.jobs_last_minute, { completed: 50, failed: 3, expired: 2, requests_per_second: 1, latency_ms: { p50: 812, p99: 3000 } });
  store.db.state.recent = { completed: 0, failed: 1, expired: 0, cancelled: 0, p50Ms: null, p99Ms: null };
  const quiet = await service.snapshot();
  assert.deepEqual([quiet.jobs_last_minute.requests_per_second, quiet.jobs_last_minute.latency_ms], [0.017, { p50: null, p99: null }]);
});

test('what the page hides: node ids, models outside the catalogue, cancelled jobs, the snapshot store and sizes', async () => {
  const { store, depth, node, service } = setUp();
  node('0xsecretnode', { region: 'eu-secret-dc', models: ['llama', 'private-finetune'] });
  store.db.state.unfinished.set('private-finetune', 9);
  depth.ready.set('jobs.private-finetune.urgent', 9);
  store.db.state.recent = { completed: 0, failed: 0, expired: 0, cancelled: 3, p50Ms: null, p99Ms: null };
  store.db.state.snapshot = {
    cid: 'bafyroot',
    seq: 7,
    previous_cid: 'bafyprev',
    kind: 'day',
    day: '2026-01-01',
    bytes: 123456,
    part_rows: { jobs: 10 },
    store: 'kubo:http://10.0.0.5:5001',
    created_at: new Date('2026-01-02T00:00:00Z'),
    verified_at: null,
  };
  const s = await service.snapshot();
  assert.deepEqual(s.latest_snapshot, { cid: 'bafyroot', kind: 'day', day: '2026-01-01', created_at: '2026-01-02T00:00:00.000Z' });
  assert.deepEqual(s.models.map((m) => m.id), ['llama', 'qwen']);
  assert.deepEqual(Object.keys(s.jobs_last_minute).sort(), ['completed', 'expired', 'failed', 'latency_ms', 'requests_per_second']);
  const text = JSON.stringify(s);
  for (const hidden of ['0xsecretnode', 'private-finetune', 'kubo:', 'bafyprev', '123456', 'cancelled']) assert.equal(text.includes(hidden), false, hidden);
  assert.ok(text.includes('eu-secret-dc'), 'regions are shown, as counts');
});

test('a snapshot is computed once per ttl, shared by callers that arrive meanwhile; a failed one is not kept', async () => {
  const { store, service } = setUp(60_000);
  const [a, b] = await Promise.all([service.snapshot(), service.snapshot()]);
  assert.equal(a, b);
  assert.equal(await service.snapshot(), a);
  assert.equal(store.db.calls.filter((c) => c === 'listModels').length, 1);

  const cold = setUp(60_000);
  cold.store.db.failNext('recentJobStats');
  await assert.rejects(cold.service.snapshot(), /recentJobStats failed/);
  const next = await cold.service.snapshot();
  assert.equal(next.models.length, 2);
  assert.equal(cold.store.db.calls.filter((c) => c === 'listModels').length, 2);
});

test("the fleet's metrics: online nodes and free slots per model, ready messages per priority class (none while the broker is away)", async () => {
  const { depth, node, service } = setUp();
  node('0xa', { capacity: 4, inUse: 1 });
  depth.ready.set('jobs.llama.standard', 3);
  const r = await service.fleetReading();
  assert.deepEqual(r.models[0], {
    model: 'llama',
    onlineNodes: 1,
    freeSlots: 3,
    queued: PRIORITY_CLASSES.map((p) => ({ priority: p, ready: p === 'standard' ? 3 : 0 })),
  });
  depth.connected = false;
  assert.deepEqual((await service.fleetReading()).models.map((m) => m.queued), [null, null]);
});
