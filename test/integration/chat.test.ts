// The public API through the official `openai` client against a running backbone with simulated nodes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { bucketName } from '../../src/mongo/payload-buckets.js';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';

let stack: TestStack;
let alice: Tenant;
let bob: Tenant;

before(async () => {
  stack = await TestStack.start();
  await stack.model();
  await stack.node();
  await stack.node();
  alice = await stack.tenant(10);
  bob = await stack.tenant(10);
});

after(async () => {
  await stack.close();
});

const check = (fn: () => Promise<void>) => stack.check(fn);

const ask = { model: TEST_MODEL, messages: [{ role: 'user' as const, content: 'What is the capital of France?' }], max_tokens: 50 };

test('synchronous completion: OpenAI shape, usage, and the exact charge', () =>
  check(async () => {
    const before = await stack.balance(alice.namespaceId);
    const r = await alice.client.chat.completions.create(ask);
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, TEST_MODEL);
    assert.match(r.choices[0]?.message.content ?? '', /^simulated answer/);
    assert.ok(r.usage && r.usage.completion_tokens === 16 && r.usage.prompt_tokens > 0);
    // 10 micro-credits per input token, 20 per output token.
    const expected = r.usage.prompt_tokens * 10 + r.usage.completion_tokens * 20;
    const after = await stack.balance(alice.namespaceId);
    assert.equal(before.available - after.available, expected);
    assert.equal(after.held, 0);
    const extra = (r as unknown as { resultity: { credits_charged: string; job_id: string } }).resultity;
    assert.equal(extra.credits_charged, (expected / 1e6).toFixed(6));
    assert.ok(!JSON.stringify(r).includes('0x'), 'the response must not name the node');
  }));

test('asynchronous submit (Prefer: respond-async) and poll', () =>
  check(async () => {
    const res = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.apiKey}`, 'content-type': 'application/json', prefer: 'respond-async' },
      body: JSON.stringify(ask),
    });
    assert.equal(res.status, 202);
    const job = (await res.json()) as { id: string; status: string };
    assert.equal(res.headers.get('location'), `/v1/jobs/${job.id}`);
    const done = await stack.until('the job to complete', async () => {
      const r = await fetch(`${stack.url}/v1/jobs/${job.id}`, { headers: { authorization: `Bearer ${alice.apiKey}` } });
      const body = (await r.json()) as { status: string; result: { choices: Array<{ message: { content: string } }> } | null };
      return body.status === 'completed' ? body : undefined;
    });
    assert.match(done.result?.choices[0]?.message.content ?? '', /^simulated answer/);
  }));

test('401 for a missing or wrong key, in OpenAI error shape', () =>
  check(async () => {
    const wrong = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: 'rk_' + 'x'.repeat(43), maxRetries: 0 });
    await assert.rejects(wrong.chat.completions.create(ask), (e: unknown) => e instanceof OpenAI.AuthenticationError && e.status === 401);
    const res = await fetch(`${stack.url}/v1/models`);
    assert.equal(res.status, 401);
    const body = (await res.json()) as { error: { type: string; code: string } };
    assert.equal(body.error.type, 'authentication_error');
  }));

test('404 for an unknown model', () =>
  check(async () => {
    await assert.rejects(alice.client.chat.completions.create({ ...ask, model: 'no/such-model' }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.NotFoundError);
      assert.equal(e.code, 'model_not_found');
      return true;
    });
  }));

test("404 for another namespace's job, indistinguishable from a missing one", () =>
  check(async () => {
    const r = await alice.client.chat.completions.create(ask);
    const mine = await fetch(`${stack.url}/v1/jobs/${r.id}`, { headers: { authorization: `Bearer ${alice.apiKey}` } });
    assert.equal(mine.status, 200);
    const theirs = await fetch(`${stack.url}/v1/jobs/${r.id}`, { headers: { authorization: `Bearer ${bob.apiKey}` } });
    const missing = await fetch(`${stack.url}/v1/jobs/00000000-0000-4000-8000-000000000000`, { headers: { authorization: `Bearer ${bob.apiKey}` } });
    assert.equal(theirs.status, 404);
    assert.equal(missing.status, 404);
    const a = (await theirs.json()) as { error: { code: string } };
    const b = (await missing.json()) as { error: { code: string } };
    assert.equal(a.error.code, b.error.code);
  }));

test('402 when the namespace cannot cover the hold: no job, no hold, no payload left behind', () =>
  check(async () => {
    const poor = await stack.tenant(0.0001); // 100 micro-credits; the hold for max_tokens 50 needs more
    const jobsBefore = await stack.db.query(`SELECT count(*)::int AS n FROM jobs WHERE namespace_id = $1`, [poor.namespaceId]);
    await assert.rejects(poor.client.chat.completions.create(ask), (e: unknown) => {
      assert.ok(e instanceof OpenAI.APIError);
      assert.equal(e.status, 402);
      assert.equal(e.code, 'insufficient_credits');
      return true;
    });
    const jobsAfter = await stack.db.query(`SELECT count(*)::int AS n FROM jobs WHERE namespace_id = $1`, [poor.namespaceId]);
    assert.deepEqual(jobsAfter.rows, jobsBefore.rows);
    assert.deepEqual(await stack.balance(poor.namespaceId), { available: 100, held: 0 });
    const payloads = await stack.backbone.mongo.db.collection(bucketName('job_payloads', stack.config.PAYLOAD_RETENTION_HOURS, Date.now())).countDocuments({ namespaceId: poor.namespaceId });
    assert.equal(payloads, 0);
  }));

test('429 past the per-key rate limit, with Retry-After', () =>
  check(async () => {
    const limited = await stack.tenant(10, { rateLimitRps: 1, rateLimitBurst: 2 });
    const codes: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${stack.url}/v1/models`, { headers: { authorization: `Bearer ${limited.apiKey}` } });
      codes.push(res.status);
      if (res.status === 429) retryAfter = res.headers.get('retry-after');
    }
    assert.deepEqual(codes.slice(0, 2), [200, 200]);
    assert.ok(codes.includes(429), `expected a 429 in ${codes.join(',')}`);
    assert.ok(retryAfter !== null && Number(retryAfter) >= 1);
    await assert.rejects(limited.client.models.list(), (e: unknown) => e instanceof OpenAI.RateLimitError);
  }));

