// Invariant 2 under concurrency, on the real engines: concurrent submissions on one namespace are all
// accepted when the credits suffice (no deadlock, no 500); 200 concurrent chat completions through the
// official openai client on credits for exactly 50 worst-case holds either complete or get 402, the
// available balance never goes below zero while they run, every completed job is captured once and the
// namespace pays exactly the sum of the charges; and a settlement racing a new hold on the same
// namespace's accounts (made deterministic with a lock taken by hand) cannot deadlock.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import pg from 'pg';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';
import { promptTokenUpperBound, worstCaseCost } from '../../src/domain/pricing.js';

const REQUESTS = 200;
const HOLDS_COVERED = 50;
const INPUT_PRICE = 10;
const OUTPUT_PRICE = 20;
/** Per request: a healthy run answers all of them in a few seconds. */
const REQUEST_TIMEOUT_MS = 30_000;
const ask = { model: TEST_MODEL, messages: [{ role: 'user' as const, content: 'What is the capital of France?' }], max_tokens: 50 };

let stack: TestStack;

before(async () => {
  stack = await TestStack.start();
  await stack.model(TEST_MODEL, INPUT_PRICE, OUTPUT_PRICE);
  for (let i = 0; i < 4; i++) await stack.node({ capacity: 6, latencyMs: 20 });
});

after(async () => {
  // After a failure, requests may still sit in lock waits on the server; cancel those so that closing the
  // stack (which drains in-flight requests) stays bounded.
  const unstick = stack.failed ? cancelLockWaits() : null;
  await stack.close();
  await unstick?.stop();
});

