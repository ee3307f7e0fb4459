// Node capacity accounting in Redis (src/redis/presence.repository.ts), on a real Redis under a key
// prefix of its own: slots are per job, so releases are idempotent; the node's own count of running
// work is respected; leaked reservations heal on heartbeat; a reconnect starts from what the node says.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisKeys } from '../../src/redis/client.js';
import { PresenceRepository, type NodeDeclaration } from '../../src/redis/presence.repository.js';
import { EligibilityMirror } from '../../src/redis/eligibility.mirror.js';
import { NO_GPU, type Placement } from '../../src/domain/eligibility.js';

const prefix = `rt_test_presence_${randomBytes(4).toString('hex')}:`;
let redis: Redis;
let presence: PresenceRepository;
let resyncs = 0;
const MODEL = 'm';

before(() => {
  redis = new Redis('redis://127.0.0.1:6379');
  const mirror = new EligibilityMirror(redis, new RedisKeys(prefix));
  // No PostgreSQL here: the "rules in PostgreSQL" are these, mirrored when a script finds no mirror.
  const resync = async () => {
    resyncs++;
    await mirror.replace({ revision: 'test:1', models: ['m', 'other', 'fair'].map((name) => ({ name, version: '1', minGpuMemoryMb: 0 })), subclouds: [] });
  };
  presence = new PresenceRepository(redis, new RedisKeys(prefix), () => 30_000, () => 200, resync);
});

after(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

const node = (id: string) => `0x${id.padStart(40, '0')}`;
const declare = (id: string, capacity: number, models: string[], running = 0, mode: NodeDeclaration['mode'] = 'register'): Promise<boolean> =>
  // No caps and no slow start here: these tests are about slots (trust.test.ts covers the capacity rules).
  presence.upsert({ nodeId: node(id), instance: 'i1', capacity, running, mode, network: 'mainnet', region: null, gpu: NO_GPU, models: models.map((name) => ({ name, version: '1' })), ceilings: new Map(), startSlots: capacity });
const up = (id: string, capacity: number, running = 0, mode: NodeDeclaration['mode'] = 'register') => declare(id, capacity, [MODEL], running, mode);
/** A public mainnet job of a model, any region. */
const job = (model: string): Placement => ({ network: 'mainnet', model, region: null, subcloud: null });

test('a slot per job: releasing twice frees one slot, not two', async () => {
  await up('a1', 1);
  assert.equal((await presence.reserve(job(MODEL), 'job-1', []))?.nodeId, node('a1'));
  assert.equal(await presence.reserve(job(MODEL), 'job-2', []), null, 'capacity 1 is taken');
  await presence.release(node('a1'), 'job-1');
  await presence.release(node('a1'), 'job-1');
  assert.equal((await presence.reserve(job(MODEL), 'job-2', []))?.nodeId, node('a1'));
  assert.equal(await presence.reserve(job(MODEL), 'job-3', []), null, 'a double release must not have freed a second slot');
  await presence.release(node('a1'), 'job-2');
});

test("the node's own count of running work holds its slots (work for attempts the network wrote off)", async () => {
  await up('b1', 2, 2); // reconnected while still finishing two old jobs
  assert.equal(await presence.reserve(job(MODEL), 'job-b', [node('a1')]), null);
  await up('b1', 2, 1, 'heartbeat'); // one old job done
  assert.equal((await presence.reserve(job(MODEL), 'job-b', [node('a1')]))?.nodeId, node('b1'));
  // Counts cannot tell the old job from job-b (max, not sum: the node's count will include job-b once
  // it has it), so until the next heartbeat a second slot may be handed out; the node refuses work past
  // its capacity and the scheduler retries elsewhere.
  await presence.release(node('b1'), 'job-b');
});

test('a reservation whose release was lost is dropped by a heartbeat once older than any attempt', async () => {
  await up('c1', 1);
  assert.equal((await presence.reserve(job(MODEL), 'leaked', [node('a1'), node('b1')]))?.nodeId, node('c1'));
  await up('c1', 1, 0, 'heartbeat');
  assert.equal(await presence.reserve(job(MODEL), 'next', [node('a1'), node('b1')]), null, 'still young: kept');
  await new Promise((r) => setTimeout(r, 250));
  await up('c1', 1, 0, 'heartbeat');
  assert.equal((await presence.reserve(job(MODEL), 'next', [node('a1'), node('b1')]))?.nodeId, node('c1'));
});

test('a registration (new connection) starts from the reservations of nobody', async () => {
  await up('d1', 1);
  assert.ok(await presence.reserve(job(MODEL), 'old-conn', [node('a1'), node('b1'), node('c1')]));
  await up('d1', 1, 0, 'register');
  assert.equal((await presence.reserve(job(MODEL), 'new-conn', [node('a1'), node('b1'), node('c1')]))?.nodeId, node('d1'));
  // The old connection's late release does not free the new job's slot.
  await presence.release(node('d1'), 'old-conn');
  assert.equal(await presence.reserve(job(MODEL), 'another', [node('a1'), node('b1'), node('c1')]), null);
});

test('a node that comes back (after its presence expired) serving other models is not used for the old ones', async () => {
  await up('e1', 1);
  await redis.del(new RedisKeys(prefix).node(node('e1'))); // its presence expired; the readiness entry for MODEL stays behind
  await declare('e1', 1, ['other']);
  const others = [node('a1'), node('b1'), node('c1'), node('d1')];
  assert.equal(await presence.reserve(job(MODEL), 'job-e', others), null);
  assert.equal((await presence.reserve(job('other'), 'job-e', []))?.nodeId, node('e1'));
});

test('equally idle nodes share the work (drawn at random, weighted by free slots x score)', async () => {
  const model = 'fair';
  for (const id of ['f1', 'f2', 'f3']) await declare(id, 1, [model]);
  const chosen = new Set<string>();
  for (let i = 0; i < 60; i++) {
    const r = await presence.reserve(job(model), `fair-${i}`, []);
    assert.ok(r);
    chosen.add(r.nodeId);
    await presence.release(r.nodeId, `fair-${i}`);
  }
  // Always the first in key order would give 1; the chance that a fair pick misses one of three nodes
  // in 60 tries is about 3 * (2/3)^60, below 1e-10.
  assert.equal(chosen.size, 3);
});

test('without a mirror of the eligibility rules (Redis lost them), a reservation has it rebuilt and goes on', async () => {
  await declare('g1', 1, ['other']);
  await redis.del(new RedisKeys(prefix).eligibilityRevision());
  const before = resyncs;
  assert.equal(await presence.liveNodeCount(job('other')), 2, 'e1 and g1 serve it');
  assert.equal(resyncs, before + 1);
  assert.equal(await presence.liveNodeCount(job('other'), 1), 1, 'atMost stops the count');
  assert.equal(resyncs, before + 1, 'a mirror in place is not rebuilt');
});
