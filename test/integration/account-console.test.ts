// The web consoles' part of the account API (/account) on the real engines. Consumers: a namespace's
// balance and holds, usage (JSON and CSV) and recent jobs with their charge (never the node), key
// rotation. Operators: their own nodes with online state, flags and reasons (shadow bans never told),
// score and its parts, contribution points, earnings by node and day, and withdrawal requests. Another
// account's namespace, key or node is a 404, exactly like one that does not exist.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { TestStack, TEST_MODEL } from '../helpers/stack.js';
import { requestJson, type Answer } from '../helpers/http.js';
import { generatePrivateKey } from '../../src/domain/signatures.js';
import { startNodeAgent, type NodeAgent } from '../../src/node-agent/agent.js';
import { SimulatedRuntime } from '../../src/node-agent/runtime.simulated.js';

let stack: TestStack;

before(async () => {
  stack = await TestStack.start({
    config: {
      LOGIN_IP_RATE_BURST: 100_000,
      LOGIN_IP_RATE_PER_MINUTE: 100_000,
      // Scores are computed when the test asks (quality.pass()), not by the timer.
      QUALITY_INTERVAL_MS: 3_600_000,
      BLIND_JOB_INTERVAL_MS: 0,
    },
  });
  await stack.model();
});

after(async () => {
  await stack.close();
});

const check = (fn: () => Promise<void>) => stack.check(fn);
const call = (method: string, path: string, body?: unknown, token?: string): Promise<Answer> => requestJson(stack.url, method, path, body, token);

function assertError(a: Answer, status: number, code: string): void {
  assert.equal(a.status, status, a.text);
  assert.equal((a.body.error as { code: string }).code, code, a.text);
}

interface Session {
  token: string;
  accountId: string;
}

async function signUp(): Promise<Session> {
  const a = await call('POST', '/account/signup', { email: `user-${randomBytes(4).toString('hex')}@example.com`, password: 'a long enough password' });
  assert.equal(a.status, 201, a.text);
  return { token: a.body.token as string, accountId: (a.body.account as { id: string }).id };
}

async function namespaceOf(s: Session, name: string, credits: number): Promise<string> {
  const a = await call('POST', '/account/namespaces', { name }, s.token);
  assert.equal(a.status, 201, a.text);
  const id = a.body.id as string;
  if (credits > 0) await stack.backbone.admin.credits.topUp(id, credits);
  return id;
}

/** A simulated node enrolled by `operator` (an account of the account API). */
async function nodeOf(operator: Session): Promise<NodeAgent> {
  const agent = await startNodeAgent({
    gatewayUrl: stack.url,
    privateKey: await stack.enrolled(generatePrivateKey(), operator.accountId),
    operator: operator.accountId,
    runtime: new SimulatedRuntime({ models: [TEST_MODEL], latencyMs: 0, completionTokens: 16 }),
    capacity: 3,
    logger: pino({ level: 'silent' }),
    reconnect: false,
  });
  stack.nodes.push(agent);
  return agent;
}

async function complete(apiKey: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${stack.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: TEST_MODEL, messages: [{ role: 'user', content: 'hello console' }], max_tokens: 32 }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

let consumer: Session;
let stranger: Session;
let operator: Session;
let namespaceId: string;
let node: NodeAgent;
let apiKey: string;
let keyId: string;

test('set-up: a consumer runs a job through the key it made in the account API, on a node of an operator account', async () => {
  await check(async () => {
    consumer = await signUp();
    stranger = await signUp();
    operator = await signUp();
    namespaceId = await namespaceOf(consumer, 'console', 10);
    node = await nodeOf(operator);
    const issued = await call('POST', `/account/namespaces/${namespaceId}/keys`, { name: 'app', monthly_cap: 5 }, consumer.token);
    assert.equal(issued.status, 201, issued.text);
    apiKey = issued.body.key as string;
    keyId = issued.body.id as string;
    const r = await complete(apiKey);
    assert.equal(r.status, 200, JSON.stringify(r.body));
  });
});

test("a namespace's balance and holds, recent jobs with their charge (never the node) and usage as JSON and CSV", async () => {
  await check(async () => {
    const balance = await call('GET', `/account/namespaces/${namespaceId}/balance`, undefined, consumer.token);
    assert.equal(balance.status, 200, balance.text);
    assert.equal(balance.body.held_micro, 0);
    assert.equal(Number(balance.body.held), 0);
    const available = balance.body.available_micro as number;
    assert.ok(available > 0 && available < 10_000_000, balance.text);
    assert.equal(Number(balance.body.available), available / 1_000_000);

    const jobs = await call('GET', `/account/namespaces/${namespaceId}/jobs?limit=10`, undefined, consumer.token);
    assert.equal(jobs.status, 200, jobs.text);
    const list = jobs.body.data as Array<Record<string, unknown>>;
    assert.equal(list.length, 1);
    const job = list[0]!;
    assert.equal(job.status, 'completed');
    assert.equal(job.model, TEST_MODEL);
    assert.equal(job.api_key_id, keyId);
    assert.equal(job.completion_tokens, 16);
    assert.equal(job.charged_micro, 10_000_000 - available);
    assert.equal(typeof job.credits_charged, 'string');
    assert.ok(!('node_id' in job) && !jobs.text.includes(node.nodeId), 'a consumer never learns which node served it');

    const usage = await call('GET', `/account/namespaces/${namespaceId}/usage`, undefined, consumer.token);
    assert.equal(usage.status, 200, usage.text);
    const rows = usage.body.data as Array<Record<string, unknown>>;
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.requests, 1);
    assert.equal(rows[0]!.api_key_id, keyId);
    const csv = await fetch(`${stack.url}/account/namespaces/${namespaceId}/usage?format=csv`, { headers: { authorization: `Bearer ${consumer.token}` } });
    assert.equal(csv.status, 200);
    assert.match(csv.headers.get('content-type') ?? '', /^text\/csv/);
    assert.match(csv.headers.get('content-disposition') ?? '', /attachment; filename="usage-/);
    const lines = (await csv.text()).trim().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /^day,model,api_key_id/);
  });
});

