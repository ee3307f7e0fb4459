// Redis Cluster (issue 13, part 5): every Lua script the backbone runs, and the pipelines and multi-key
// commands beside them, on a real three-master cluster of the test's own (test/helpers/private-redis-cluster.ts)
// through ioredis's Cluster client. A script call whose declared keys span slots is refused by the server
// (CROSSSLOT), and one that touches a key of a slot another master serves fails ("non local key"), so each
// call below succeeding with the right answer is the proof that its keys land in one slot.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Cluster, type Redis } from 'ioredis';
import { PrivateRedisCluster } from '../helpers/private-redis-cluster.js';
import { createRedis, LuaScript, RedisKeys } from '../../src/redis/client.js';
import { JobEvents, type DispatchEnvelope } from '../../src/redis/job-events.js';
import { EligibilityMirror } from '../../src/redis/eligibility.mirror.js';
import { PresenceRepository, type NodeDeclaration } from '../../src/redis/presence.repository.js';
import { InflightRepository } from '../../src/redis/inflight.repository.js';
import { RateLimitRepository } from '../../src/redis/rate-limit.repository.js';
import { UptimeRepository } from '../../src/redis/uptime.repository.js';
import { JobStreams, StreamWakeups } from '../../src/redis/job-streams.js';
import { StatusRepository } from '../../src/redis/status.repository.js';
import type { EligibilityRules, Placement } from '../../src/domain/eligibility.js';

let cluster: PrivateRedisCluster;
let client: Cluster;
/** The repositories take ioredis's Redis; a Cluster answers the same commands (routed by key). */
let redis: Redis;
const keys = new RedisKeys(`cl${randomUUID().slice(0, 8)}:`);
const MODEL = 'cluster/one';
const rules: EligibilityRules = {
  revision: 'db:1',
  models: [{ name: MODEL, version: '1', minGpuMemoryMb: 0 }],
  subclouds: [{ name: 'vault', network: 'mainnet', models: [], minGpuMemoryMb: 0, isolate: true, members: ['0xbbb'] }],
};
const PUBLIC: Placement = { network: 'mainnet', model: MODEL, region: null, subcloud: null };

before(async () => {
  cluster = await PrivateRedisCluster.start(3);
  client = new Cluster(cluster.startupNodes, { redisOptions: { lazyConnect: false } });
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
  });
  redis = client as unknown as Redis;
});

after(async () => {
  client?.disconnect();
  await cluster?.stop();
});

/** The slot the cluster itself computes for a key (CLUSTER KEYSLOT). */
async function slotOf(key: string): Promise<number> {
  return client.cluster('KEYSLOT', key);
}

function declaration(nodeId: string): NodeDeclaration {
  return {
    nodeId,
    instance: 'io-1',
    capacity: 2,
    running: 0,
    network: 'mainnet',
    region: 'eu',
    gpu: { name: 'a100', memoryMb: 40_960 },
    models: [{ name: MODEL, version: '1' }],
    ceilings: new Map(),
    startSlots: 2,
    capabilities: [],
    mode: 'register',
  };
}

test('the cluster is real: three masters, and the key groups are spread over different slots', async () => {
  assert.equal(client.nodes('master').length, 3);
  const slots = new Set(await Promise.all([keys.node('0xaaa'), keys.rateBucket('k'), keys.uptimeEpochs(), keys.jobStream('j', 1)].map(slotOf)));
  assert.ok(slots.size >= 3, 'the groups hash to distinct slots');
  // Every key of the live group is one slot, whatever the id in it.
  const live = [keys.node('0xaaa'), keys.nodeSlots('0xbbb'), keys.job(randomUUID()), keys.onlineNodes(), keys.usageSample(MODEL), keys.unroutable('0xccc'), keys.eligibilityRevision()];
  assert.equal(new Set(await Promise.all(live.map(slotOf))).size, 1);
});