/** Cancels, every 100 ms until stopped (at most 60 s), the queries of this stack's database that wait on a lock. */
function cancelLockWaits(): { stop: () => Promise<void> } {
  const dbName = new URL(stack.config.DATABASE_URL).pathname.slice(1);
  const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  let stopping = false;
  const loop = (async () => {
    await admin.connect();
    try {
      const end = Date.now() + 60_000;
      while (!stopping && Date.now() < end) {
        await admin.query(`SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'`, [dbName]);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      await admin.end();
    }
  })();
  return {
    stop: async () => {
      stopping = true;
      await loop;
    },
  };
}

const check = (fn: () => Promise<void>) => stack.check(fn);

/** The worst-case hold of `ask`, computed independently of the server: 64 per request + utf8 bytes + 8 per message, plus max_tokens. */
function holdOf(request: typeof ask): number {
  const promptBound = request.messages.reduce((s, m) => s + Buffer.byteLength(m.content, 'utf8') + 8, 64);
  return promptBound * INPUT_PRICE + request.max_tokens * OUTPUT_PRICE;
}

/** Samples the namespace's available balance on its own connection until stopped; returns every value seen. */
function sampleAvailable(namespaceId: string): { stop: () => Promise<number[]> } {
  const client = new pg.Client({ connectionString: stack.config.DATABASE_URL });
  const seen: number[] = [];
  let stopping = false;
  const loop = (async () => {
    await client.connect();
    try {
      // Bounded: stops when asked, and in any case after 60 s.
      const end = Date.now() + 60_000;
      while (!stopping && Date.now() < end) {
        const r = await client.query<{ balance: string }>(`SELECT balance::text AS balance FROM ledger_accounts WHERE kind = 'ns_available' AND owner_id = $1`, [
          namespaceId,
        ]);
        if (r.rows[0]) seen.push(Number(r.rows[0].balance));
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    } finally {
      await client.end();
    }
  })();
  return {
    stop: async () => {
      stopping = true;
      await loop;
      return seen;
    },
  };
}

/** Submits `body` asynchronously (Prefer: respond-async); resolves with the job id, rejects unless 202. */
async function submitAsync(tenant: Tenant, body: object = ask): Promise<string> {
  const res = await fetch(`${stack.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json', prefer: 'respond-async' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const answer = (await res.json()) as { id?: string; error?: { code: string; message: string } };
  if (res.status !== 202 || !answer.id) throw new Error(`${res.status} ${answer.error?.code ?? ''} ${answer.error?.message ?? ''}`);
  return answer.id;
}

test('concurrent submissions on one namespace with credits to spare: every one accepted (no deadlock, no 500)', () =>
  check(async () => {
    const n = 40;
    const tenant = await stack.tenant(10, { rateLimitRps: 10_000, rateLimitBurst: 10_000 });
    const before = await stack.balance(tenant.namespaceId);
    const results = await Promise.allSettled(Array.from({ length: n }, () => submitAsync(tenant)));
    const errors = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
    assert.deepEqual(errors, [], `${errors.length} of ${n} submissions failed: ${[...new Set(errors)].join(' | ')}`);
    const ids = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));

    const done = await stack.until(
      'every job to complete',
      async () => {
        const r = await stack.db.query<{ n: number; charged: string }>(
          `SELECT count(*)::int AS n, coalesce(sum(charged_micro), 0)::text AS charged FROM jobs WHERE id = ANY($1::uuid[]) AND status = 'completed'`,
          [ids],
        );
        return r.rows[0]!.n === n ? Number(r.rows[0]!.charged) : undefined;
      },
      30_000,
    );
    const after = await stack.balance(tenant.namespaceId);
    assert.equal(after.held, 0);
    assert.equal(before.available - after.available, done);
  }));

/** `requests` concurrent completions on one namespace whose credits cover `holdsCovered` worst-case holds. */
async function overspendRace(requests: number, holdsCovered: number): Promise<void> {
  {
    const hold = holdOf(ask);
    // The independent computation agrees with the server's pricing (otherwise the premise of the test is off).
    assert.equal(hold, worstCaseCost({ inputPriceMicro: INPUT_PRICE, outputPriceMicro: OUTPUT_PRICE, minChargeMicro: 0, surchargeBps: 0 }, promptTokenUpperBound(ask.messages), ask.max_tokens));
    const tenant: Tenant = await stack.tenant((holdsCovered * hold) / 1e6, { rateLimitRps: 10_000, rateLimitBurst: 10_000 });
    const initial = await stack.balance(tenant.namespaceId);
    assert.deepEqual(initial, { available: holdsCovered * hold, held: 0 });

    const sampler = sampleAvailable(tenant.namespaceId);
    const results = await Promise.allSettled(Array.from({ length: requests }, () => tenant.client.chat.completions.create(ask, { timeout: REQUEST_TIMEOUT_MS })));
    const samples = await sampler.stop();

    // Every request either completed or was refused for credits: nothing else (no 500, no 503, no timeout).
    const ok = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
    const refused: unknown[] = [];
    const other: string[] = [];
    for (const r of results) {
      if (r.status === 'fulfilled') continue;
      const e: unknown = r.reason;
      if (e instanceof OpenAI.APIError && e.status === 402 && e.code === 'insufficient_credits') refused.push(e);
      else other.push(e instanceof OpenAI.APIError ? `${e.status} ${e.code}: ${e.message}` : String(e));
    }
    assert.deepEqual(other, [], `unexpected outcomes (${other.length}): ${[...new Set(other)].slice(0, 5).join(' | ')}`);
    assert.equal(ok.length + refused.length, requests);
    assert.ok(ok.length >= holdsCovered, `only ${ok.length} succeeded; the credits cover ${holdsCovered} holds`);
    assert.ok(refused.length > 0, 'the credits cannot cover all requests: some must be refused');
    for (const r of ok) assert.match(r.choices[0]?.message.content ?? '', /^simulated answer/);

    // The available balance was never seen below zero while the requests ran.
    assert.ok(samples.length >= 5, `only ${samples.length} balance samples`);
    const lowest = Math.min(...samples);
    assert.ok(lowest >= 0, `available balance went to ${lowest}`);

    // Money: what left the namespace is exactly what was charged for the completed jobs, each captured once.
    const jobs = await stack.db.query<{ status: string; n: number; charged: string | null }>(
      `SELECT status, count(*)::int AS n, sum(charged_micro)::text AS charged FROM jobs WHERE namespace_id = $1 GROUP BY status`,
      [tenant.namespaceId],
    );
    assert.deepEqual(
      jobs.rows.map((r) => r.status),
      ['completed'],
      `job states: ${JSON.stringify(jobs.rows)}`,
    );
    const completed = jobs.rows[0]!;
    assert.equal(completed.n, ok.length);
    const charged = Number(completed.charged);
    const final = await stack.balance(tenant.namespaceId);
    assert.equal(final.held, 0);
    assert.equal(charged, initial.available - final.available);
    assert.equal(
      charged,
      ok.reduce((s, r) => s + (r.usage?.prompt_tokens ?? 0) * INPUT_PRICE + (r.usage?.completion_tokens ?? 0) * OUTPUT_PRICE, 0),
    );

    const txns = await stack.db.query<{ kind: string; n: number; jobs: number }>(
      `SELECT t.kind, count(*)::int AS n, count(DISTINCT t.job_id)::int AS jobs
         FROM ledger_transactions t JOIN jobs j ON j.id = t.job_id
        WHERE j.namespace_id = $1 GROUP BY t.kind ORDER BY t.kind`,
      [tenant.namespaceId],
    );
    assert.deepEqual(txns.rows, [
      { kind: 'capture', n: ok.length, jobs: ok.length },
      { kind: 'hold', n: ok.length, jobs: ok.length },
      { kind: 'release', n: ok.length, jobs: ok.length },
    ]);
  }
}

test(`${REQUESTS} concurrent completions on credits for ${HOLDS_COVERED} holds: 200 or 402 only, never overspent, each job charged once`, () =>
  check(() => overspendRace(REQUESTS, HOLDS_COVERED)),
);

// Issue 3's scale: a thousand at once, the credits covering a fraction of them.
test('1000 concurrent completions on credits for 150 holds: never overspent, each job charged once', () => check(() => overspendRace(1000, 150)));

/** Backends of this stack's database blocked on a lock, with what they run. */
async function lockWaiters(): Promise<Array<{ pid: number; query: string }>> {
  const dbName = new URL(stack.config.DATABASE_URL).pathname.slice(1);
  const r = await stack.db.query<{ pid: number; query: string }>(
    `SELECT pid, query FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock' ORDER BY pid`,
    [dbName],
  );
  return r.rows;
}

// The interleaving behind the rare 500s and lost results of the load test above, made deterministic: a
// settlement (capture, then release) and a new job's hold meet on the same namespace's accounts. The test
// parks the settlement on the namespace's held account (a lock taken by hand), lets a new submission take
// its locks behind it, then lets go. Settlement must lock every account it will touch before its first
// posting; locking them posting by posting (capture: held, then release: available) deadlocks against a
// hold (available, then held), and PostgreSQL kills one of the two after deadlock_timeout.
test('a settlement and a new hold on the same namespace at the same moment: no deadlock, both go through', () =>
  check(async () => {
    const slowModel = 'test/slow';
    await stack.model(slowModel, INPUT_PRICE, OUTPUT_PRICE);
    await stack.node({ models: [slowModel], latencyMs: 1500, capacity: 2 });
    const tenant = await stack.tenant(10);
    const heldAccount = async () =>
      (await stack.db.query<{ id: number }>(`SELECT id FROM ledger_accounts WHERE kind = 'ns_held' AND owner_id = $1`, [tenant.namespaceId])).rows[0]?.id;

    // J1 runs on the slow node; while it runs, a connection of our own locks the namespace's held account.
    const j1 = await submitAsync(tenant, { ...ask, model: slowModel });
    const held = await heldAccount();
    assert.ok(held !== undefined);
    const blocker = new pg.Client({ connectionString: stack.config.DATABASE_URL });
    await blocker.connect();
    let unblocked = false;
    const unblock = async () => {
      if (unblocked) return;
      unblocked = true;
      await blocker.query('ROLLBACK');
      await blocker.end();
    };
    let j2: Promise<{ id: string } | { error: string }> | null = null;
    try {
      await blocker.query('BEGIN');
      await blocker.query(`SELECT 1 FROM ledger_accounts WHERE id = $1 FOR NO KEY UPDATE`, [held]);
      assert.equal((await stack.job(j1))?.status !== 'completed', true, 'J1 finished before the lock was taken: the node is too fast');

      // J1's result arrives: its settlement blocks on the held account.
      await stack.until('the settlement of J1 to wait for the held account', async () => ((await lockWaiters()).length >= 1 ? true : undefined), 10_000);
      // J2's hold queues behind it.
      j2 = submitAsync(tenant).then(
        (id) => ({ id }),
        (err: unknown) => ({ error: String(err) }),
      );
      await stack.until('the hold of J2 to wait too', async () => ((await lockWaiters()).length >= 2 ? true : undefined), 10_000);
    } finally {
      await unblock();
    }

    const second = await j2;
    assert.ok('id' in second, `J2 was refused: ${'error' in second ? second.error : ''}`);
    // J1 completes on its first attempt: its result was settled, not lost (a lost result would only be
    // retried after the attempt timeout, on another attempt).
    const first = await stack.until('J1 to complete', async () => {
      const j = await stack.job(j1);
      return j && j.status !== 'running' && j.status !== 'queued' ? j : undefined;
    });
    assert.equal(first.status, 'completed');
    assert.equal(first.attempt, 1);
    await stack.until('J2 to complete', async () => ((await stack.job(second.id))?.status === 'completed' ? true : undefined));
    assert.equal((await stack.balance(tenant.namespaceId)).held, 0);
  }));