test('rotating a key gives a new secret with the same limits; the old one stops working at once', async () => {
  await check(async () => {
    const rotated = await call('POST', `/account/namespaces/${namespaceId}/keys/${keyId}/rotate`, undefined, consumer.token);
    assert.equal(rotated.status, 201, rotated.text);
    assert.notEqual(rotated.body.key, apiKey);
    assert.equal(rotated.body.monthly_cap_micro, 5_000_000);
    assert.equal(rotated.body.name, 'app');
    assert.equal((await complete(apiKey)).status, 401);
    assert.equal((await complete(rotated.body.key as string)).status, 200);
    // The old key is gone: rotating it again is a 404.
    assertError(await call('POST', `/account/namespaces/${namespaceId}/keys/${keyId}/rotate`, undefined, consumer.token), 404, 'not_found');
    apiKey = rotated.body.key as string;
    keyId = rotated.body.id as string;
  });
});

test("another account's namespace is a 404 on every console route, and no session is a 401", async () => {
  await check(async () => {
    for (const [method, path] of [
      ['GET', `/account/namespaces/${namespaceId}/balance`],
      ['GET', `/account/namespaces/${namespaceId}/jobs`],
      ['GET', `/account/namespaces/${namespaceId}/usage`],
      ['GET', `/account/namespaces/${namespaceId}/usage?format=csv`],
      ['POST', `/account/namespaces/${namespaceId}/keys/${keyId}/rotate`],
    ] as const) {
      assertError(await call(method, path, undefined, stranger.token), 404, 'not_found');
      assert.equal((await call(method, path)).status, 401, path);
      // An API key is not a session, even on its own namespace.
      assert.equal((await call(method, path, undefined, apiKey)).status, 401, path);
    }
    // A key of the owner's namespace, named under another namespace of the stranger's, is not found either.
    const own = await namespaceOf(stranger, 'mine', 0);
    // A namespace may be made on testnet; an unknown network is refused.
    const testnet = await call('POST', '/account/namespaces', { name: 'trial', network: 'testnet' }, stranger.token);
    assert.equal(testnet.status, 201, testnet.text);
    assert.equal(testnet.body.network, 'testnet');
    assertError(await call('POST', '/account/namespaces', { name: 'other', network: 'devnet' }, stranger.token), 400, 'invalid_request');
    assertError(await call('POST', `/account/namespaces/${own}/keys/${keyId}/rotate`, undefined, stranger.token), 404, 'not_found');
    assert.equal((await complete(apiKey)).status, 200, 'the key still works');
  });
});

