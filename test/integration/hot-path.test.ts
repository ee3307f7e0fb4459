// The mechanisms that keep a job's path through the backbone at a few round trips, each proven on the real
// engines: the completion event that carries the answer (and is listened for before the job is published,
// so it cannot be missed), the in-process catalogue dropped on every instance when a row changes, and the
// MongoDB copies written behind the path (a lost copy of the input costs no job; a result is stored before
// its job is reported completed).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { createBackbone, type Backbone } from '../../src/app.js';
import { rcpClockFrom } from '../../src/domain/rcp.js';
import { SettlementService } from '../../src/jobs/settlement.service.js';
import { settlementStore } from '../../src/postgres/settlement.store.js';
import { INPUT_HOLD_MS, PayloadsRepository } from '../../src/mongo/payloads.repository.js';
import { jobBucket } from '../../src/mongo/payload-buckets.js';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';
import { requestJson } from '../helpers/http.js';
import { connectRabbit } from '../../src/rabbitmq/client.js';
import { JobQueue } from '../../src/rabbitmq/job-queue.js';
import { ticketOf } from '../../src/domain/job-ticket.js';
import type { JobRequest } from '../../src/domain/protocol.js';
import { findJob } from '../../src/postgres/jobs.repository.js';

let stack: TestStack;
let peer: Backbone;
let peerUrl: string;
const check = (fn: () => Promise<void>) => stack.check(fn);

before(async () => {
  stack = await TestStack.start();
  // A second instance serving the public API: its own memory, the same engines.
  peer = await createBackbone({ config: stack.config, roles: ['cloud'], logger: pino({ level: 'warn' }), mongoUrl: stack.mongoUrl, migrate: false });
  peerUrl = await peer.listen();
  await stack.model();
  await stack.node({ latencyMs: 0, capacity: 8 });
});

after(async () => {
  await peer.close();
  await stack.close();
});

const ask = (content: string) => ({ model: TEST_MODEL, messages: [{ role: 'user' as const, content }], max_tokens: 8 });

/** A chat completion request; `async` asks for 202 and the job (Prefer: respond-async). */
async function submit(base: string, apiKey: string, body: unknown, opts: { async?: boolean } = {}): Promise<{ status: number; body: Record<string, unknown>; text: string; jobId: string | null }> {
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', ...(opts.async ? { prefer: 'respond-async' } : {}) },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as Record<string, unknown>, text, jobId: res.headers.get('x-resultity-job-id') };
}

test('the completion event carries the answer: a job that finished before anyone waited is answered from it, with no read back', () =>
  check(async () => {
    const tenant = await stack.tenant(1);
    const principal = {
      keyId: tenant.keyId,
      namespaceId: tenant.namespaceId,
      rateLimitRps: null,
      rateLimitBurst: null,
      monthlyCapMicro: null,
      expiresAt: null,
    };
    // Watched from before its publish, as a synchronous request does.
    const accepted = await stack.backbone.jobs.accept(principal, [TEST_MODEL], { messages: [{ role: 'user', content: 'race me' }], max_tokens: 8 }, { watch: true });
    // The job completes before the waiter even starts: the event that says so has come and gone.
    await stack.until('the job to complete', async () => ((await stack.job(accepted.job.id))?.status === 'completed' ? true : undefined));
    // Were the answer read back, it would be gone: its stored copy is deleted here (once written: the row
    // can say completed a moment before the copy, sealed first, has landed).
    const bucket = stack.backbone.mongo.db.collection(jobBucket('job_results', accepted.job.id, stack.config.PAYLOAD_RETENTION_HOURS));
    await stack.until('the result copy to be written', async () => ((await bucket.findOne({ jobId: accepted.job.id })) ? true : undefined));
    await bucket.deleteMany({ jobId: accepted.job.id });
    const outcome = await stack.backbone.jobs.waitForTerminal(accepted.job, 10_000, undefined, accepted.watch);
    assert.equal(outcome.job.status, 'completed');
    assert.match(outcome.output?.content ?? '', /^simulated answer/, 'the answer came with the event');
    const row = await stack.db.query<{ charged_micro: number }>(`SELECT charged_micro FROM jobs WHERE id = $1`, [accepted.job.id]);
    assert.equal(outcome.job.charged_micro, row.rows[0]!.charged_micro, 'the event states the charge the ledger made');

    // Without a watch from before (a replayed request), the waiter reads the row first, and then the stored output.
    const read = await stack.backbone.jobs.waitForTerminal(accepted.job, 10_000);
    assert.equal(read.job.status, 'completed');
    assert.equal(read.output, null, 'read back: the output deleted above is reported missing, not invented');
  }));

