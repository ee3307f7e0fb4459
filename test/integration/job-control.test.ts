// Job control and self-service (issue 12, part 4): POST /v1/jobs/{id}/cancel on a queued, a running and
// a finished job, with the ledger's view of each; GET /v1/key and GET /v1/credits as the key holder sees
// them. Real engines, a simulated node slow enough that jobs wait and run while the test acts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestStack, TEST_MODEL } from '../helpers/stack.js';
import type { NodeAgent } from '../../src/node-agent/agent.js';

let stack: TestStack;
let node: NodeAgent;
const check = (fn: () => Promise<void>) => stack.check(fn);

before(async () => {
  stack = await TestStack.start();
  await stack.model();
  // One slot, 2.5 s per job: a second job waits in the queue while the first runs.
  node = await stack.node({ latencyMs: 2_500, capacity: 1 });
});

after(async () => {
  await stack.close();
});

const ask = { model: TEST_MODEL, messages: [{ role: 'user' as const, content: 'take your time' }], max_tokens: 16 };

async function submitAsync(apiKey: string): Promise<string> {
  const r = await fetch(`${stack.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', prefer: 'respond-async' },
    body: JSON.stringify(ask),
  });
  assert.equal(r.status, 202);
  return ((await r.json()) as { id: string }).id;
}

interface JobView {
  id: string;
  status: string;
  credits_held: string;
  credits_charged: string | null;
  error: { code: string } | null;
}

async function cancel(apiKey: string, id: string): Promise<{ status: number; body: JobView & { error: { code: string } | null } }> {
  const r = await fetch(`${stack.url}/v1/jobs/${id}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}` } });
  return { status: r.status, body: (await r.json()) as JobView };
}

test('a queued job cancelled releases its whole hold; a running one ends at once, charged nothing unstreamed; a finished one is unchanged', () =>
  check(async () => {
    const t = await stack.tenant(10);
    const running = await submitAsync(t.apiKey);
    await stack.until('the first job running', async () => ((await stack.job(running))?.status === 'running' ? true : undefined));
    const queued = await submitAsync(t.apiKey);
    assert.equal((await stack.job(queued))?.status, 'queued');
    const heldBoth = (await stack.balance(t.namespaceId)).held;

    const q = await cancel(t.apiKey, queued);
    assert.equal(q.status, 200);
    assert.equal(q.body.status, 'cancelled');
    assert.equal(q.body.error?.code, 'cancelled');
    assert.equal(Number(q.body.credits_charged), 0);
    assert.equal(Number(q.body.credits_held), 0);
    const afterQueued = await stack.balance(t.namespaceId);
    assert.ok(afterQueued.held > 0 && afterQueued.held < heldBoth, 'only the running job is still held');

    const r = await cancel(t.apiKey, running);
    assert.equal(r.body.status, 'cancelled');
    assert.equal(Number(r.body.credits_charged), 0, 'nothing reached the client of an unstreamed job');
    // The gateway told the node to stop: its runtime's slot is free well before the job's 2.5 s were up.
    await stack.until('the node to stop the cancelled job', async () => (node.running() === 0 ? true : undefined), 1_500);
    const end = await stack.balance(t.namespaceId);
    assert.equal(end.held, 0);
    assert.equal(end.available, 10_000_000, 'every credit back');

    // Cancelling again changes nothing; neither does the node's job_error for the aborted attempt.
    assert.equal((await cancel(t.apiKey, queued)).body.status, 'cancelled');
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal((await stack.job(running))?.status, 'cancelled');
    assert.equal((await stack.balance(t.namespaceId)).available, 10_000_000);
    await stack.assertLedgerBalanced();

    // A completed job stays completed and charged.
    const done = await t.client.chat.completions.create({ ...ask, messages: [{ role: 'user' as const, content: 'finish' }] });
    const c = await cancel(t.apiKey, done.id);
    assert.equal(c.status, 200);
    assert.equal(c.body.status, 'completed');
    assert.ok(Number(c.body.credits_charged) > 0);
  }));

test('a streamed job cancelled mid-stream is charged for the text its client received, not more', () =>
  check(async () => {
    const t = await stack.tenant(10);
    const stream = await t.client.chat.completions.create({ ...ask, max_tokens: 64, stream: true });
    const it = stream[Symbol.asyncIterator]();
    let id = '';
    for (let got = 0; got < 2; ) {
      const n = await it.next();
      assert.ok(!n.done, 'the stream ended before two chunks arrived');
      id = n.value.id;
      if (n.value.choices[0]?.delta.content) got++;
    }
    const r = await cancel(t.apiKey, id);
    assert.equal(r.body.status, 'cancelled');
    const charged = Number(r.body.credits_charged);
    assert.ok(charged > 0, `the delivered text is paid for (charged ${r.body.credits_charged})`);
    const b = await stack.balance(t.namespaceId);
    assert.equal(b.held, 0);
    assert.equal(b.available, 10_000_000 - Math.round(charged * 1e6));
    // The stream ends (the node was told to stop); what it read stays what it was charged for.
    stream.controller.abort();
    await stack.until('the node to stop the cancelled stream', async () => (node.running() === 0 ? true : undefined), 1_500);
    await stack.assertLedgerBalanced();
  }));

test("another namespace's job, or no job, is a 404 in OpenAI's error shape", () =>
  check(async () => {
    const a = await stack.tenant(5);
    const b = await stack.tenant(5);
    const id = await submitAsync(a.apiKey);
    for (const target of [id, 'not-a-job']) {
      const r = await fetch(`${stack.url}/v1/jobs/${target}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${b.apiKey}` } });
      assert.equal(r.status, 404);
      const body = (await r.json()) as { error: { code: string; type: string } };
      assert.equal(body.error.code, 'job_not_found');
    }
    assert.notEqual((await stack.job(id))?.status, 'cancelled');
    await cancel(a.apiKey, id);
  }));

test('GET /v1/key shows the key its cap, what it committed this month and its limits; GET /v1/credits the namespace credits', () =>
  check(async () => {
    const t = await stack.tenant(7);
    const capped = await stack.backbone.admin.apiKeys.issueApiKey(t.namespaceId, { name: 'capped', monthlyCapCredits: 2, rateLimitRps: 50, rateLimitBurst: 80 });
    const get = async (path: string, key: string) => {
      const r = await fetch(`${stack.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('cache-control'), 'no-store');
      return ((await r.json()) as { data: Record<string, unknown> }).data;
    };
    const before = await get('/v1/key', capped.secret);
    assert.equal(before.label, 'capped');
    assert.equal(before.limit, '2.000000');
    assert.equal(Number(before.usage), 0);
    assert.equal(before.limit_remaining, '2.000000');
    assert.deepEqual(before.rate_limit, { requests_per_second: 50, burst: 80 });
    assert.equal(before.expires_at, null);

    const done = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${capped.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify(ask),
    });
    assert.equal(done.status, 200);
    const charged = Number(done.headers.get('x-resultity-credits-charged'));
    const afterJob = await get('/v1/key', capped.secret);
    assert.equal(Number(afterJob.usage), charged);
    assert.equal(Number(afterJob.limit_remaining), 2 - charged);

    const uncapped = await get('/v1/key', t.apiKey);
    assert.equal(uncapped.limit, null);
    assert.equal(uncapped.limit_remaining, null);

    const credits = await get('/v1/credits', t.apiKey);
    const b = await stack.balance(t.namespaceId);
    assert.equal(Number(credits.available), b.available / 1e6);
    assert.equal(Number(credits.held), 0);
    assert.equal(Number(credits.total_credits), 7 - charged);

    const anon = await fetch(`${stack.url}/v1/key`);
    assert.equal(anon.status, 401);
  }));