test('the readiness scripts (mirror, upsert, count, reserve, complete, end, release, remove) and the status pipeline run on the cluster', async () => {
  const mirror = new EligibilityMirror(redis, keys);
  assert.equal(await mirror.replace(rules), true);
  assert.equal(await mirror.revision(), 'db:1');
  const presence = new PresenceRepository(redis, keys, () => 30_000, () => 60_000, async () => void (await mirror.replace(rules)));
  const inflight = new InflightRepository(redis, keys);
  assert.equal(await presence.upsert(declaration('0xaaa')), true);
  assert.equal(await presence.upsert(declaration('0xbbb')), true);
  assert.equal(await presence.upsert({ ...declaration('0xaaa'), mode: 'heartbeat' }), false);

  // The isolated subcloud's member serves its subcloud only: the pools and memberships were read in-script.
  assert.equal(await presence.liveNodeCount(PUBLIC), 1);
  assert.equal(await presence.liveNodeCount({ ...PUBLIC, subcloud: 'vault' }), 1);
  assert.equal(await presence.liveNodeCount({ ...PUBLIC, region: 'eu' }), 1);

  const job1 = randomUUID();
  const r1 = await presence.reserveAttempt(PUBLIC, job1, [], { attempt: 1, ttlMs: 30_000 });
  assert.deepEqual(r1, { nodeId: '0xaaa', instance: 'io-1' });
  assert.equal(await presence.reserveAttempt(PUBLIC, job1, [], { attempt: 1, ttlMs: 30_000 }), 'fenced');
  assert.equal((await inflight.current(job1))?.nodeId, '0xaaa');
  assert.equal(await client.zcard(keys.nodeSlots('0xaaa')), 1);
  await inflight.completed('0xaaa', job1, { kind: 'finished', jobId: job1 }, { model: MODEL, tokens: 5, bytes: 12 });
  assert.equal(await client.zcard(keys.nodeSlots('0xaaa')), 0);
  assert.equal(await client.hget(keys.nodeEarned(), '0xaaa'), '1');
  assert.equal((await inflight.current(job1))?.done, true);

  const job2 = randomUUID();
  assert.equal((await presence.reserveAttempt(PUBLIC, job2, [], { attempt: 1, ttlMs: 30_000 })) !== null, true);
  assert.equal(await inflight.ended(job2, { kind: 'finished', jobId: job2, status: 'failed' }), '0xaaa');
  assert.equal(await client.zcard(keys.nodeSlots('0xaaa')), 0);

  const job3 = randomUUID();
  assert.deepEqual(await presence.reserveAttempt({ ...PUBLIC, subcloud: 'vault' }, job3, [], { attempt: 1, ttlMs: 30_000 }), { nodeId: '0xbbb', instance: 'io-1' });
  await presence.release('0xbbb', job3, 1);
  assert.equal(await client.zcard(keys.nodeSlots('0xbbb')), 0);
  assert.equal(await inflight.current(job3), null, 'the unclaimed attempt was taken back');

  // The status API's pipelined reads of the online nodes.
  const load = await new StatusRepository(redis, keys).fleetLoad([{ name: MODEL, version: '1', minGpuMemoryMb: 0 }]);
  assert.equal(load.get('mainnet')!.total.onlineNodes, 2);

  await presence.remove('0xbbb', 'io-1');
  assert.equal(await client.exists(keys.node('0xbbb')), 0);
  assert.equal(await presence.liveNodeCount({ ...PUBLIC, subcloud: 'vault' }), 0);
});

test('rate limits take several buckets in one script, on the cluster', async () => {
  const limits = new RateLimitRepository(redis, keys);
  const buckets = [
    { id: 'key-1', ratePerSecond: 0.001, burst: 1 },
    { id: 'account:acc-1', ratePerSecond: 0.001, burst: 5 },
  ];
  assert.deepEqual(await limits.takeAll('key-1', buckets), { allowed: true, retryAfterMs: 0, touch: true });
  const refused = await limits.takeAll('key-1', buckets);
  assert.equal(refused.allowed, false);
  assert.ok(refused.retryAfterMs > 0);
  assert.equal(refused.touch, false);
});

test('uptime marks and an epoch forgotten (a multi-key DEL), on the cluster', async () => {
  const uptime = new UptimeRepository(redis, keys, 3_600);
  await uptime.markSeen('0xaaa', 7, 3);
  await uptime.markSeen('0xaaa', 7, 4);
  await uptime.markSeen('0xccc', 7, 4);
  assert.deepEqual(await uptime.closedEpochs(8), [7]);
  const seen = (await uptime.readEpoch(7)).sort((a, b) => a.nodeId.localeCompare(b.nodeId));
  assert.deepEqual(seen, [
    { nodeId: '0xaaa', slots: 2 },
    { nodeId: '0xccc', slots: 1 },
  ]);
  await uptime.forget(7, seen.map((s) => s.nodeId));
  assert.deepEqual(await uptime.closedEpochs(8), []);
});

test('a streamed attempt appended by its script, on the cluster', async () => {
  const streams = new JobStreams(redis, keys, () => 60_000);
  const job = randomUUID();
  assert.deepEqual(await streams.append(job, 1, 0, ['Hel', 'lo'], { maxChunks: 10, maxBytes: 100 }), { outcome: 'ok', appended: 2 });
  assert.deepEqual(await streams.append(job, 1, 1, ['x'], { maxChunks: 10, maxBytes: 100 }), { outcome: 'stream_lost', appended: 0 });
  assert.equal(await streams.text(job, 1), 'Hello');
});

