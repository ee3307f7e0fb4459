// Failover on the real engines: a node that crashes mid-job, every node crashing, and a node that never
// answers. Each test gets its own stack (the job limits differ per test) and checks that the job reaches
// exactly one terminal state on the right node, is charged at most once, and that the ledger balances.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { pino } from 'pino';
import { Redis } from 'ioredis';
import { balanceOf } from '../../src/postgres/ledger.repository.js';
import { TestStack, TEST_MODEL, type StackOptions, type Tenant } from '../helpers/stack.js';
import { generatePrivateKey } from '../../src/domain/signatures.js';
import { startNodeAgent, type NodeAgent } from '../../src/node-agent/agent.js';
import { SimulatedRuntime } from '../../src/node-agent/runtime.simulated.js';
import type { InferenceRuntime } from '../../src/node-agent/runtime.js';
import type { JobOutput, Usage } from '../../src/domain/protocol.js';
import { RedisKeys } from '../../src/redis/client.js';

const ask = { model: TEST_MODEL, messages: [{ role: 'user' as const, content: 'What is the capital of France?' }], max_tokens: 50 };
const TERMINAL = ['completed', 'failed', 'expired', 'cancelled'];

/** Runs `fn` on a fresh stack, checks the ledger, and closes the stack (keeping its data if anything failed). */
async function withStack(opts: StackOptions, fn: (stack: TestStack) => Promise<void>): Promise<void> {
  const stack = await TestStack.start(opts);
  let failed = false;
  try {
    await stack.model();
    await fn(stack);
    await stack.assertLedgerBalanced();
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    await stack.close({ keepData: failed });
  }
}

interface OwnedNode {
  agent: NodeAgent;
  operatorId: string;
}

/** A node bound to an operator account of its own, so that its earnings can be told apart from other nodes'. */
async function ownedNode(stack: TestStack, runtime: InferenceRuntime, capacity = 4): Promise<OwnedNode> {
  const operatorId = (await stack.backbone.admin.accounts.createAccount('operator')).id;
  const agent = await startNodeAgent({
    gatewayUrl: stack.url,
    privateKey: await stack.enrolled(generatePrivateKey(), operatorId),
    operator: operatorId,
    runtime,
    capacity,
    logger: pino({ level: 'silent' }),
    reconnect: false,
  });
  stack.nodes.push(agent); // killed by stack.close()
  return { agent, operatorId };
}

function simulated(latencyMs: number): SimulatedRuntime {
  return new SimulatedRuntime({ models: [TEST_MODEL], latencyMs, completionTokens: 16 });
}