test('400 for invalid requests, 413 for oversized bodies', () =>
  check(async () => {
    await assert.rejects(alice.client.chat.completions.create({ ...ask, messages: [] }), (e: unknown) => e instanceof OpenAI.BadRequestError);
    await assert.rejects(alice.client.chat.completions.create({ ...ask, n: 2 }), (e: unknown) => e instanceof OpenAI.BadRequestError);
    // Asking for what the network cannot do is refused, not silently ignored (and billed): the deprecated
    // `functions` (tools and JSON formats are served: cloud-api-tools.test.ts).
    const functions = [{ name: 'f', parameters: {} }];
    await assert.rejects(alice.client.chat.completions.create({ ...ask, functions }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.BadRequestError);
      assert.equal(e.param, 'functions');
      return true;
    });
    const huge = 'x'.repeat(stack.config.BODY_LIMIT_BYTES + 10);
    const res = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...ask, messages: [{ role: 'user', content: huge }] }),
    });
    assert.equal(res.status, 413);
    const body = (await res.json()) as { error: { type: string } };
    assert.equal(body.error.type, 'invalid_request_error');
  }));

test('503 with Retry-After when no online node serves the model; /v1/models says so', () =>
  check(async () => {
    await stack.model('test/unserved', 1, 1);
    const res = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...ask, model: 'test/unserved' }),
    });
    assert.equal(res.status, 503);
    assert.ok(Number(res.headers.get('retry-after')) >= 1);
    const models = await alice.client.models.list();
    const byId = new Map(models.data.map((m) => [m.id, (m as unknown as { resultity: { available: boolean } }).resultity.available]));
    assert.equal(byId.get(TEST_MODEL), true);
    assert.equal(byId.get('test/unserved'), false);
  }));