test("a changed model, namespace or key reaches a second instance's memory at the change's commit", () =>
  check(async () => {
    const model = `test/catalog-${randomUUID().slice(0, 8)}`;
    await stack.model(model, 10, 20);
    await stack.node({ models: [model], latencyMs: 0 });
    const tenant = await stack.tenant(1);
    // The peer learns the model, namespace and key (and keeps them in memory).
    const first = await submit(peerUrl, tenant.apiKey, ask('first'), { async: true });
    assert.equal(first.status, 202, first.text);
    const holdOf = async (id: string) => (await stack.job(id))!.hold_micro;
    const before = await holdOf(String(first.body.id));

    // Repriced by a hand-written UPDATE (no service involved): the peer's next job is held at the new price.
    await stack.db.query(`UPDATE models SET output_price_micro = output_price_micro * 10 WHERE name = $1`, [TEST_MODEL]);
    await stack.until('the peer to price the next job at the new price', async () => {
      const r = await submit(peerUrl, tenant.apiKey, ask('first'), { async: true });
      return r.status === 202 && (await holdOf(String(r.body.id))) > before ? true : undefined;
    }, 1_000);
    await stack.db.query(`UPDATE models SET output_price_micro = output_price_micro / 10 WHERE name = $1`, [TEST_MODEL]);

    // A key revoked through the gate of the first instance is refused by the peer within a second.
    assert.equal((await requestJson(stack.url, 'DELETE', `/admin/keys/${tenant.keyId}`, undefined, stack.config.ADMIN_TOKEN)).status, 204);
    await stack.until('the peer to refuse the revoked key', async () => ((await submit(peerUrl, tenant.apiKey, ask('after'))).status === 401 ? true : undefined), 1_000);
  }));

test('the listening connection lost: the catalogue forgets everything, reconnects, and follows changes again', () =>
  check(async () => {
    const tenant = await stack.tenant(1);
    assert.equal((await submit(peerUrl, tenant.apiKey, ask('warm'), { async: true })).status, 202);
    // Every catalogue listener of this database is cut (both instances'): changes made now are missed.
    const killed = await stack.db.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'resultity:catalog'`,
    );
    assert.ok((killed.rowCount ?? 0) >= 2);
    await stack.db.query(`UPDATE api_keys SET revoked_at = now() WHERE id = $1`, [tenant.keyId]);
    // Whether the change was heard or not, the copy made before the loss is gone.
    await stack.until('the peer to refuse the key revoked while its listener was down', async () => ((await submit(peerUrl, tenant.apiKey, ask('x'))).status === 401 ? true : undefined), 5_000);
    // And the listener is back: a later change is followed as before.
    const other = await stack.tenant(1);
    assert.equal((await submit(peerUrl, other.apiKey, ask('warm'), { async: true })).status, 202);
    await stack.until('the listener to reconnect', async () => {
      const r = await stack.db.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'resultity:catalog'`);
      return (r.rowCount ?? 0) >= 2 ? true : undefined;
    }, 5_000);
    await stack.db.query(`UPDATE api_keys SET revoked_at = now() WHERE id = $1`, [other.keyId]);
    await stack.until('the peer to refuse a key revoked after the reconnection', async () => ((await submit(peerUrl, other.apiKey, ask('y'))).status === 401 ? true : undefined), 1_000);
  }));