/** A runtime that takes jobs and never answers, not even when aborted (a wedged GPU process). */
class HungRuntime implements InferenceRuntime {
  readonly name = 'hung';
  private readonly waiters: Array<() => void> = [];
  async models(): Promise<string[]> {
    return [TEST_MODEL];
  }
  complete(): Promise<{ output: JobOutput; usage: Usage }> {
    return new Promise((_resolve, reject) => this.waiters.push(() => reject(new Error('released'))));
  }
  /** Lets the hung calls go (at the end of the test), so nothing stays pending. */
  release(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

async function submitAsync(stack: TestStack, tenant: Tenant): Promise<string> {
  const res = await fetch(`${stack.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json', prefer: 'respond-async' },
    body: JSON.stringify(ask),
  });
  assert.equal(res.status, 202);
  return ((await res.json()) as { id: string }).id;
}

/** The single job of a namespace, once its row exists (for synchronous calls running in the background). */
function onlyJobOf(stack: TestStack, namespaceId: string): Promise<string> {
  return stack.until('the job row', async () => {
    const r = await stack.db.query<{ id: string }>(`SELECT id FROM jobs WHERE namespace_id = $1`, [namespaceId]);
    assert.ok(r.rows.length <= 1);
    return r.rows[0]?.id;
  });
}

/** Waits until attempt `attempt` of the job runs on a node that has actually taken it onto its runtime. */
async function landed(stack: TestStack, jobId: string, attempt: number, nodes: OwnedNode[]): Promise<OwnedNode> {
  return stack.until(`attempt ${attempt} to run on a node`, async () => {
    const j = await stack.job(jobId);
    assert.ok(j && !TERMINAL.includes(j.status), `job ended early: ${JSON.stringify(j)}`);
    if (j.status !== 'running' || j.attempt !== attempt || !j.node_id) return undefined;
    const n = nodes.find((x) => x.agent.nodeId === j.node_id);
    assert.ok(n, `job runs on an unknown node ${j.node_id}`);
    return n.agent.running() > 0 ? n : undefined;
  });
}

function terminal(stack: TestStack, jobId: string, timeoutMs = 20_000) {
  return stack.until(
    'the job to reach a terminal state',
    async () => {
      const j = await stack.job(jobId);
      return j && TERMINAL.includes(j.status) ? j : undefined;
    },
    timeoutMs,
  );
}

async function attemptsOf(stack: TestStack, jobId: string) {
  const r = await stack.db.query<{ attempt: number; node_id: string; outcome: string | null }>(
    `SELECT attempt, node_id, outcome FROM job_attempts WHERE job_id = $1 ORDER BY attempt`,
    [jobId],
  );
  return r.rows;
}

/** Ledger transactions of a job, counted by kind. */
async function txnsOf(stack: TestStack, jobId: string): Promise<Record<string, number>> {
  const r = await stack.db.query<{ kind: string; n: number }>(`SELECT kind, count(*)::int AS n FROM ledger_transactions WHERE job_id = $1 GROUP BY kind`, [jobId]);
  return Object.fromEntries(r.rows.map((x) => [x.kind, x.n]));
}

async function accountBalance(stack: TestStack, kind: 'operator_earnings' | 'platform_revenue', ownerId: string | null): Promise<number> {
  return balanceOf(stack.db, kind, ownerId);
}

async function jobRow(stack: TestStack, jobId: string) {
  const r = await stack.db.query<{ prompt_tokens: number; completion_tokens: number; input_price_micro: number; output_price_micro: number; error_code: string | null }>(
    `SELECT prompt_tokens, completion_tokens, input_price_micro, output_price_micro, error_code FROM jobs WHERE id = $1`,
    [jobId],
  );
  const row = r.rows[0];
  assert.ok(row);
  return row;
}

test('a node killed mid-job: the job completes on another node, charged exactly once, the right operator paid', () =>
  withStack({}, async (stack) => {
    const a = await ownedNode(stack, simulated(1500));
    const b = await ownedNode(stack, simulated(1500));
    const tenant = await stack.tenant(10);
    const before = await stack.balance(tenant.namespaceId);
    const platformBefore = await accountBalance(stack, 'platform_revenue', null);

    const jobId = await submitAsync(stack, tenant);
    const victim = await landed(stack, jobId, 1, [a, b]);
    const survivor = victim === a ? b : a;
    victim.agent.kill();

    const done = await terminal(stack, jobId);
    assert.equal(done.status, 'completed');
    assert.equal(done.attempt, 2);
    assert.equal(done.node_id, survivor.agent.nodeId);
    assert.deepEqual(await attemptsOf(stack, jobId), [
      { attempt: 1, node_id: victim.agent.nodeId, outcome: 'disconnected' },
      { attempt: 2, node_id: survivor.agent.nodeId, outcome: 'completed' },
    ]);

    // Charged once, for the actual usage of the attempt that completed.
    const row = await jobRow(stack, jobId);
    const charged = done.charged_micro ?? -1;
    assert.equal(charged, row.prompt_tokens * row.input_price_micro + row.completion_tokens * row.output_price_micro);
    assert.ok(charged > 0 && charged < done.hold_micro);
    assert.deepEqual(await txnsOf(stack, jobId), { hold: 1, capture: 1, release: 1 });
    const after = await stack.balance(tenant.namespaceId);
    assert.equal(before.available - after.available, charged);
    assert.equal(after.held, 0);

    // The serving node's operator and the platform share the charge; the crashed node's operator gets nothing.
    const survivorEarned = await accountBalance(stack, 'operator_earnings', survivor.operatorId);
    const victimEarned = await accountBalance(stack, 'operator_earnings', victim.operatorId);
    const platformEarned = (await accountBalance(stack, 'platform_revenue', null)) - platformBefore;
    assert.equal(victimEarned, 0);
    assert.equal(survivorEarned, Math.floor((charged * stack.config.OPERATOR_SHARE_BPS) / 10_000));
    assert.equal(survivorEarned + platformEarned, charged);

    // The consumer sees one ordinary completion.
    const res = await fetch(`${stack.url}/v1/jobs/${jobId}`, { headers: { authorization: `Bearer ${tenant.apiKey}` } });
    const body = (await res.json()) as { status: string; credits_charged: string; result: { choices: Array<{ message: { content: string } }> } | null };
    assert.equal(body.status, 'completed');
    assert.equal(body.credits_charged, (charged / 1e6).toFixed(6));
    assert.match(body.result?.choices[0]?.message.content ?? '', /^simulated answer/);
    assert.equal(survivor.agent.completed, 1);
  }));

test('every node gone: the job fails (5xx to a synchronous caller), the hold is released in full, nothing is charged', () =>
  withStack({ config: { JOB_MAX_ATTEMPTS: 2 } }, async (stack) => {
    const a = await ownedNode(stack, simulated(20_000));
    const b = await ownedNode(stack, simulated(20_000));
    const tenant = await stack.tenant(10);
    const before = await stack.balance(tenant.namespaceId);
    const platformBefore = await accountBalance(stack, 'platform_revenue', null);

    // A synchronous call in the background; settled into a value so that it never rejects unobserved.
    const call = tenant.client.chat.completions.create(ask).then(
      (r) => ({ ok: r }) as const,
      (err: unknown) => ({ err }) as const,
    );
    const jobId = await onlyJobOf(stack, tenant.namespaceId);
    const first = await landed(stack, jobId, 1, [a, b]);
    first.agent.kill();
    const second = await landed(stack, jobId, 2, [a, b]);
    assert.notEqual(second, first);
    second.agent.kill();

    const outcome = await call;
    assert.ok('err' in outcome, 'the synchronous call must fail');
    const err = outcome.err;
    assert.ok(err instanceof OpenAI.APIError, `not an APIError: ${String(err)}`);
    assert.ok(err.status !== undefined && err.status >= 500 && err.status < 600, `status ${err.status}`);
    assert.ok(['attempts_exhausted', 'no_node_available'].includes(String(err.code)), `code ${err.code}`);
    // The job was real: the official clients must not resubmit it on their own.
    assert.equal((err.headers as Headers | undefined)?.get('x-should-retry'), 'false');

    const done = await terminal(stack, jobId);
    assert.equal(done.status, 'failed');
    assert.equal(done.charged_micro, 0);
    assert.ok(['attempts_exhausted', 'no_node_available'].includes((await jobRow(stack, jobId)).error_code ?? ''));
    assert.deepEqual(await attemptsOf(stack, jobId), [
      { attempt: 1, node_id: first.agent.nodeId, outcome: 'disconnected' },
      { attempt: 2, node_id: second.agent.nodeId, outcome: 'disconnected' },
    ]);
    assert.deepEqual(await txnsOf(stack, jobId), { hold: 1, release: 1 });
    assert.deepEqual(await stack.balance(tenant.namespaceId), before);
    assert.equal(await accountBalance(stack, 'operator_earnings', a.operatorId), 0);
    assert.equal(await accountBalance(stack, 'operator_earnings', b.operatorId), 0);
    assert.equal(await accountBalance(stack, 'platform_revenue', null), platformBefore);
  }));

test('a node that never answers times out and the job moves to another node', () =>
  withStack({ config: { JOB_ATTEMPT_TIMEOUT_MS: 800 } }, async (stack) => {
    // The fast node is paused until the stuck node has taken the job's first attempt: the scheduler draws
    // among idle nodes at random (by free slots x score), so only a flag makes the first choice certain.
    const fast = await ownedNode(stack, simulated(50), 1);
    const tenant = await stack.tenant(10);

    const cases: Array<{ what: string; runtime: InferenceRuntime; outcomes: string[] }> = [
      // Far slower than the attempt timeout: the node gives up at the attempt's deadline (job_error) or the
      // scheduler stops waiting first; either way attempt 1 ends without a result.
      { what: 'slow node', runtime: simulated(60_000), outcomes: ['timeout', 'failed'] },
      // Wedged: never answers even after its deadline, so only the scheduler's timeout can end the attempt.
      { what: 'hung node', runtime: new HungRuntime(), outcomes: ['timeout'] },
    ];
    for (const c of cases) {
      const stuck = await ownedNode(stack, c.runtime, 8);
      const before = await stack.balance(tenant.namespaceId);
      await stack.backbone.admin.nodeFlags.set(fast.agent.nodeId, { paused: true });
      const t0 = Date.now();
      const pending = tenant.client.chat.completions.create(ask);
      // A slot reserved on it is its attempt (the fast node is paused, so nothing else can take the job).
      await stack.until(`${c.what}: the stuck node to take the first attempt`, async () => (Number((await stack.presence(stuck.agent.nodeId)).reserved ?? 0) > 0 ? true : undefined));
      await stack.backbone.admin.nodeFlags.reinstate(fast.agent.nodeId);
      const r = await pending;
      const elapsed = Date.now() - t0;
      assert.match(r.choices[0]?.message.content ?? '', /^simulated answer/, c.what);
      const attempts = await attemptsOf(stack, r.id);
      assert.equal(attempts.length, 2, `${c.what}: ${JSON.stringify(attempts)}`);
      assert.equal(attempts[0]?.node_id, stuck.agent.nodeId, c.what);
      assert.ok(c.outcomes.includes(attempts[0]?.outcome ?? ''), `${c.what}: attempt 1 ended ${attempts[0]?.outcome}`);
      assert.deepEqual(attempts[1], { attempt: 2, node_id: fast.agent.nodeId, outcome: 'completed' }, c.what);
      assert.ok(elapsed >= 700 && elapsed < 10_000, `${c.what}: took ${elapsed} ms`);

      const done = await stack.job(r.id);
      assert.ok(done);
      assert.deepEqual(await txnsOf(stack, r.id), { hold: 1, capture: 1, release: 1 });
      const after = await stack.balance(tenant.namespaceId);
      assert.equal(before.available - after.available, done.charged_micro);
      assert.equal(after.held, 0);
      assert.equal(await accountBalance(stack, 'operator_earnings', stuck.operatorId), 0, c.what);

      stuck.agent.kill();
      if (c.runtime instanceof HungRuntime) c.runtime.release();
      await stack.until('the stuck node to leave rotation', async () => ((await present(stack, stuck.agent.nodeId)) ? undefined : true));
    }
  }));

/** Whether the node's presence is still in Redis (the gateway removes it when the socket closes). */
async function present(stack: TestStack, nodeId: string): Promise<boolean> {
  const redis = new Redis(stack.config.REDIS_URL, { lazyConnect: true });
  try {
    await redis.connect();
    return (await redis.exists(new RedisKeys(stack.config.REDIS_KEY_PREFIX).node(nodeId))) === 1;
  } finally {
    redis.disconnect();
  }
}
