// The public status API (issue 4, part 9) against the real engines: node counts and capacity per model
// from Redis presence, load while simulated nodes work, the last minute's jobs from PostgreSQL, queue
// depths from RabbitMQ, the one-second cache, and nothing private in the answer. The route is mounted on
// a Fastify instance of the test's own, over a StatusService built on this stack's engines.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { Connection } from 'rabbitmq-client';
import { pino } from 'pino';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';
import { RedisKeys } from '../../src/redis/client.js';
import { StatusRepository } from '../../src/redis/status.repository.js';
import { waitForRabbit } from '../../src/rabbitmq/client.js';
import { JobQueue } from '../../src/rabbitmq/job-queue.js';
import { QueueDepth } from '../../src/rabbitmq/queue-depth.js';
import { StatusService, type StatusServiceDeps, type StatusSnapshot } from '../../src/status/status.service.js';
import { statusRoutes } from '../../src/status/status.routes.js';
import { statusStore } from '../../src/postgres/status.store.js';

const IDLE_MODEL = 'test/no-nodes';
const NODE_LATENCY_MS = 800;
const TIMEOUT = { timeout: 60_000 };

let stack: TestStack;
let tenant: Tenant;
let redis: Redis;
let rabbit: Connection;
let queue: JobQueue;
let deps: StatusServiceDeps;
let app: FastifyInstance;
let url: string;

before(async () => {
  stack = await TestStack.start();
  await stack.model();
  await stack.model(IDLE_MODEL);
  await stack.node({ capacity: 3, latencyMs: NODE_LATENCY_MS });
  await stack.node({ capacity: 2, latencyMs: NODE_LATENCY_MS });
  tenant = await stack.tenant(10);

  redis = new Redis(stack.config.REDIS_URL);
  rabbit = new Connection({ url: stack.config.RABBITMQ_URL, retryLow: 100, retryHigh: 500 });
  await waitForRabbit(rabbit, 10_000);
  queue = new JobQueue(rabbit, stack.config.RABBITMQ_PREFIX);
  deps = { store: statusStore(stack.db), nodes: new StatusRepository(redis, new RedisKeys(stack.config.REDIS_KEY_PREFIX)), depth: new QueueDepth(rabbit), queue, logger: pino({ level: 'silent' }) };
  app = Fastify();
  statusRoutes(app, new StatusService(deps));
  url = await app.listen({ port: 0, host: '127.0.0.1' });
});

after(async () => {
  await app?.close();
  await queue?.close();
  await rabbit?.close();
  redis?.disconnect();
  await stack?.close();
});

const check = (fn: () => Promise<void>) => stack.check(fn);

async function getStatus(): Promise<{ res: Response; text: string; body: StatusSnapshot }> {
  const res = await fetch(`${url}/status`);
  assert.equal(res.status, 200);
  const text = await res.text();
  return { res, text, body: JSON.parse(text) as StatusSnapshot };
}

function modelOf(s: StatusSnapshot, id: string) {
  const m = s.models.find((x) => x.id === id);
  assert.ok(m, `model ${id} missing from ${JSON.stringify(s.models)}`);
  return m;
}

