// The whole backbone on a Redis Cluster (issue 13, part 5): a stack whose REDIS_URL names a private
// three-master cluster (redis+cluster://, test/helpers/private-redis-cluster.ts), so that every Redis client
// of every role is an ioredis Cluster: commands, scripts, pipelines and the sharded pub/sub that carries
// job events, freed capacity, dispatches to the io instance and stream wake-ups. A simulated node runs
// synchronous, asynchronous and streamed jobs end to end; the per-key rate limit holds (its buckets are on
// the cluster); a silent node's presence expires. The machine's own Redis is never used: the test checks
// that the stack's prefix left no key there.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { PrivateRedisCluster } from '../helpers/private-redis-cluster.js';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';
import { createRedis, RedisKeys, type RedisClient } from '../../src/redis/client.js';

let cluster: PrivateRedisCluster;
let stack: TestStack;
let tenant: Tenant;
/** The test's own look into the cluster. */
let redis: RedisClient;
let keys: RedisKeys;
const HEARTBEAT_TTL_MS = 3_000;

before(async () => {
  cluster = await PrivateRedisCluster.start(3);
  const url = `redis+cluster://${cluster.startupNodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  stack = await TestStack.start({ config: { REDIS_URL: url, HEARTBEAT_TTL_MS } });
  keys = new RedisKeys(stack.config.REDIS_KEY_PREFIX);
  redis = createRedis(url, 'test-cluster');
  await stack.model();
  await stack.node({ capacity: 4 });
  tenant = await stack.tenant(10);
});

after(async () => {
  redis?.disconnect();
  await stack?.close();
  await cluster?.stop();
});

const ask = (content: string) => ({ model: TEST_MODEL, messages: [{ role: 'user' as const, content }], max_tokens: 8 });

test('the stack runs on the cluster: its clients are cluster clients, its keys spread over the masters, none on the machine Redis', () =>
  stack.check(async () => {
    // A job first, so that every group of keys exists.
    await tenant.client.chat.completions.create(ask('warm up'));
    const perMaster = await Promise.all(
      cluster.startupNodes.map(async ({ port }) => {
        const node = new Redis({ port, host: '127.0.0.1' });
        try {
          const [, found] = await node.scan('0', 'MATCH', `${stack.config.REDIS_KEY_PREFIX}*`, 'COUNT', 10_000);
          return found.length;
        } finally {
          node.disconnect();
        }
      }),
    );
    assert.ok(perMaster.filter((n) => n > 0).length >= 2, `keys on several masters: ${perMaster.join(', ')}`);
    const machine = new Redis('redis://127.0.0.1:6379');
    try {
      const [, found] = await machine.scan('0', 'MATCH', `${stack.config.REDIS_KEY_PREFIX}*`, 'COUNT', 100_000);
      assert.deepEqual(found, [], 'nothing of this stack on the machine Redis');
    } finally {
      machine.disconnect();
    }
  }));

test('synchronous, asynchronous and streamed jobs end to end on the cluster', () =>
  stack.check(async () => {
    const sync = await tenant.client.chat.completions.create(ask('cluster sync'));
    assert.match(sync.choices[0]?.message.content ?? '', /^simulated answer/);

    const res = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json', prefer: 'respond-async' },
      body: JSON.stringify(ask('cluster async')),
    });
    assert.equal(res.status, 202);
    const { id } = (await res.json()) as { id: string };
    const done = await stack.until('the async job to complete', async () => {
      const j = await stack.job(id);
      return j?.status === 'completed' ? j : undefined;
    });
    assert.ok((done.charged_micro ?? 0) > 0);

    let streamed = '';
    const stream = await tenant.client.chat.completions.create({ ...ask('cluster stream'), stream: true });
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? '';
    assert.match(streamed, /^simulated answer/);

    // A handful at once: reservations, completions and wake-ups racing over the cluster.
    const many = await Promise.all(Array.from({ length: 12 }, (_, i) => tenant.client.chat.completions.create(ask(`cluster burst ${i}`))));
    assert.equal(many.length, 12);
    const rows = await stack.db.query<{ status: string; n: number }>(`SELECT status, count(*)::int AS n FROM jobs WHERE namespace_id = $1 GROUP BY status`, [tenant.namespaceId]);
    assert.deepEqual(rows.rows, [{ status: 'completed', n: 16 }]);
    assert.equal((await stack.balance(tenant.namespaceId)).held, 0);
  }));

test('the per-key rate limit holds on the cluster (429 with Retry-After; its bucket is a cluster key)', () =>
  stack.check(async () => {
    const limited = await stack.tenant(10, { rateLimitRps: 1, rateLimitBurst: 2 });
    const codes: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 4; i++) {
      const r = await fetch(`${stack.url}/v1/models`, { headers: { authorization: `Bearer ${limited.apiKey}` } });
      codes.push(r.status);
      if (r.status === 429) retryAfter = r.headers.get('retry-after');
    }
    assert.deepEqual(codes.slice(0, 2), [200, 200]);
    assert.ok(codes.includes(429), `expected a 429 in ${codes.join(',')}`);
    assert.ok(retryAfter !== null && Number(retryAfter) >= 1);
    // Taken from Redis, not from the degraded mode's in-process buckets.
    assert.equal(await redis.exists(keys.rateBucket(limited.keyId)), 1);
    await assert.rejects(limited.client.models.list(), (e: unknown) => e instanceof OpenAI.RateLimitError);
  }));

test("a silent node's presence expires after the heartbeat TTL; the node serving still takes the jobs", () =>
  stack.check(async () => {
    const silent = await stack.rawNode();
    await silent.registerAs(await stack.operator(), { models: [TEST_MODEL], capacity: 1 });
    assert.equal((await stack.presence(silent.nodeId)).instance !== undefined, true);
    assert.equal(await redis.zscore(keys.onlineNodes(), silent.nodeId) !== null, true);
    // No heartbeat: the presence hash's TTL runs out on the cluster, and the gateway closes the socket.
    await stack.until('the silent node’s presence to expire', async () => (Object.keys(await stack.presence(silent.nodeId)).length === 0 ? true : undefined), HEARTBEAT_TTL_MS * 3);
    assert.equal((await silent.waitClosed(HEARTBEAT_TTL_MS * 3)).code, 4004);
    // The expired entry is never picked: every job lands on the live node.
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => tenant.client.chat.completions.create(ask(`after expiry ${i}`))));
    assert.equal(answers.length, 6);
    assert.deepEqual(silent.pending().filter((f) => f.type === 'job'), []);
  }));
