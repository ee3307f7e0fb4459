// The maintenance role's safety nets on the real engines, run by the stack's own maintenance loop
// (SWEEP_INTERVAL_MS 500): the outbox republishes a job accepted but never published, the deadline sweep
// expires a job no node finished (hold released in full, nothing charged, quarantined with its reason),
// and the payload sweeper deletes expired documents, which reads never return in the meantime.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { Connection } from 'rabbitmq-client';
import { rcpClockFrom } from '../../src/domain/rcp.js';
import { TestStack, TEST_MODEL, type RawNode, type Tenant } from '../helpers/stack.js';
import { SettlementService } from '../../src/jobs/settlement.service.js';
import { settlementStore } from '../../src/postgres/settlement.store.js';
import { PayloadsRepository } from '../../src/mongo/payloads.repository.js';
import { bucketExpiresAtMs, bucketName, parseBucketName } from '../../src/mongo/payload-buckets.js';
import { newJobId } from '../../src/domain/job-ids.js';
import { promptTokenUpperBound, worstCaseCost } from '../../src/domain/pricing.js';
import { simulatedPromptTokens } from '../../src/node-agent/runtime.simulated.js';
import type { JobRequest } from '../../src/domain/protocol.js';

const DEADLINE_MS = 2_000;

let stack: TestStack;
let tenant: Tenant;
let payloads: PayloadsRepository;
const raws: RawNode[] = [];

before(async () => {
  // Jobs accepted through the API get a short deadline here; the outbox test sets its own.
  stack = await TestStack.start({ config: { JOB_DEADLINE_MS: DEADLINE_MS } });
  await stack.model();
  tenant = await stack.tenant(10);
  payloads = new PayloadsRepository(stack.backbone.mongo.db, stack.backbone.payloadKeys);
});

after(async () => {
  await Promise.all(raws.map((r) => r.close()));
  await stack.close();
});

const check = (fn: () => Promise<void>) => stack.check(fn);