/** A service with no cache, so that a poll sees every change at once. */
const fresh = () => new StatusService({ ...deps, ttlMs: 0 });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function submitAsync(): Promise<string> {
  const res = await fetch(`${stack.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json', prefer: 'respond-async' },
    body: JSON.stringify({ model: TEST_MODEL, messages: [{ role: 'user', content: 'status?' }], max_tokens: 20 }),
  });
  assert.equal(res.status, 202);
  return ((await res.json()) as { id: string }).id;
}

test('nodes and capacity per model; a model without nodes shows none; cache-control public, max-age=1', TIMEOUT, () =>
  check(async () => {
    const { res, body } = await getStatus();
    assert.equal(res.headers.get('cache-control'), 'public, max-age=1');
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.ok(!Number.isNaN(Date.parse(body.generated_at)));
    assert.deepEqual(modelOf(body, TEST_MODEL), { id: TEST_MODEL, online_nodes: 2, capacity: 5, in_use: 0, free: 5, queued: 0, waiting: 0 });
    assert.deepEqual(modelOf(body, IDLE_MODEL), { id: IDLE_MODEL, online_nodes: 0, capacity: 0, in_use: 0, free: 0, queued: 0, waiting: 0 });
    assert.deepEqual(body.nodes, { online: 2, capacity: 5, in_use: 0 });
    assert.deepEqual(Object.keys(body).sort(), ['generated_at', 'jobs_last_minute', 'latest_snapshot', 'models', 'networks', 'nodes']);
  }));

test('an entry of the online list without a live presence is not a node', TIMEOUT, () =>
  check(async () => {
    const keys = new RedisKeys(stack.config.REDIS_KEY_PREFIX);
    const ghost = '0x' + '1'.repeat(40);
    // A node that expired (no presence hash) but is still on the list.
    await redis.zadd(keys.onlineNodes(), Date.now(), ghost);
    try {
      const s = await fresh().snapshot();
      assert.equal(modelOf(s, IDLE_MODEL).online_nodes, 0);
      assert.equal(modelOf(s, IDLE_MODEL).capacity, 0);
      assert.equal(s.nodes.online, 2);
    } finally {
      await redis.zrem(keys.onlineNodes(), ghost);
    }
  }));

test('under load: slots in use and the backlog; then the last minute counts the completions and their latency', TIMEOUT, () =>
  check(async () => {
    const service = fresh();
    const before = (await service.snapshot()).jobs_last_minute.completed;
    // 20 jobs of ~800 ms on 5 slots: four waves, a backlog for about 2.4 s.
    const ids = await Promise.all(Array.from({ length: 20 }, () => submitAsync()));
    let maxInUse = 0;
    const loaded = await stack.until(
      'a snapshot with every slot in use and a backlog',
      async () => {
        const m = modelOf(await service.snapshot(), TEST_MODEL);
        maxInUse = Math.max(maxInUse, m.in_use);
        assert.ok(m.in_use <= m.capacity, `in_use ${m.in_use} above capacity ${m.capacity}`);
        return m.in_use === 5 && (m.waiting > 0 || (m.queued ?? 0) > 0) ? m : undefined;
      },
      10_000,
    );
    assert.equal(loaded.online_nodes, 2);
    // A job being dispatched holds its slot in Redis a moment before its row says running, so it may
    // count in both in_use and waiting; never more than the jobs submitted.
    assert.ok(loaded.waiting <= 20, `waiting ${loaded.waiting}: more than the jobs submitted`);

    await stack.until('all jobs to complete', async () => {
      for (const id of ids) if ((await stack.job(id))?.status !== 'completed') return undefined;
      return true;
    }, 20_000);
    const s = await stack.until('the slots to be returned', async () => {
      const snap = await service.snapshot();
      return modelOf(snap, TEST_MODEL).in_use === 0 ? snap : undefined;
    });
    assert.deepEqual(modelOf(s, TEST_MODEL), { id: TEST_MODEL, online_nodes: 2, capacity: 5, in_use: 0, free: 5, queued: 0, waiting: 0 });
    const j = s.jobs_last_minute;
    assert.equal(j.completed - before, 20);
    assert.equal(j.failed, 0);
    assert.equal(j.expired, 0);
    assert.equal(j.requests_per_second, Math.round((j.completed / 60) * 1000) / 1000);
    assert.ok(j.latency_ms.p50 !== null && j.latency_ms.p99 !== null);
    // Every job spent at least the node's latency running; later waves also waited for a slot.
    assert.ok(j.latency_ms.p50 >= NODE_LATENCY_MS, `p50 ${j.latency_ms.p50}`);
    assert.ok(j.latency_ms.p99 >= j.latency_ms.p50, `p99 ${j.latency_ms.p99} < p50 ${j.latency_ms.p50}`);
    assert.ok(j.latency_ms.p99 >= 3 * NODE_LATENCY_MS, `p99 ${j.latency_ms.p99}: the fourth wave waited three rounds`);
  }));

test('the answer names no node, namespace, account, key or engine prefix', TIMEOUT, () =>
  check(async () => {
    await stack.until('a cached snapshot with completed jobs', async () => ((await getStatus()).body.jobs_last_minute.completed > 0 ? true : undefined));
    const { text } = await getStatus();
    assert.ok(!text.includes('0x'), `a node address in ${text}`);
    for (const n of stack.nodes) assert.ok(!text.toLowerCase().includes(n.nodeId.slice(2).toLowerCase()));
    for (const secret of [tenant.namespaceId, tenant.accountId, tenant.keyId, tenant.apiKey, stack.id, stack.config.REDIS_KEY_PREFIX, 'rk_']) {
      assert.ok(!text.includes(secret), `${secret} in ${text}`);
    }
  }));

test('cached: calls within a second share one snapshot, concurrent callers one computation', TIMEOUT, () =>
  check(async () => {
    const a = (await getStatus()).body;
    const b = (await getStatus()).body;
    assert.equal(b.generated_at, a.generated_at);

    const service = new StatusService(deps);
    const concurrent = await Promise.all(Array.from({ length: 10 }, () => service.snapshot()));
    for (const s of concurrent) assert.equal(s, concurrent[0], 'concurrent callers got separate computations');
    assert.equal(await service.snapshot(), concurrent[0]);
    await sleep(1_100);
    const later = await service.snapshot();
    assert.notEqual(later, concurrent[0]);
    assert.ok(Date.parse(later.generated_at) >= Date.parse(concurrent[0]!.generated_at) + 1_000);
  }));

test('queue depth: ready messages per queue by passive declare; a missing queue counts 0 and does not break the next', TIMEOUT, () =>
  check(async () => {
    const probe = `${stack.id}.probe`;
    const ch = await rabbit.acquire();
    try {
      await ch.queueDeclare({ queue: probe, exclusive: true });
      for (let i = 0; i < 3; i++) await ch.basicPublish({ routingKey: probe }, { n: i });
      const depth = new QueueDepth(rabbit);
      await stack.until('the probe messages to be counted', async () => ((await depth.messageCounts([probe])).get(probe) === 3 ? true : undefined), 5_000);
      const missing = `${stack.id}.missing`;
      const counts = await depth.messageCounts([missing, probe, `${missing}2`, probe]);
      assert.deepEqual([...counts.entries()], [
        [missing, 0],
        [probe, 3],
        [`${missing}2`, 0],
      ]);
      // The snapshot reads each model's own queue: point the idle model at the probe to see the count arrive.
      const pointed = new StatusService({ ...deps, ttlMs: 0, queue: { queuesFor: (m) => (m === IDLE_MODEL ? [probe] : queue.queuesFor(m)) } });
      const s = await pointed.snapshot();
      assert.equal(modelOf(s, IDLE_MODEL).queued, 3);
      assert.equal(modelOf(s, TEST_MODEL).queued, 0);
      // GET /metrics's fleet reading (metrics/fleet.ts) counts the same messages, by priority class.
      const fleet = await pointed.fleetReading();
      assert.deepEqual(fleet.models.find((m) => m.model === IDLE_MODEL)?.queued, [{ priority: 'urgent', ready: 3 }]);
      assert.deepEqual(fleet.models.find((m) => m.model === TEST_MODEL)?.queued?.map((q) => q.ready), [0, 0, 0, 0]);
    } finally {
      await ch.queueDelete({ queue: probe }).catch(() => undefined);
      await ch.close();
    }
  }));

test('per network: nodes by region and GPU class, models with capacity and free slots; a node on another version or below the floor does not count', TIMEOUT, () =>
  check(async () => {
    const added = [
      // testnet, declared region and GPU; serves the idle model too, but below the floor set below.
      await stack.node({ capacity: 2, network: 'testnet', region: 'eu-west', gpu: { name: 'rtx-4090', memoryMb: 24_576 }, models: [TEST_MODEL, IDLE_MODEL] }),
      // mainnet, on a version the catalogue does not serve: online, but serving nothing.
      await stack.node({ capacity: 8, region: 'us-east', gpu: { name: 'a100-80gb', memoryMb: 81_920 }, modelVersions: { [TEST_MODEL]: '2' } }),
    ];
    await stack.backbone.admin.models.putModel({ name: IDLE_MODEL, inputPricePerMtok: 10, outputPricePerMtok: 20, minGpuMemoryMb: 30_000 });
    try {
      // Through the route (its schema is the filter of what is public), once the cache has moved on.
      const body = await stack.until('a snapshot with the added nodes and the new floor', async () => {
        const s = (await getStatus()).body;
        const testnet = s.networks.find((n) => n.network === 'testnet');
        const idle = testnet?.models.find((m) => m.id === IDLE_MODEL);
        return testnet?.nodes.online_nodes === 1 && idle?.online_nodes === 0 ? s : undefined;
      });
      const zero = { online_nodes: 0, capacity: 0, in_use: 0, free: 0 };
      assert.deepEqual(body.networks, [
        {
          network: 'mainnet',
          nodes: { online_nodes: 2, capacity: 5, in_use: 0, free: 5 },
          by_region: [{ region: null, online_nodes: 2 }],
          by_gpu: [{ gpu: 'none', online_nodes: 2 }],
          models: [
            { id: IDLE_MODEL, ...zero },
            { id: TEST_MODEL, online_nodes: 2, capacity: 5, in_use: 0, free: 5 },
          ],
        },
        {
          network: 'testnet',
          nodes: { online_nodes: 1, capacity: 2, in_use: 0, free: 2 },
          by_region: [{ region: 'eu-west', online_nodes: 1 }],
          by_gpu: [{ gpu: 'rtx-4090', online_nodes: 1 }],
          models: [
            { id: IDLE_MODEL, ...zero },
            { id: TEST_MODEL, online_nodes: 1, capacity: 2, in_use: 0, free: 2 },
          ],
        },
      ]);
      // The totals add the networks up.
      assert.deepEqual(body.nodes, { online: 3, capacity: 7, in_use: 0 });
      assert.equal(modelOf(body, TEST_MODEL).online_nodes, 3);
    } finally {
      for (const n of added) n.kill();
      await stack.backbone.admin.models.putModel({ name: IDLE_MODEL, inputPricePerMtok: 10, outputPricePerMtok: 20, minGpuMemoryMb: 0 });
    }
  }));
