// Job logs and node stats in MongoDB (issue 10 part 3) on the real engines: a job's events in order with
// the time of each stage, never a node's identity in its consumer's view; a retried attempt's reason;
// another namespace's job a 404; an operator's own nodes' stats and no one else's; the admin's view of
// everything; writes batched (fewer insertMany calls than records) and dropped, counted, when MongoDB is
// down; expiry by dropping whole day collections (FerretDB: no TTL indexes).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { MongoClient } from 'mongodb';
import { TestStack, TEST_MODEL } from '../helpers/stack.js';
import { requestJson, type Answer } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { generatePrivateKey, addressOf } from '../../src/domain/signatures.js';
import { newJobId } from '../../src/domain/job-ids.js';
import { startNodeAgent, type NodeAgent } from '../../src/node-agent/agent.js';
import { SimulatedRuntime } from '../../src/node-agent/runtime.simulated.js';
import type { InferenceRuntime } from '../../src/node-agent/runtime.js';
import { JobLogsRepository } from '../../src/mongo/job-logs.repository.js';

let stack: TestStack;

before(async () => {
  stack = await TestStack.start({
    config: {
      LOGIN_IP_RATE_BURST: 100_000,
      LOGIN_IP_RATE_PER_MINUTE: 100_000,
      LOG_WRITE_FLUSH_MS: 50,
      NODE_STATS_WINDOW_MS: 60_000,
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
const call = (method: string, path: string, token?: string): Promise<Answer> => requestJson(stack.url, method, path, undefined, token);
const adminCall = (path: string) => call('GET', path, stack.config.ADMIN_TOKEN);
const ask = (content = 'Hello there') => ({ model: TEST_MODEL, messages: [{ role: 'user' as const, content }], max_tokens: 32 });

interface EventView {
  type: string;
  id: string;
  created_at: number;
  at: string;
  attempt?: number;
  outcome?: string;
  reason?: string;
  stage_ms?: Record<string, number>;
  node_id?: string;
}

/** A job's events as `token` reads them once `until` holds of them (the log is written behind). */
async function eventsOf(jobId: string, token: string, until: (events: EventView[]) => boolean, path = `/v1/jobs/${jobId}/events`): Promise<{ answer: Answer; events: EventView[] }> {
  return stack.until(`the events of job ${jobId}`, async () => {
    await stack.backbone.jobLogs.flush();
    const answer = await call('GET', path, token);
    assert.equal(answer.status, 200, answer.text);
    const events = answer.body.data as EventView[];
    return until(events) ? { answer, events } : undefined;
  });
}

const ended = (events: EventView[]) => events.some((e) => ['completed', 'failed', 'expired', 'cancelled'].includes(e.type));

async function signUp(): Promise<{ token: string; accountId: string }> {
  const a = await requestJson(stack.url, 'POST', '/account/signup', { email: `op-${randomBytes(4).toString('hex')}@example.com`, password: 'a long enough password' });
  assert.equal(a.status, 201, a.text);
  return { token: a.body.token as string, accountId: (a.body.account as { id: string }).id };
}

async function agentOf(operatorId: string, runtime: InferenceRuntime, capacity = 2): Promise<NodeAgent> {
  const agent = await startNodeAgent({
    gatewayUrl: stack.url,
    privateKey: await stack.enrolled(generatePrivateKey(), operatorId),
    operator: operatorId,
    runtime,
    capacity,
    logger: pino({ level: 'silent' }),
    reconnect: false,
  });
  stack.nodes.push(agent);
  return agent;
}

test("a job's events in order with stage times, and no node identity in its consumer's view", () =>
  check(async () => {
    const tenant = await stack.tenant(1_000_000);
    const node = await stack.node({ latencyMs: 5 });
    const res = await tenant.client.chat.completions.create(ask()).withResponse();
    const jobId = res.response.headers.get('x-resultity-job-id')!;
    const { answer, events } = await eventsOf(jobId, tenant.apiKey, ended);

    assert.equal(answer.body.object, 'list');
    assert.equal(answer.body.job_id, jobId);
    assert.deepEqual(events.map((e) => e.type), ['accepted', 'queued', 'dispatched', 'completed']);
    for (let i = 1; i < events.length; i++) assert.ok(Date.parse(events[i]!.at) >= Date.parse(events[i - 1]!.at), 'in the order they happened');
    const [accepted, queued, dispatched, completed] = events;
    assert.ok(accepted!.stage_ms!.accept_checks! >= 0 && accepted!.stage_ms!.accept_commit! > 0, JSON.stringify(accepted));
    assert.ok(queued!.stage_ms!.publish! > 0);
    assert.ok(dispatched!.stage_ms!.queued! >= 0 && dispatched!.stage_ms!.place! >= 0 && dispatched!.stage_ms!.dispatch! >= 0, JSON.stringify(dispatched));
    assert.equal(dispatched!.attempt, 1);
    assert.equal(completed!.attempt, 1);
    // The simulated node took at least its latency: the backbone measured it from dispatch to result.
    assert.ok(completed!.stage_ms!.node! >= 5, JSON.stringify(completed));
    assert.ok(completed!.stage_ms!.settle! > 0 && completed!.stage_ms!.complete! > 0);
    assert.ok((answer.body.stage_ms as Record<string, number>).settle! > 0, 'the list sums each stage');
    // No node identity anywhere in the consumer's answer.
    assert.ok(!answer.text.toLowerCase().includes(node.nodeId.toLowerCase()), answer.text);
    assert.ok(!answer.text.includes('node_id'), answer.text);

    // The admin sees the same events with the node that ran the attempt.
    const admin = await eventsOf(jobId, stack.config.ADMIN_TOKEN!, ended, `/admin/jobs/${jobId}/events`);
    assert.equal(admin.events.find((e) => e.type === 'dispatched')!.node_id, node.nodeId);
    assert.equal(admin.events.find((e) => e.type === 'completed')!.node_id, node.nodeId);
  }));

test('a streamed job logs its first token, with the time from its dispatch', () =>
  check(async () => {
    const tenant = await stack.tenant(1_000_000);
    await stack.node({ latencyMs: 2 });
    const stream = await tenant.client.chat.completions.create({ ...ask('Stream it'), stream: true }).withResponse();
    const jobId = stream.response.headers.get('x-resultity-job-id')!;
    for await (const _chunk of stream.data) void _chunk;
    const { events } = await eventsOf(jobId, tenant.apiKey, ended);
    const types = events.map((e) => e.type);
    assert.deepEqual(types, ['accepted', 'queued', 'dispatched', 'first_token', 'completed']);
    assert.ok(events[3]!.stage_ms!.first_token! >= 0);
  }));

test('an attempt retried on another node shows both attempts, the first with its reason', () =>
  check(async () => {
    const operatorId = (await stack.backbone.admin.accounts.createAccount('retry operator')).id;
    const model = 'test/retry-1';
    await stack.model(model);
    // The first node fails its job, but only once the second node is there to take the retry.
    let secondUp!: () => void;
    const secondIsUp = new Promise<void>((resolve) => (secondUp = resolve));
    let taken!: () => void;
    const firstTook = new Promise<void>((resolve) => (taken = resolve));
    const failing: InferenceRuntime = {
      name: 'fails-once-the-other-is-up',
      models: async () => [model],
      complete: async () => {
        taken();
        await secondIsUp;
        throw new Error('runtime crashed at 0x1111111111111111111111111111111111111111');
      },
    };
    const first = await agentOf(operatorId, failing);
    const tenant = await stack.tenant(1_000_000);
    const submitted = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json', prefer: 'respond-async' },
      body: JSON.stringify({ ...ask(), model }),
    });
    assert.equal(submitted.status, 202, await submitted.clone().text());
    const jobId = submitted.headers.get('x-resultity-job-id')!;
    await firstTook;
    const second = await agentOf(operatorId, new SimulatedRuntime({ models: [model], latencyMs: 0, completionTokens: 8 }));
    secondUp();

    const { answer, events } = await eventsOf(jobId, tenant.apiKey, ended);
    assert.deepEqual(events.map((e) => `${e.type}${e.attempt ?? ''}`), ['accepted', 'queued', 'dispatched1', 'attempt_failed1', 'dispatched2', 'completed2']);
    const failed = events[3]!;
    assert.equal(failed.outcome, 'failed');
    assert.match(failed.reason!, /runtime crashed/);
    // A node's own words are kept, but never an address it put in them.
    assert.ok(!failed.reason!.includes('0x1111'), failed.reason);
    assert.ok(failed.stage_ms!.node! >= 0);
    for (const n of [first, second]) assert.ok(!answer.text.toLowerCase().includes(n.nodeId.toLowerCase()));

    const admin = await eventsOf(jobId, stack.config.ADMIN_TOKEN!, ended, `/admin/jobs/${jobId}/events`);
    const nodes = admin.events.filter((e) => e.type === 'dispatched').map((e) => e.node_id);
    assert.deepEqual(nodes, [first.nodeId, second.nodeId], 'the retry went to the other node');
    assert.match(admin.events.find((e) => e.type === 'attempt_failed')!.reason!, /0x1111/, 'the admin reads the reason as written');
  }));

test("another namespace's job, or no job, is a 404 in OpenAI's error shape", () =>
  check(async () => {
    const owner = await stack.tenant(1_000_000);
    const stranger = await stack.tenant(1_000_000);
    await stack.node();
    const res = await owner.client.chat.completions.create(ask()).withResponse();
    const jobId = res.response.headers.get('x-resultity-job-id')!;
    await eventsOf(jobId, owner.apiKey, ended);
    for (const path of [`/v1/jobs/${jobId}/events`, `/v1/jobs/${newJobId()}/events`, '/v1/jobs/not-a-job/events']) {
      const a = await call('GET', path, stranger.apiKey);
      assert.equal(a.status, 404, a.text);
      const error = a.body.error as { code: string; type: string; message: string };
      assert.equal(error.code, 'job_not_found');
      assert.equal(typeof error.message, 'string');
      assert.ok(!a.text.includes('"data"'));
    }
    assert.equal((await call('GET', `/v1/jobs/${jobId}/events`)).status, 401);
    assert.equal((await adminCall(`/admin/jobs/${newJobId()}/events`)).status, 404);
  }));

test("an operator reads its own nodes' stats, never another operator's; the admin reads every node's", () =>
  check(async () => {
    const [alice, bob] = [await signUp(), await signUp()];
    const model = 'test/stats-1';
    await stack.model(model);
    const aliceNode = await agentOf(alice.accountId, new SimulatedRuntime({ models: [model], latencyMs: 20, completionTokens: 40 }), 3);
    const bobNode = await agentOf(bob.accountId, new SimulatedRuntime({ models: ['test/stats-2'], latencyMs: 0, completionTokens: 8 }), 5);
    const tenant = await stack.tenant(1_000_000);
    let paidTokens = 0;
    for (let i = 0; i < 3; i++) paidTokens += (await tenant.client.chat.completions.create({ ...ask(`job ${i}`), model })).usage!.completion_tokens;
    await stack.backbone.nodeStats.flush();

    const own = await call('GET', `/account/nodes/${aliceNode.nodeId}/stats`, alice.token);
    assert.equal(own.status, 200, own.text);
    assert.equal(own.body.node_id, aliceNode.nodeId);
    const windows = own.body.data as Array<{ heartbeats: number; capacity: number; load_max: number; completed: number; models: Array<{ model: string; completed: number; completion_tokens: number; tokens_per_second: number }> }>;
    assert.ok(windows.length >= 1);
    assert.ok(windows.some((w) => w.heartbeats >= 1 && w.capacity === 3), own.text);
    const summary = own.body.summary as { completed: number; models: Array<{ model: string; completed: number; completion_tokens: number; tokens_per_second: number }> };
    assert.equal(summary.completed, 3);
    const rate = summary.models.find((m) => m.model === model)!;
    assert.ok(paidTokens > 0);
    assert.equal(rate.completion_tokens, paidTokens);
    // Measured by the backbone: each job took the node at least 20 ms, whatever it declares.
    assert.ok(rate.tokens_per_second > 0 && rate.tokens_per_second <= paidTokens / 3 / 0.02, JSON.stringify(rate));

    // Bob's node is a 404 to Alice, exactly like a node that does not exist; no session is a 401.
    for (const id of [bobNode.nodeId, addressOf(generatePrivateKey()), 'not-a-node']) {
      const a = await call('GET', `/account/nodes/${id}/stats`, alice.token);
      assert.equal(a.status, 404, a.text);
      assert.equal((a.body.error as { code: string }).code, 'not_found');
    }
    assert.equal((await call('GET', `/account/nodes/${aliceNode.nodeId}/stats`)).status, 401);
    const bobs = await call('GET', `/account/nodes/${bobNode.nodeId}/stats`, bob.token);
    assert.equal(bobs.status, 200);
    assert.equal((bobs.body.summary as { completed: number }).completed, 0);

    // A range checked: until before since, or longer than the maximum, is a 400.
    assert.equal((await call('GET', `/account/nodes/${aliceNode.nodeId}/stats?since=2000000000&until=1000000000`, alice.token)).status, 400);
    assert.equal((await call('GET', `/account/nodes/${aliceNode.nodeId}/stats?since=1000000000`, alice.token)).status, 400);

    // The admin: any node, and every node at once.
    const adminOne = await adminCall(`/admin/nodes/${bobNode.nodeId}/stats`);
    assert.equal(adminOne.status, 200, adminOne.text);
    assert.ok((adminOne.body.data as Array<{ capacity: number }>).some((w) => w.capacity === 5));
    const all = await adminCall('/admin/node-stats');
    const seen = new Set((all.body.data as Array<{ node_id: string }>).map((w) => w.node_id));
    assert.ok(seen.has(aliceNode.nodeId) && seen.has(bobNode.nodeId), all.text);
    assert.equal((await call('GET', '/admin/node-stats', alice.token)).status, 401);
  }));

test('writes are batched: fewer insertMany calls than records, and every record lands', () =>
  check(async () => {
    const tenant = await stack.tenant(1_000_000);
    await stack.node({ capacity: 16 });
    await stack.backbone.jobLogs.flush();
    const before = { ...stack.backbone.jobLogs.writes };
    const jobs = await Promise.all(Array.from({ length: 12 }, (_, i) => tenant.client.chat.completions.create(ask(`batch ${i}`)).withResponse()));
    const ids = jobs.map((j) => j.response.headers.get('x-resultity-job-id')!);
    for (const id of ids) await eventsOf(id, tenant.apiKey, ended);
    const w = stack.backbone.jobLogs.writes;
    const records = w.records - before.records;
    const batches = w.batches - before.batches;
    assert.ok(records >= 12 * 4, `records ${records}`);
    assert.ok(batches < records, `${batches} insertMany calls for ${records} records`);
    assert.equal(w.dropped, before.dropped);
    // The counters tell the truth: MongoDB holds every record of these jobs.
    const events = await Promise.all(ids.map((id) => stack.backbone.jobLogs.ofJob(id)));
    assert.equal(events.reduce((s, e) => s + e.length, 0), 12 * 4);
  }));

test('MongoDB down: records are dropped and counted, never blocking the caller', () =>
  check(async () => {
    const port = await freePort();
    const client = new MongoClient(`mongodb://127.0.0.1:${port}/nothing`, { serverSelectionTimeoutMS: 200 });
    const logs = new JobLogsRepository(client.db('nothing'), { retentionHours: 24, planHoursOf: async () => null, flushMs: 10, batchMax: 4, bufferMax: 8, logger: pino({ level: 'silent' }) });
    try {
      const started = performance.now();
      for (let i = 0; i < 20; i++) logs.record({ jobId: newJobId(), namespaceId: 'ns', kind: 'accepted', at: new Date() });
      // record() returned at once, the store being unreachable: the whole loop took no I/O.
      assert.ok(performance.now() - started < 1_000);
      await logs.flush();
      assert.equal(logs.writes.batches, 0);
      assert.equal(logs.writes.records, 0);
      assert.equal(logs.writes.dropped, 20, 'every record is either refused (buffer full) or dropped with its failed batch');
    } finally {
      await client.close();
    }
  }));

test('expiry drops whole day collections, and never a day that has not expired', () =>
  check(async () => {
    // The maintenance role sweeps with the real clock; this test sweeps at chosen times, so that what it
    // checks is not raced by that sweeper: today's buckets, swept now, then once their retention has passed.
    const db = stack.backbone.mongo.db;
    const logs = stack.backbone.jobLogs;
    const hours = stack.config.JOB_LOG_RETENTION_HOURS;
    const tenant = await stack.tenant(0);
    const now = Date.now();
    const jobId = newJobId(now);
    for (const kind of ['accepted', 'queued'] as const) logs.record({ jobId, namespaceId: tenant.namespaceId, kind, at: new Date(now) });
    await logs.flush();
    await stack.backbone.nodeStats.flush();
    const names = async (prefix: string) => (await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name).filter((n) => n.startsWith(prefix));
    const bucket = `job_log.r${hours}h.${new Date(now).toISOString().slice(0, 10).replaceAll('-', '')}`;
    assert.ok((await names('job_log.')).includes(bucket));
    assert.equal(await db.collection(bucket).countDocuments({ jobId }), 2);

    // Not expired: nothing is dropped.
    assert.equal(await logs.sweepExpired(new Date(now)), 0);
    assert.ok((await names('job_log.')).includes(bucket));
    assert.equal((await logs.ofJob(jobId)).length, 2);
    // Past the job's retention its events are never read, whether or not their bucket is dropped yet.
    const expired = new Date(now + (hours + 1) * 3_600_000);
    assert.deepEqual(await logs.ofJob(jobId, expired), []);
    // Past the end of its day plus the retention, every document of the bucket has expired: dropped whole.
    const later = new Date(now + (hours + 25) * 3_600_000);
    assert.ok((await logs.sweepExpired(later)) >= 1);
    assert.ok(!(await names('job_log.')).includes(bucket), 'the expired day is dropped whole');

    // Node stats the same way: today's bucket stays until its retention has passed, then goes whole.
    const statsBuckets = await names('node_stats.');
    assert.ok(statsBuckets.length >= 1, 'the stats of earlier tests were written');
    assert.equal(await stack.backbone.nodeStats.sweepExpired(new Date(now)), 0);
    assert.deepEqual(await names('node_stats.'), statsBuckets);
    const statsLater = new Date(now + (stack.config.NODE_STATS_RETENTION_DAYS + 2) * 86_400_000);
    assert.ok((await stack.backbone.nodeStats.sweepExpired(statsLater)) >= 1);
    assert.deepEqual(await names('node_stats.'), []);
  }));

test("a job's log follows its namespace's plan: kept under the zero plan, kept longer under an extended one", () =>
  check(async () => {
    await stack.node({ capacity: 8 });
    const hours = stack.config.JOB_LOG_RETENTION_HOURS;
    const setPlan = async (namespaceId: string, body: unknown) => {
      const a = await requestJson(stack.url, 'PUT', `/admin/namespaces/${namespaceId}/retention`, body, stack.config.ADMIN_TOKEN);
      assert.equal(a.status, 200, a.text);
    };
    const zero = await stack.tenant(1_000_000);
    await setPlan(zero.namespaceId, { plan: 'zero' });
    const extended = await stack.tenant(1_000_000);
    const days = Math.ceil(hours / 24) + 10;
    await setPlan(extended.namespaceId, { plan: 'extended', days });

    const bucketsOf = async (jobId: string) => {
      const day = new Date().toISOString().slice(0, 10).replaceAll('-', '');
      const names = (await stack.backbone.mongo.db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name).filter((n) => n.startsWith('job_log.') && n.endsWith(day));
      const holding: string[] = [];
      for (const n of names) if ((await stack.backbone.mongo.db.collection(n).countDocuments({ jobId })) > 0) holding.push(n);
      return holding;
    };
    for (const [tenant, expected] of [
      [zero, `r${hours}h`],
      [extended, `r${days * 24}h`],
    ] as const) {
      const res = await tenant.client.chat.completions.create(ask('plan')).withResponse();
      const jobId = res.response.headers.get('x-resultity-job-id')!;
      const { events } = await eventsOf(jobId, tenant.apiKey, ended);
      assert.deepEqual(events.map((e) => e.type), ['accepted', 'queued', 'dispatched', 'completed']);
      const buckets = await bucketsOf(jobId);
      assert.deepEqual(buckets.map((b) => b.split('.')[1]), [expected], `${jobId} in ${buckets.join(', ')}`);
    }
  }));