test("an operator sees its nodes online, with flags, the reason for each and the score's parts; shadow bans are never told", async () => {
  await check(async () => {
    const list = await call('GET', '/account/nodes', undefined, operator.token);
    assert.equal(list.status, 200, list.text);
    const nodes = list.body.data as Array<Record<string, unknown>>;
    assert.equal(nodes.length, 1);
    const view = nodes[0]!;
    assert.equal(view.id, node.nodeId);
    assert.equal(view.online, true);
    assert.equal(view.in_rotation, true);
    const presence = view.presence as Record<string, unknown>;
    assert.equal(presence.capacity, 3);
    assert.equal(presence.network, 'mainnet');
    assert.deepEqual(presence.models, [`${TEST_MODEL}@1`]);
    assert.equal(view.score, null, 'no quality pass yet');

    assert.equal(await stack.backbone.quality.pass(), true);
    await stack.backbone.admin.nodeFlags.set(node.nodeId, { cooldownSeconds: 600 }, 'too many timeouts');
    const one = await call('GET', `/account/nodes/${node.nodeId}`, undefined, operator.token);
    assert.equal(one.status, 200, one.text);
    const flags = one.body.flags as Record<string, unknown>;
    assert.equal(flags.reason, 'too many timeouts');
    assert.ok(Date.parse(flags.cooldown_until as string) > Date.now() + 500_000, one.text);
    assert.equal(one.body.in_rotation, false);
    const score = one.body.score as { score: number; attempts: number } & Record<string, number>;
    assert.ok(score.score > 0 && score.score <= 1, one.text);
    assert.equal(score.attempts, 3, 'three jobs ran so far');
    for (const part of ['success_rate', 'latency_factor', 'blind_accuracy']) assert.equal(typeof score[part], 'number');

    // A shadow ban shows neither as a flag nor through its reason.
    await stack.backbone.admin.nodeFlags.set(node.nodeId, { shadowBanned: true, cooldownSeconds: 0 }, 'shadow: suspected copying');
    const banned = await call('GET', `/account/nodes/${node.nodeId}`, undefined, operator.token);
    assert.equal(banned.status, 200, banned.text);
    assert.ok(!banned.text.includes('shadow'), banned.text);
    assert.equal((banned.body.flags as Record<string, unknown>).reason, null);
    assert.equal(banned.body.in_rotation, true);
    await stack.backbone.admin.nodeFlags.reinstate(node.nodeId);
  });
});

test("an operator's contribution points, earnings by node and day, and withdrawals of its own earnings", async () => {
  await check(async () => {
    const rcp = await call('GET', `/account/nodes/${node.nodeId}/rcp`, undefined, operator.token);
    assert.equal(rcp.status, 200, rcp.text);
    const epochs = rcp.body.data as Array<Record<string, unknown>>;
    assert.equal(epochs.length, 1);
    assert.equal(epochs[0]!.job_points, 3);
    assert.ok(Date.parse(epochs[0]!.starts_at as string) <= Date.now() && Date.parse(epochs[0]!.ends_at as string) > Date.now());

    const earnings = await call('GET', '/account/earnings', undefined, operator.token);
    assert.equal(earnings.status, 200, earnings.text);
    const byDay = earnings.body.by_node_and_day as Array<Record<string, unknown>>;
    assert.equal(byDay.length, 1);
    assert.equal(byDay[0]!.node_id, node.nodeId);
    assert.equal(byDay[0]!.jobs, 3);
    const earned = Number(earnings.body.earned);
    assert.ok(earned > 0, earnings.text);
    assert.equal(Number(byDay[0]!.earned), earned);

    assertError(await call('POST', '/account/withdrawals', { amount: earned + 1, destination: '0xabc' }, operator.token), 402, 'insufficient_credits');
    const w = await call('POST', '/account/withdrawals', { amount: earned / 2, destination: 'wallet 0xabc' }, operator.token);
    assert.equal(w.status, 201, w.text);
    assert.equal(w.body.status, 'requested');
    const listed = await call('GET', '/account/withdrawals', undefined, operator.token);
    assert.equal(listed.status, 200, listed.text);
    assert.deepEqual((listed.body.data as Array<{ id: string }>).map((x) => x.id), [w.body.id]);
    const after = await call('GET', '/account/earnings', undefined, operator.token);
    assert.equal(Number(after.body.pending_withdrawal), Number(w.body.amount));
    assertError(await call('GET', '/account/earnings?from=yesterday', undefined, operator.token), 400, 'invalid_request');
    await stack.assertLedgerBalanced();
  });
});

test("another account's node is a 404 (like an unknown one), and its lists are its own", async () => {
  await check(async () => {
    for (const path of [`/account/nodes/${node.nodeId}`, `/account/nodes/${node.nodeId}/rcp`, '/account/nodes/0x0000000000000000000000000000000000000001', '/account/nodes/not-an-address']) {
      assertError(await call('GET', path, undefined, stranger.token), 404, 'not_found');
    }
    assert.equal((await call('GET', `/account/nodes/${node.nodeId}`)).status, 401);
    assert.deepEqual((await call('GET', '/account/nodes', undefined, stranger.token)).body.data, []);
    assert.deepEqual((await call('GET', '/account/withdrawals', undefined, stranger.token)).body.data, []);
    const earnings = await call('GET', '/account/earnings', undefined, stranger.token);
    assert.equal(earnings.status, 200, earnings.text);
    assert.deepEqual(earnings.body.by_node_and_day, []);
    assert.equal(Number(earnings.body.earned), 0);
    // The operator's upper-case spelling of its own node's address finds it.
    assert.equal((await call('GET', `/account/nodes/${node.nodeId.toUpperCase().replace('0X', '0x')}`, undefined, operator.token)).status, 200);
  });
});