async function submitAsync(model: string, content = 'What is the capital of France?'): Promise<string> {
  const res = await fetch(`${stack.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json', prefer: 'respond-async' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content }], max_tokens: 50 }),
  });
  assert.equal(res.status, 202, await res.clone().text());
  return ((await res.json()) as { id: string }).id;
}

function untilTerminal(jobId: string, timeoutMs = 15_000) {
  return stack.until(`job ${jobId} to end`, async () => {
    const j = await stack.job(jobId);
    return j && !['queued', 'running'].includes(j.status) ? j : undefined;
  }, timeoutMs);
}

async function ledgerKinds(jobId: string): Promise<string[]> {
  const r = await stack.db.query<{ kind: string }>(`SELECT kind FROM ledger_transactions WHERE job_id = $1 ORDER BY id`, [jobId]);
  return r.rows.map((x) => x.kind);
}

/** Takes every message off this stack's quarantine queue; returns those of the given job. */
async function drainQuarantine(jobId: string): Promise<Array<{ reason: string }>> {
  const rabbit = new Connection({ url: stack.config.RABBITMQ_URL, retryLow: 100, retryHigh: 200 });
  const ch = await rabbit.acquire();
  const found: Array<{ reason: string }> = [];
  try {
    for (;;) {
      const msg = await ch.basicGet({ queue: `${stack.config.RABBITMQ_PREFIX}.quarantine` });
      if (!msg) break;
      const body = msg.body as { jobId?: string; reason?: string } | null;
      if (body?.jobId === jobId) found.push({ reason: String(body.reason) });
      ch.basicAck({ deliveryTag: msg.deliveryTag });
    }
  } finally {
    await ch.close();
    await rabbit.close();
  }
  return found;
}

/** The job's quarantine messages: waits for the first (it is published just after the row ends), then makes sure no second one follows. */
async function quarantined(jobId: string): Promise<Array<{ reason: string }>> {
  const found: Array<{ reason: string }> = [];
  await stack.until(`job ${jobId} in quarantine`, async () => {
    found.push(...(await drainQuarantine(jobId)));
    return found.length > 0 ? true : undefined;
  }, 5_000);
  await new Promise((r) => setTimeout(r, 3 * stack.config.SWEEP_INTERVAL_MS));
  found.push(...(await drainQuarantine(jobId)));
  return found;
}

test('outbox: a job accepted but never published is republished by maintenance and completed by a node', () =>
  check(async () => {
    await stack.node();
    const settlement = new SettlementService(settlementStore(stack.db), stack.config.OPERATOR_SHARE_BPS, rcpClockFrom(stack.config));
    const request: JobRequest = { messages: [{ role: 'user', content: 'left in the outbox' }], max_tokens: 50 };
    const id = randomUUID();
    const hold = worstCaseCost({ inputPriceMicro: 10, outputPriceMicro: 20, minChargeMicro: 0, surchargeBps: 0 }, promptTokenUpperBound(request.messages), request.max_tokens);
    const before = await stack.balance(tenant.namespaceId);

    // What InferenceService.accept does, minus the publish: as if the process died right after the commit.
    await payloads.insertInput({ jobId: id, namespaceId: tenant.namespaceId, model: TEST_MODEL, input: request, retentionHours: 1 });
    await settlement.acceptWithHold({
      id,
      namespaceId: tenant.namespaceId,
      apiKeyId: tenant.keyId,
      model: TEST_MODEL,
      maxAttempts: 3,
      maxTokens: 16,
      promptTokensBound: 100,
      holdMicro: hold,
      inputPriceMicro: 10,
      outputPriceMicro: 20,
      minChargeMicro: 0,
      deadlineAt: new Date(Date.now() + 30_000),
    }, null);

    // Younger than OUTBOX_REPUBLISH_AFTER_MS (10 s): left alone, however many sweeps pass.
    await new Promise((r) => setTimeout(r, 3 * stack.config.SWEEP_INTERVAL_MS));
    const young = await stack.db.query<{ published_at: Date | null; status: string }>(`SELECT published_at, status FROM jobs WHERE id = $1`, [id]);
    assert.deepEqual(young.rows[0], { published_at: null, status: 'queued' });

    // Older than that: the outbox picks it up.
    await stack.db.query(`UPDATE jobs SET created_at = now() - interval '1 minute' WHERE id = $1`, [id]);
    const done = await untilTerminal(id);
    assert.equal(done.status, 'completed');
    const row = await stack.db.query<{ published_at: Date | null }>(`SELECT published_at FROM jobs WHERE id = $1`, [id]);
    assert.ok(row.rows[0]!.published_at instanceof Date);

    const expected = simulatedPromptTokens(request.messages) * 10 + 16 * 20;
    assert.equal(done.charged_micro, expected);
    assert.deepEqual((await ledgerKinds(id)).sort(), ['capture', 'hold', 'release']);
    const after = await stack.balance(tenant.namespaceId);
    assert.equal(before.available - after.available, expected);
    assert.equal(after.held, 0);
    const doc = await payloads.find(id, tenant.namespaceId);
    assert.match(doc?.results?.['1']?.output.content ?? '', /^simulated answer/);
  }));

test('deadline: a job no node finishes in time ends expired, its hold released in full, nothing charged, quarantined', () =>
  check(async () => {
    const model = 'test/slow';
    await stack.model(model);
    await stack.node({ models: [model], latencyMs: 10_000, capacity: 1 });
    const before = await stack.balance(tenant.namespaceId);
    const id = await submitAsync(model);
    const hold = (await stack.job(id))!.hold_micro;
    assert.ok(hold > 0);
    assert.deepEqual(await stack.balance(tenant.namespaceId), { available: before.available - hold, held: before.held + hold });

    const done = await untilTerminal(id, DEADLINE_MS + 10_000);
    assert.equal(done.status, 'expired');
    assert.equal(done.charged_micro, 0);
    const row = await stack.db.query<{ error_code: string; finished_at: Date; deadline_at: Date }>(`SELECT error_code, finished_at, deadline_at FROM jobs WHERE id = $1`, [id]);
    assert.equal(row.rows[0]!.error_code, 'deadline_exceeded');
    assert.ok(row.rows[0]!.finished_at >= row.rows[0]!.deadline_at);
    assert.deepEqual(await ledgerKinds(id), ['hold', 'release']);
    assert.deepEqual(await stack.balance(tenant.namespaceId), before);

    // The consumer sees it expired, with nothing charged.
    const view = (await (await fetch(`${stack.url}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${tenant.apiKey}` } })).json()) as Record<string, unknown>;
    assert.equal(view.status, 'expired');
    assert.equal(view.credits_charged, '0.000000');
    assert.equal(view.credits_held, '0.000000');
    assert.deepEqual(await quarantined(id), [{ reason: 'deadline_exceeded' }]);
  }));

test("deadline: when a job expires while a node holds it, the node's slot returns to the readiness index", () =>
  check(async () => {
    const model = 'test/silent';
    await stack.model(model);
    // A node that takes the job and never answers (not even a job_error): only the deadline sweep ends it.
    const node = await stack.rawNode();
    raws.push(node);
    await node.registerAs(await stack.operator(), { models: [model], capacity: 1 });
    const first = await submitAsync(model);
    assert.equal((await node.next('job', 10_000)).jobId, first);
    assert.equal((await stack.presence(node.nodeId)).reserved, '1');

    const done = await untilTerminal(first, DEADLINE_MS + 10_000);
    assert.equal(done.status, 'expired');
    assert.deepEqual(await ledgerKinds(first), ['hold', 'release']);

    // The attempt is over: the node must be able to take the next job.
    await stack
      .until('the node slot to be released', async () => ((await stack.presence(node.nodeId)).reserved === '0' ? true : undefined), 3_000)
      .catch(async () => assert.fail(`the expired job still holds the node's slot: ${JSON.stringify(await stack.presence(node.nodeId))}`));
    const second = await submitAsync(model);
    const frame = await node.next('job', DEADLINE_MS + 1_000).catch(() => null);
    assert.equal(frame?.jobId, second, 'the node never received the next job');
    await untilTerminal(second, DEADLINE_MS + 10_000);
  }));