test('Idempotency-Key: a retried request returns the first job and is charged once, even when the retries race', () =>
  check(async () => {
    const before = await stack.balance(alice.namespaceId);
    const key = `retry-${Date.now()}`;
    const first = await alice.client.chat.completions.create(ask, { headers: { 'Idempotency-Key': key } });
    const again = await alice.client.chat.completions.create(ask, { headers: { 'Idempotency-Key': key } }).withResponse();
    assert.equal(again.data.id, first.id);
    assert.equal(again.response.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(again.data.choices, first.choices);
    const charged = first.usage!.prompt_tokens * 10 + first.usage!.completion_tokens * 20;
    assert.equal(before.available - (await stack.balance(alice.namespaceId)).available, charged);

    // Five racing submissions with one new key: one job.
    const raceKey = `race-${Date.now()}`;
    const ids = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const res = await fetch(`${stack.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${alice.apiKey}`, 'content-type': 'application/json', prefer: 'respond-async', 'idempotency-key': raceKey },
          body: JSON.stringify(ask),
        });
        assert.equal(res.status, 202);
        return ((await res.json()) as { id: string }).id;
      }),
    );
    assert.equal(new Set(ids).size, 1);
    const jobs = await stack.db.query(`SELECT count(*)::int AS n FROM idempotency_keys WHERE key = $1`, [raceKey]);
    assert.deepEqual(jobs.rows, [{ n: 1 }]);
    await stack.until('the raced job to finish', async () => ((await stack.job(ids[0]!))?.status === 'completed' ? true : undefined));

    // The same key with another request is refused; a malformed key too.
    await assert.rejects(
      alice.client.chat.completions.create({ ...ask, max_tokens: 7 }, { headers: { 'Idempotency-Key': key } }),
      (e: unknown) => e instanceof OpenAI.ConflictError,
    );
    await assert.rejects(alice.client.chat.completions.create(ask, { headers: { 'Idempotency-Key': 'has space' } }), (e: unknown) => e instanceof OpenAI.BadRequestError);
    // Keys are per namespace: bob's identical key is his own.
    const bobs = await bob.client.chat.completions.create(ask, { headers: { 'Idempotency-Key': key } });
    assert.notEqual(bobs.id, first.id);
  }));

test('a model with a minimum charge: the request costs at least that, and says so', () =>
  check(async () => {
    const res = await fetch(`${stack.url}/admin/models/test%2Fminimum`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${stack.config.ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ input_price: 1, output_price: 1, min_charge: 0.01 }),
    });
    assert.equal(res.status, 200);
    await stack.node({ models: ['test/minimum'] });
    const before = await stack.balance(alice.namespaceId);
    const r = await alice.client.chat.completions.create({ ...ask, model: 'test/minimum' });
    const extra = (r as unknown as { resultity: { credits_charged: string } }).resultity;
    assert.equal(extra.credits_charged, '0.010000');
    assert.equal(before.available - (await stack.balance(alice.namespaceId)).available, 10_000);
  }));

test('a request can ask for a shorter deadline (X-Resultity-Deadline-Ms); past it the job expires, 504, nothing charged', () =>
  check(async () => {
    await stack.model('test/slow', 10, 20);
    await stack.node({ models: ['test/slow'], latencyMs: 4_000 });
    const before = await stack.balance(alice.namespaceId);
    const started = Date.now();
    await assert.rejects(
      alice.client.chat.completions.create({ ...ask, model: 'test/slow' }, { headers: { 'X-Resultity-Deadline-Ms': '1500' } }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.APIError);
        assert.equal(e.status, 504);
        assert.equal(e.code, 'deadline_exceeded');
        return true;
      },
    );
    assert.ok(Date.now() - started < 3_900, 'answered at the deadline, not when the node would have finished');
    assert.deepEqual(await stack.balance(alice.namespaceId), before);
    for (const bad of ['999', 'soon', String(stack.config.JOB_DEADLINE_MS + 1)]) {
      await assert.rejects(alice.client.chat.completions.create(ask, { headers: { 'X-Resultity-Deadline-Ms': bad } }), (e: unknown) => e instanceof OpenAI.BadRequestError);
    }
  }));
