// Node flags (pause, freeze, shadow-ban, cooldown), set through the admin API, in force at the next
// reservation on every instance, kept in PostgreSQL so that they survive a loss of Redis.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import type { NodeAgent } from '../../src/node-agent/agent.js';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';
import { RedisKeys } from '../../src/redis/client.js';

let stack: TestStack;
let tenant: Tenant;
let a: NodeAgent;
let b: NodeAgent;
const check = (fn: () => Promise<void>) => stack.check(fn);

before(async () => {
  stack = await TestStack.start({ config: { NO_NODE_GRACE_MS: 800, NODE_COOLDOWN_FAILURES: 2, NODE_COOLDOWN_SECONDS: 60 } });
  await stack.model();
  a = await stack.node({ capacity: 4 });
  b = await stack.node({ capacity: 4 });
  tenant = await stack.tenant(10);
});

after(async () => {
  await stack.close();
});

async function flags(nodeId: string, body: Record<string, unknown> | null): Promise<Response> {
  return fetch(`${stack.url}/admin/nodes/${nodeId}/flags`, {
    method: body ? 'PUT' : 'DELETE',
    headers: { authorization: `Bearer ${stack.config.ADMIN_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
}

/** Runs `n` jobs and returns which node served each. */
async function servedBy(n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await tenant.client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: 'user', content: `q${i}` }], max_tokens: 4 });
    out.push((await stack.job(r.id))!.node_id!);
  }
  return out;
}

test('a shadow-banned node is never chosen, and nothing tells it; reinstated, it works again', () =>
  check(async () => {
    assert.equal((await flags(a.nodeId, { shadow_banned: true, reason: 'suspected answer copying' })).status, 200);
    const served = await servedBy(8);
    assert.deepEqual(new Set(served), new Set([b.nodeId]));
    // The banned node still looks normal from its side: it is present, heartbeating, acknowledged.
    assert.notDeepEqual(await stack.presence(a.nodeId), {});
    assert.equal((await flags(a.nodeId, null)).status, 200);
    await stack.until('the reinstated node to be chosen again', async () => ((await servedBy(4)).includes(a.nodeId) ? true : undefined), 10_000);
  }));

test('paused and frozen nodes get no jobs; with every node out of rotation the model is unavailable', () =>
  check(async () => {
    await flags(a.nodeId, { paused: true });
    await flags(b.nodeId, { frozen: true });
    const models = await tenant.client.models.list();
    assert.equal((models.data.find((m) => m.id === TEST_MODEL) as unknown as { resultity: { available: boolean } }).resultity.available, false);
    const res = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: TEST_MODEL, messages: [{ role: 'user', content: 'x' }], max_tokens: 4 }),
    });
    assert.equal(res.status, 503);
    await flags(a.nodeId, { paused: false });
    assert.deepEqual(new Set(await servedBy(3)), new Set([a.nodeId]));
    await flags(b.nodeId, null);
  }));

test('a cooldown ends by itself', () =>
  check(async () => {
    await flags(a.nodeId, { cooldown_seconds: 2 });
    assert.deepEqual(new Set(await servedBy(3)), new Set([b.nodeId]));
    await new Promise((r) => setTimeout(r, 2_100));
    await stack.until('the cooled-down node to be chosen', async () => ((await servedBy(4)).includes(a.nodeId) ? true : undefined), 10_000);
  }));

test('flags survive a loss of Redis: the maintenance role restores them from PostgreSQL', () =>
  check(async () => {
    await flags(a.nodeId, { shadow_banned: true });
    const redis = new Redis(stack.config.REDIS_URL);
    const key = new RedisKeys(stack.config.REDIS_KEY_PREFIX).unroutable(a.nodeId);
    assert.equal(await redis.del(key), 1);
    await stack.until('the flag mirror to be restored', async () => ((await redis.exists(key)) === 1 ? true : undefined), 5_000);
    redis.disconnect();
    assert.deepEqual(new Set(await servedBy(4)), new Set([b.nodeId]));
    await flags(a.nodeId, null);
  }));

test('flags for an unknown node are a 404; bad bodies a 400', () =>
  check(async () => {
    assert.equal((await flags('0x' + '1'.repeat(40), { paused: true })).status, 404);
    assert.equal((await flags(a.nodeId, { paused: 'yes' })).status, 400);
    assert.equal((await flags(a.nodeId, { banana: true })).status, 400);
  }));

test('a node whose attempts keep failing is put in cooldown by rule, and its jobs complete elsewhere', () =>
  check(async () => {
    // A node whose runtime always errors, with the most free slots, so that reservations (drawn by free
    // slots x score) pick it for about 2 jobs in 3 until it cools down: over 12 jobs it surely fails twice.
    const broken = await stack.brokenNode([TEST_MODEL], 16);
    const served = await servedBy(12);
    assert.ok(!served.includes(broken.nodeId), 'every job completed on a healthy node');
    const failures = await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM job_attempts WHERE node_id = $1 AND outcome = 'failed'`, [broken.nodeId]);
    assert.equal(failures.rows[0]?.n, 2, 'two failures, then no more attempts: it is cooling down');
    const flagsRow = await stack.db.query<{ cooldown_until: Date; reason: string }>(`SELECT cooldown_until, reason FROM node_flags WHERE node_id = $1`, [broken.nodeId]);
    assert.ok(flagsRow.rows[0]!.cooldown_until.getTime() > Date.now() + 50_000);
    assert.match(flagsRow.rows[0]!.reason, /2 failed attempts in a row/);
    broken.kill();
  }));