test("a job that finishes within the input's hold: its input rides in its result's document, one insert instead of two", () =>
  check(async () => {
    const tenant = await stack.tenant(1);
    const r = await submit(stack.url, tenant.apiKey, ask('one insert'));
    assert.equal(r.status, 200, r.text);
    const id = r.jobId!;
    const results = stack.backbone.mongo.db.collection<{ _id: string; hasInput?: boolean }>(jobBucket('job_results', id, stack.config.PAYLOAD_RETENTION_HOURS));
    const stored = await results.findOne({ _id: `${id}#1` });
    // Sealed at rest (space/payload-keys.service.ts): the input is inside the result's sealed content.
    assert.equal(stored?.hasInput, true, 'the result document carries the input');
    // Past the hold, the input was not written a second time on its own.
    await new Promise((resolve) => setTimeout(resolve, INPUT_HOLD_MS + 300));
    const inputs = stack.backbone.mongo.db.collection<{ _id: string }>(jobBucket('job_payloads', id, stack.config.PAYLOAD_RETENTION_HOURS));
    assert.equal(await inputs.countDocuments({ _id: id }), 0);
    // Reads after the fact, from any instance, find it where it is.
    const reader = new PayloadsRepository(stack.backbone.mongo.db, stack.backbone.payloadKeys);
    assert.deepEqual((await reader.findInput(id))?.messages, [{ role: 'user', content: 'one insert' }]);
    assert.equal((await reader.find(id, tenant.namespaceId))?.input?.messages[0]?.content, 'one insert');
  }));

test("the input's copy written behind the accept, lost: the job still runs from its ticket, is charged once and answers", () =>
  check(async () => {
    // Slower than the input's hold, so that the input is written on its own (then lost, as in a crash).
    const model = 'test/slower-than-the-hold';
    await stack.model(model);
    await stack.node({ models: [model], latencyMs: INPUT_HOLD_MS + 1_000, capacity: 4 });
    const tenant = await stack.tenant(1);
    const r = await submit(stack.url, tenant.apiKey, { ...ask('written behind'), model }, { async: true });
    assert.equal(r.status, 202, r.text);
    const id = String(r.body.id);
    const inputs = stack.backbone.mongo.db.collection<{ _id: string }>(jobBucket('job_payloads', id, stack.config.PAYLOAD_RETENTION_HOURS));
    // As if its batch had been lost in a crash: the stored copy goes, while the job is still on its way.
    await stack.until('the input copy to be written', async () => ((await inputs.countDocuments({ _id: id })) === 1 ? true : undefined));
    await inputs.deleteOne({ _id: id });
    const done = await stack.until('the job to end', async () => {
      const j = await stack.job(id);
      return j && j.status !== 'queued' && j.status !== 'running' ? j : undefined;
    });
    assert.equal(done.status, 'completed');
    const captures = await stack.db.query(`SELECT 1 FROM ledger_transactions WHERE job_id = $1 AND kind = 'capture'`, [id]);
    assert.equal(captures.rowCount, 1);
    // The result was stored before the job was reported completed; the lost input is reported as missing.
    const view = await requestJson(stack.url, 'GET', `/v1/jobs/${id}`, undefined, tenant.apiKey);
    const result = view.body.result as { choices: Array<{ message: { content: string } }> };
    assert.match(result.choices[0]!.message.content, /^simulated answer/);
    assert.equal((await stack.balance(tenant.namespaceId)).held, 0);
    assert.equal(await new PayloadsRepository(stack.backbone.mongo.db, stack.backbone.payloadKeys).findInput(id), null);
  }));