test('controls: the cluster refuses a call whose keys span slots, and a script touching an undeclared key elsewhere', async () => {
  const script = new LuaScript(`return redis.call('GET', KEYS[1])`);
  await assert.rejects(script.run(redis, ['{a}x', '{b}y'], []), /CROSSSLOT/);
  // Undeclared and in another slot: refused by the node that runs the script.
  const sneaky = new LuaScript(`return redis.call('GET', ARGV[1])`);
  const home = client.slots[await slotOf('{a}x')]?.[0];
  let other = '';
  for (const k of ['{c}1', '{d}2', '{e}3', '{f}4', '{g}5', '{h}6']) {
    if (client.slots[await slotOf(k)]?.[0] !== home) {
      other = k;
      break;
    }
  }
  assert.ok(other, 'a key served by another master');
  await assert.rejects(sneaky.run(redis, ['{a}x'], [other]), /slot|non local|cluster/i);
  await assert.rejects(script.run(redis, [], []), /declare at least one key/);
});

test('pub/sub through the backbone\'s cluster clients: a dispatch reaches its io instance and says so, whichever master owns its channel; job events, capacity and stream wake-ups arrive', async () => {
  // Classic PUBLISH on a cluster answers how many subscribers the receiving node has, not the cluster: an io
  // instance subscribed through another master looked absent, and the scheduler took its nodes out of
  // rotation. Sharded pub/sub counts on the shard that owns the channel, where every subscriber of it is.
  const url = `redis+cluster://${cluster.startupNodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  const pub = createRedis(url, 'test-pub');
  const subs = Array.from({ length: 9 }, (_, i) => createRedis(url, `test-sub-${i}`, { subscriber: true }));
  try {
    const instances = subs.map((_, i) => `io-${i}-${randomUUID().slice(0, 4)}`);
    // Channels of different slots, on every master.
    const owners = new Set(await Promise.all(instances.map(async (id) => client.slots[await slotOf(keys.ioInstance(id))]?.[0])));
    assert.equal(owners.size, 3, 'the instances\' channels are spread over the three masters');
    const received: string[] = [];
    const events = await Promise.all(
      subs.map(async (sub, i) => {
        const e = new JobEvents(pub, sub, keys);
        e.onDispatch((d) => received.push(`${instances[i]}:${d.jobId}`));
        await e.start(instances[i]!);
        return e;
      }),
    );
    for (const id of instances) assert.equal(await events[0]!.dispatch(id, { jobId: 'j1' } as DispatchEnvelope), true, `dispatch to ${id} delivered`);
    assert.equal(await events[0]!.dispatch('io-nobody', { jobId: 'j1' } as DispatchEnvelope), false, 'no instance listens');
    await waitFor(() => received.length === instances.length);
    assert.deepEqual(received.sort(), instances.map((id) => `${id}:j1`).sort());

    // A job's finished event (published by the completion script) reaches every instance; so does freed capacity.
    const waits = events.map((e) => e.waitFor('job-x', (ev) => ev.kind === 'finished', 5_000));
    const capacity = events.map((e) => e.waitForCapacity(MODEL, 5_000).then(() => Date.now()));
    const mirror = new EligibilityMirror(redis, keys);
    await mirror.replace(rules);
    const presence = new PresenceRepository(redis, keys, () => 30_000, () => 60_000, async () => void (await mirror.replace(rules)));
    await presence.upsert(declaration('0xddd'));
    const taken = await presence.reserveAttempt(PUBLIC, 'job-x', [], { attempt: 1, ttlMs: 30_000 });
    assert.ok(taken && taken !== 'fenced');
    const started = Date.now();
    await new InflightRepository(redis, keys).completed(taken.nodeId, 'job-x', { kind: 'finished', jobId: 'job-x', status: 'completed' }, { model: MODEL, tokens: 1, bytes: 1 });
    for (const ev of await Promise.all(waits)) assert.equal(ev?.kind, 'finished');
    for (const at of await Promise.all(capacity)) assert.ok(at - started < 4_000, 'woken by the announcement, not the timeout');

    // Stream wake-ups: the append script publishes on the job's channel, which shares the stream's slot.
    const wakeups = new StreamWakeups(subs[1]!, keys);
    const job = randomUUID();
    const watch = await wakeups.watch(job);
    await new JobStreams(redis, keys, () => 60_000).append(job, 1, 0, ['a'], { maxChunks: 10, maxBytes: 100 });
    assert.equal(await watch.wait(5_000), true);
    await watch.close();
  } finally {
    pub.disconnect();
    for (const s of subs) s.disconnect();
  }
});

async function waitFor(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