test('payloads: filed by retention class and day; an expired document is never returned; a sweep drops expired days whole and never one before its time; TTL indexes only where the server has them', () =>
  check(async () => {
    const ns = tenant.namespaceId;
    // The direct sweeps below run on a database of their own: the stack's sweeper, every 500 ms on the
    // stack's database, could drop an expired bucket between two of their steps.
    const db = stack.backbone.mongo.client.db(`${stack.backbone.mongo.db.databaseName}_sweep`);
    const own = new PayloadsRepository(db, stack.backbone.payloadKeys);
    const input: JobRequest = { messages: [{ role: 'user', content: 'short-lived' }], max_tokens: 5 };
    const now = Date.now();
    const exists = async (name: string, on = db) => (await on.listCollections({ name }, { nameOnly: true }).toArray()).length === 1;
    const count = (name: string, id: string) => db.collection<{ _id: string }>(name).countDocuments({ _id: id });

    // Accepted three hours ago under a one-hour class: expired, not dropped yet (its day is today's).
    const past = newJobId(now - 3 * 3_600_000);
    await own.insertInput({ jobId: past, namespaceId: ns, model: TEST_MODEL, input, retentionHours: 1 });
    assert.equal(await own.find(past, ns), null);
    assert.equal(await own.findInput(past), null);

    // Accepted now under one hour and under two days: found now, in the buckets their id and class name.
    const later = newJobId(now);
    await own.insertInput({ jobId: later, namespaceId: ns, model: TEST_MODEL, input, retentionHours: 1 });
    const live = newJobId(now);
    await own.insertInput({ jobId: live, namespaceId: ns, model: TEST_MODEL, input, retentionHours: 48 });
    const shortBucket = bucketName('job_payloads', 1, now);
    const longBucket = bucketName('job_payloads', 48, now);
    assert.equal(await count(shortBucket, later), 1, `${later} is in ${shortBucket}`);
    assert.equal(await count(longBucket, live), 1, `${live} is in ${longBucket}`);
    assert.ok(await own.find(later, ns));
    assert.equal(await own.find(later, 'another-namespace'), null, "another namespace's payload is never returned");
    const inTwoHours = new Date(now + 2 * 3_600_000);
    assert.equal(await own.find(later, ns, inTwoHours), null);
    assert.equal(await own.findInput(later, inTwoHours), null);

    // A day three days ago under one hour: its bucket has wholly expired, and the sweep drops it.
    const old = newJobId(now - 3 * 86_400_000);
    await own.insertInput({ jobId: old, namespaceId: ns, model: TEST_MODEL, input, retentionHours: 1 });
    const oldBucket = bucketName('job_payloads', 1, now - 3 * 86_400_000);
    assert.ok(await exists(oldBucket));
    const first = await own.sweepExpired(new Date(now));
    assert.ok(first.buckets >= 1, JSON.stringify(first));
    assert.equal(await exists(oldBucket), false, `${oldBucket} dropped`);
    assert.ok(await exists(shortBucket), "today's one-hour bucket is kept while one of its jobs may still be unexpired");

    // Never before its time: a millisecond before the end of the day plus the class, the bucket stays.
    const shortEnd = bucketExpiresAtMs(parseBucketName(shortBucket)!);
    await own.sweepExpired(new Date(shortEnd - 1));
    assert.ok(await exists(shortBucket), 'kept until its last document has expired');
    assert.ok(await own.find(live, ns, new Date(shortEnd - 1)), 'the two-day job is unaffected');
    await own.sweepExpired(new Date(shortEnd));
    assert.equal(await exists(shortBucket), false, 'dropped once its last document has expired');
    assert.ok(await exists(longBucket), 'the two-day class of the same day is kept');
    assert.ok(await own.find(live, ns, new Date(shortEnd)));

    // The background sweeper drops an expired day of the stack's database on its own too.
    const gone = newJobId(now - 2 * 86_400_000);
    await payloads.insertInput({ jobId: gone, namespaceId: ns, model: TEST_MODEL, input, retentionHours: 1 });
    const goneBucket = bucketName('job_payloads', 1, now - 2 * 86_400_000);
    await stack.until('the maintenance sweeper to drop the expired day', async () => ((await exists(goneBucket, stack.backbone.mongo.db)) ? undefined : true), 5_000);

    // TTL index: FerretDB v1 has none (createIndexes with expireAfterSeconds answers code 238); MongoDB does.
    const build = await db.admin().command({ buildInfo: 1 });
    const ferret = 'ferretdbVersion' in build || 'ferretdb' in build;
    const fresh = new PayloadsRepository(db);
    await fresh.ensureIndexes(pino({ level: 'silent' }));
    assert.equal(fresh.ttlIndex, !ferret, `ttlIndex on ${ferret ? 'FerretDB' : 'MongoDB'}`);
    const probe = newJobId(now);
    await fresh.insertInput({ jobId: probe, namespaceId: ns, model: TEST_MODEL, input, retentionHours: 5 });
    const indexes = (await db.collection(bucketName('job_payloads', 5, now)).listIndexes().toArray()) as Array<{ name: string; key: Record<string, unknown>; expireAfterSeconds?: number }>;
    const ttl = indexes.filter((i) => i.key.expireAt === 1 && i.expireAfterSeconds === 0);
    assert.equal(ttl.length, ferret ? 0 : 1, JSON.stringify(indexes));
    await db.dropDatabase();
    process.stderr.write(`payloads.ttlIndex = ${fresh.ttlIndex} (${ferret ? 'FerretDB' : 'MongoDB'}; ${JSON.stringify(build.version)})\n`);
  }));