test('a job whose publish and input copy were both lost ends at its deadline (expired), its hold released in full', () =>
  check(async () => {
    const tenant = await stack.tenant(1);
    const before = await stack.balance(tenant.namespaceId);
    const settlement = new SettlementService(settlementStore(stack.db), stack.config.OPERATOR_SHARE_BPS, rcpClockFrom(stack.config));
    const id = randomUUID();
    // The row and hold committed, then the process died: no publish, no input copy.
    await acceptOnly(settlement, id, tenant, TEST_MODEL, 4_000);
    await stack.db.query(`UPDATE jobs SET created_at = now() - interval '1 minute' WHERE id = $1`, [id]);
    // The outbox cannot tell this job from one whose message waits in RabbitMQ (next test): it marks it and leaves it.
    await stack.until('the outbox to mark the job', async () => {
      const r = await stack.db.query<{ published_at: Date | null; status: string }>(`SELECT published_at, status FROM jobs WHERE id = $1`, [id]);
      return r.rows[0]?.published_at ? r.rows[0] : undefined;
    });
    const done = await stack.until('the deadline to end the job', async () => {
      const r = await stack.db.query<{ status: string; error_code: string | null }>(`SELECT status, error_code FROM jobs WHERE id = $1`, [id]);
      return r.rows[0]?.status !== 'queued' ? r.rows[0] : undefined;
    }, 20_000);
    assert.deepEqual(done, { status: 'expired', error_code: 'deadline_exceeded' });
    assert.deepEqual(await stack.balance(tenant.namespaceId), before);
  }));

test('a job whose message is queued but whose publish mark and input copy were lost (a cloud killed after the confirm) still runs: the outbox does not fail it', () =>
  check(async () => {
    // The chaos run's payload_missing failures: the outbox once ended such a job for want of an input copy,
    // while its message, which carries the input, waited in RabbitMQ.
    const model = 'test/outbox-slow';
    await stack.model(model);
    // Slow enough that several outbox sweeps (SWEEP_INTERVAL_MS) pass while it runs.
    await stack.node({ models: [model], latencyMs: 2_500, capacity: 1 });
    const tenant = await stack.tenant(1);
    const settlement = new SettlementService(settlementStore(stack.db), stack.config.OPERATOR_SHARE_BPS, rcpClockFrom(stack.config));
    const request: JobRequest = { messages: [{ role: 'user', content: 'confirmed, then the process died' }], max_tokens: 8 };
    const id = randomUUID();
    await acceptOnly(settlement, id, tenant, model, 30_000);
    // Older than OUTBOX_REPUBLISH_AFTER_MS, never marked published, no input stored: only its message has it.
    await stack.db.query(`UPDATE jobs SET created_at = now() - interval '1 minute' WHERE id = $1`, [id]);
    const rabbit = connectRabbit(stack.config.RABBITMQ_URL, pino({ level: 'silent' }));
    const queue = new JobQueue(rabbit, stack.config.RABBITMQ_PREFIX);
    try {
      await queue.declareModel(model);
      await queue.publish(ticketOf((await findJob(stack.db, id))!, request));
    } finally {
      await queue.close();
      await rabbit.close();
    }
    const done = await stack.until('the job to end', async () => {
      const r = await stack.db.query<{ status: string; error_code: string | null }>(`SELECT status, error_code FROM jobs WHERE id = $1`, [id]);
      return r.rows[0] && r.rows[0].status !== 'queued' && r.rows[0].status !== 'running' ? r.rows[0] : undefined;
    }, 25_000);
    assert.deepEqual(done, { status: 'completed', error_code: null });
    assert.equal((await stack.balance(tenant.namespaceId)).held, 0);
  }));

/** Writes a job's row and hold as the cloud role's accept does, and nothing else (no publish, no input copy). */
async function acceptOnly(settlement: SettlementService, id: string, tenant: Tenant, model: string, deadlineInMs: number): Promise<void> {
  await settlement.acceptWithHold(
    {
      id,
      namespaceId: tenant.namespaceId,
      apiKeyId: tenant.keyId,
      model,
      maxAttempts: 3,
      maxTokens: 8,
      promptTokensBound: 100,
      holdMicro: 2_000,
      inputPriceMicro: 10,
      outputPriceMicro: 20,
      minChargeMicro: 0,
      deadlineAt: new Date(Date.now() + deadlineInMs),
    },
    null,
  );
}
