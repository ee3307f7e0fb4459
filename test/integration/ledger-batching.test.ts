// Group commit of holds and settlements (src/jobs/settlement-batch.ts) on the real PostgreSQL: operations
// gathered into one transaction each get the outcome they would get alone. Holds on one namespace are
// checked in order against the running balance and a hold that does not fit is refused on its own; monthly
// key caps hold inside a batch; a job settles once however many results for it a batch carries; an item
// that fails does not take the others down with it. The ledger balances after each test.
//
// The service under test lingers 150 ms before each batch, so that operations submitted together land in
// one batch; that they did is checked, not assumed: rows written by one transaction share its now().
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { newJobId } from '../../src/domain/job-ids.js';
import { rcpClockFrom } from '../../src/domain/rcp.js';
import { AppError } from '../../src/errors.js';
import { withTransaction } from '../../src/postgres/db.js';
import { startAttempt, type NewJob } from '../../src/postgres/jobs.repository.js';
import { monthlySpend } from '../../src/postgres/key-spend.repository.js';
import { balanceOf } from '../../src/postgres/ledger.repository.js';
import { IdempotencyKeyInUse, SettlementService } from '../../src/jobs/settlement.service.js';
import { settlementStore } from '../../src/postgres/settlement.store.js';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';

let stack: TestStack;
let batched: SettlementService;

before(async () => {
  stack = await TestStack.start({ roles: ['gate'] });
  await stack.model();
  batched = new SettlementService(settlementStore(stack.db), stack.config.OPERATOR_SHARE_BPS, rcpClockFrom(stack.config), { maxItems: 64, maxInFlight: 1, lingerMs: 150 });
});

after(async () => {
  await batched.drained();
  await stack.close();
});

const check = (fn: () => Promise<void>) => stack.check(fn);

/** Every job newJob made, by id (complete() settles under its terms). */
const jobsById = new Map<string, NewJob>();

function newJob(t: Tenant, holdMicro: number, model = TEST_MODEL): NewJob {
  const job: NewJob = {
    id: randomUUID(),
    namespaceId: t.namespaceId,
    apiKeyId: t.keyId,
    model,
    maxAttempts: 1,
    maxTokens: 16,
    promptTokensBound: 100,
    holdMicro,
    inputPriceMicro: 10,
    outputPriceMicro: 20,
    minChargeMicro: 0,
    deadlineAt: new Date(Date.now() + 60_000),
  };
  jobsById.set(job.id, job);
  return job;
}

/** Settles a node's result for one of newJob's jobs; the job's id and charge when it completed it, else null. */
async function complete(s: SettlementService, jobId: string, attempt: number, nodeId: string, usage: { prompt_tokens: number; completion_tokens: number }) {
  const j = jobsById.get(jobId)!;
  const terms = { holdMicro: j.holdMicro, inputPriceMicro: j.inputPriceMicro, outputPriceMicro: j.outputPriceMicro, minChargeMicro: j.minChargeMicro, surchargeBps: j.surchargeBps ?? 0 };
  const r = await s.complete({ jobId, attempt, nodeId, usage, outputEmpty: false, terms });
  return r.outcome === 'completed' ? { id: jobId, charged_micro: r.chargedMicro } : null;
}

/** Each outcome as 'ok' or the error's code (AppError) or name. */
function outcomesOf(results: ReadonlyArray<PromiseSettledResult<unknown>>): string[] {
  return results.map((r) => {
    if (r.status === 'fulfilled') return 'ok';
    const e: unknown = r.reason;
    if (e instanceof AppError) return e.code;
    return e instanceof Error ? `${e.name}${(e as { code?: string }).code ? ` ${(e as { code?: string }).code}` : ''}` : String(e);
  });
}

/** The message of a refusal ('' when it was not one). */
function messageOf(r: PromiseSettledResult<unknown> | undefined): string {
  return r?.status === 'rejected' && r.reason instanceof Error ? r.reason.message : '';
}

/** How many distinct transactions (by their now()) wrote these jobs' `column`. */
async function transactionsThatWrote(ids: string[], column: 'created_at' | 'finished_at'): Promise<number> {
  const r = await stack.db.query<{ n: number }>(`SELECT count(DISTINCT ${column})::int AS n FROM jobs WHERE id = ANY($1::uuid[])`, [ids]);
  return r.rows[0]!.n;
}

async function jobCount(namespaceId: string): Promise<number> {
  return (await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE namespace_id = $1`, [namespaceId])).rows[0]!.n;
}

/** A node with an operator, and the job started on it as the scheduler would; returns the node id. */
async function nodeId(): Promise<string> {
  const id = `0x${randomBytes(20).toString('hex')}`;
  await stack.db.query(`INSERT INTO nodes (id, operator_account_id) VALUES ($1, $2)`, [id, await stack.operator()]);
  return id;
}

async function start(jobId: string, node: string): Promise<number> {
  const attempt = await withTransaction(stack.db, (tx) => startAttempt(tx, jobId, node, 0));
  assert.ok(attempt !== null);
  return attempt;
}

test('holds on one namespace in one batch are checked in order against the running balance; one that does not fit is refused alone', () =>
  check(async () => {
    const t = await stack.tenant(0.001); // 1000 micro-credits
    const other = await stack.tenant(0.001);
    // Running balance of t: 300 fits (700 left), 800 does not, 300 fits (400), 300 fits (100), 200 does not.
    // other's 900 fits on its own namespace, whatever t's holds do.
    const jobs = [newJob(t, 300), newJob(t, 800), newJob(other, 900), newJob(t, 300), newJob(t, 300), newJob(t, 200)];
    const results = await Promise.allSettled(jobs.map((j) => batched.acceptWithHold(j, null)));
    assert.deepEqual(outcomesOf(results), ['ok', 'insufficient_credits', 'ok', 'ok', 'ok', 'insufficient_credits']);
    // The refusal states what was left at that point of the batch.
    assert.match(messageOf(results[1]), /has 0\.000700 available/);
    assert.match(messageOf(results[5]), /has 0\.000100 available/);

    const accepted = jobs.filter((_, i) => results[i]!.status === 'fulfilled').map((j) => j.id);
    assert.equal(await transactionsThatWrote(accepted, 'created_at'), 1, 'the accepted holds were committed by one transaction');
    assert.deepEqual(await stack.balance(t.namespaceId), { available: 100, held: 900 });
    assert.deepEqual(await stack.balance(other.namespaceId), { available: 100, held: 900 });
    assert.equal(await jobCount(t.namespaceId), 3, 'a refused hold leaves no job row');
  }));

test("a key's monthly cap holds inside a batch, beside the balance check (which comes first, as alone)", () =>
  check(async () => {
    const t = await stack.tenant(1);
    const poor = await stack.tenant(0.0005); // 500 micro-credits
    await stack.db.query(`UPDATE api_keys SET monthly_cap_micro = 1000 WHERE id = ANY($1::uuid[])`, [[t.keyId, poor.keyId]]);
    const cap = 1000;
    // t: 400 fits (400 spent), 700 would pass the cap, 400 fits (800), 300 would pass it, 200 fits (1000).
    // poor: 600 is refused for credits first (it would pass no cap).
    const jobs = [newJob(t, 400), newJob(t, 700), newJob(t, 400), newJob(poor, 600), newJob(t, 300), newJob(t, 200)];
    const results = await Promise.allSettled(jobs.map((j) => batched.acceptWithHold(j, cap)));
    assert.deepEqual(outcomesOf(results), ['ok', 'monthly_cap_reached', 'ok', 'insufficient_credits', 'monthly_cap_reached', 'ok']);
    assert.match(messageOf(results[4]), /0\.000200 left this month/);
    assert.equal(await monthlySpend(stack.db, t.keyId, new Date()), 1000);
    assert.equal(await monthlySpend(stack.db, poor.keyId, new Date()), 0);
    assert.deepEqual(await stack.balance(t.namespaceId), { available: 1_000_000 - 1000, held: 1000 });

    // A key with no spend row yet: a first hold above the cap is refused, one at the cap fits.
    const fresh = await stack.tenant(1);
    const r2 = await Promise.allSettled([batched.acceptWithHold(newJob(fresh, 1500), cap), batched.acceptWithHold(newJob(fresh, 1000), cap)]);
    assert.deepEqual(outcomesOf(r2), ['monthly_cap_reached', 'ok']);
    assert.equal(await monthlySpend(stack.db, fresh.keyId, new Date()), 1000);
  }));

test('duplicate results for one job in one batch settle it once; the others in the batch settle normally', () =>
  check(async () => {
    const t = await stack.tenant(1);
    const node = await nodeId();
    const jobs = [newJob(t, 1320), newJob(t, 1320), newJob(t, 1320)];
    for (const j of await Promise.all(jobs.map((j) => batched.acceptWithHold(j, null)))) assert.equal(j.status, 'queued');
    const attempts = await Promise.all(jobs.map((j) => start(j.id, node)));
    const usage = { prompt_tokens: 50, completion_tokens: 16 }; // 50 * 10 + 16 * 20 = 820
    const [a, b, c] = jobs.map((j) => j.id) as [string, string, string];
    const results = await Promise.all([
      complete(batched, a, attempts[0]!, node, usage),
      complete(batched, a, attempts[0]!, node, usage), // the same result again
      complete(batched, b, attempts[1]! + 1, node, usage), // an attempt that is not current
      complete(batched, c, attempts[2]!, node, usage),
      complete(batched, b, attempts[1]!, node, usage),
      complete(batched, a, attempts[0]!, node, { prompt_tokens: 1, completion_tokens: 1 }), // a replay with other usage
    ]);
    assert.deepEqual(
      results.map((r) => r?.id ?? null),
      [a, null, null, c, b, null],
    );
    assert.equal(await transactionsThatWrote([a, b, c], 'finished_at'), 1, 'the three were settled by one transaction');

    const txns = await stack.db.query<{ kind: string; n: number; jobs: number }>(
      `SELECT kind, count(*)::int AS n, count(DISTINCT job_id)::int AS jobs FROM ledger_transactions WHERE job_id = ANY($1::uuid[]) GROUP BY kind ORDER BY kind`,
      [[a, b, c]],
    );
    assert.deepEqual(txns.rows, [
      { kind: 'capture', n: 3, jobs: 3 },
      { kind: 'hold', n: 3, jobs: 3 },
      { kind: 'release', n: 3, jobs: 3 },
    ]);
    const charged = await stack.db.query<{ charged_micro: number }>(`SELECT charged_micro FROM jobs WHERE id = ANY($1::uuid[])`, [[a, b, c]]);
    assert.deepEqual(
      charged.rows.map((r) => r.charged_micro),
      [820, 820, 820],
    );
    assert.deepEqual(await stack.balance(t.namespaceId), { available: 1_000_000 - 3 * 820, held: 0 });
    // The operator's share of each capture (OPERATOR_SHARE_BPS), the rest to the platform.
    const share = Math.floor((820 * stack.config.OPERATOR_SHARE_BPS) / 10_000);
    const earned = await stack.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.txn_id JOIN ledger_accounts a ON a.id = e.account_id
        WHERE t.job_id = ANY($1::uuid[]) AND t.kind = 'capture' AND a.kind = 'operator_earnings' AND e.amount = $2`,
      [[a, b, c], share],
    );
    assert.equal(earned.rows[0]!.n, 3);
    const points = await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM rcp_records WHERE job_id = ANY($1::uuid[])`, [[a, b, c]]);
    assert.equal(points.rows[0]!.n, 3);
  }));

test('an item that fails inside a batch fails alone: the others are written, nothing of it is', () =>
  check(async () => {
    const t = await stack.tenant(1);
    // A job for a model that does not exist breaks the batch's job insert (foreign key); a hold whose
    // idempotency key is already taken must roll back its own job row. Each batch is run again item by
    // item, and only those two fail.
    const taken = { key: `k-${randomUUID()}`, requestHash: randomBytes(32), windowHours: 24 };
    await batched.acceptWithHold(newJob(t, 100), null, taken);
    const jobs = [newJob(t, 100), newJob(t, 100, 'no/such-model'), newJob(t, 100), newJob(t, 100), newJob(t, 100)];
    const results = await Promise.allSettled([
      batched.acceptWithHold(jobs[0]!, null),
      batched.acceptWithHold(jobs[1]!, null),
      batched.acceptWithHold(jobs[2]!, null, { ...taken, requestHash: randomBytes(32) }),
      batched.acceptWithHold(jobs[3]!, null),
      batched.acceptWithHold(jobs[4]!, null, { key: `k-${randomUUID()}`, requestHash: randomBytes(32), windowHours: 24 }),
    ]);
    assert.deepEqual(outcomesOf(results), ['ok', 'error 23503', 'IdempotencyKeyInUse', 'ok', 'ok']);
    assert.ok((results[2] as PromiseRejectedResult).reason instanceof IdempotencyKeyInUse);
    const written = await stack.db.query<{ id: string }>(`SELECT id FROM jobs WHERE id = ANY($1::uuid[])`, [jobs.map((j) => j.id)]);
    assert.deepEqual(new Set(written.rows.map((r) => r.id)), new Set([jobs[0]!.id, jobs[3]!.id, jobs[4]!.id]));
    assert.deepEqual(await stack.balance(t.namespaceId), { available: 1_000_000 - 4 * 100, held: 4 * 100 });

    // A completion batch with one result from a node that is not the job's: it gets null, the others settle.
    const node = await nodeId();
    const stranger = await nodeId();
    const [x, y] = [jobs[0]!.id, jobs[3]!.id];
    const ax = await start(x, node);
    const ay = await start(y, node);
    const usage = { prompt_tokens: 1, completion_tokens: 1 }; // 30
    const done = await Promise.all([complete(batched, x, ax, stranger, usage), complete(batched, y, ay, node, usage), complete(batched, x, ax, node, usage)]);
    assert.deepEqual(
      done.map((r) => r?.id ?? null),
      [null, y, x],
    );
    assert.deepEqual(await stack.balance(t.namespaceId), { available: 1_000_000 - 2 * 100 - 2 * 30, held: 2 * 100 });
  }));

test('many concurrent holds on one namespace through natural batching: exactly as many fit as the credits cover', () =>
  check(async () => {
    const natural = new SettlementService(settlementStore(stack.db), stack.config.OPERATOR_SHARE_BPS, rcpClockFrom(stack.config), { maxItems: 16, maxInFlight: 2, lingerMs: 0 });
    const t = await stack.tenant(0.01); // 10,000 micro-credits: 33 holds of 300
    const results = await Promise.allSettled(Array.from({ length: 120 }, () => natural.acceptWithHold(newJob(t, 300), null)));
    const outcomes = outcomesOf(results);
    assert.deepEqual([...new Set(outcomes)].sort(), ['insufficient_credits', 'ok']);
    assert.equal(outcomes.filter((o) => o === 'ok').length, 33);
    assert.deepEqual(await stack.balance(t.namespaceId), { available: 100, held: 9900 });
    assert.equal(await balanceOf(stack.db, 'ns_available', t.namespaceId), 100);
    await natural.drained();
  }));

test("a job's hold and its settlement count in the same month: the month of the job's creation time, which its id carries", () =>
  check(async () => {
    const t = await stack.tenant(1);
    const now = new Date();
    const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
    // An id minted in the last millisecond of last month, whose accept transaction runs this month (as
    // one minted at 23:59:59.999 on the 31st and committed just after midnight would).
    const id = newJobId(monthStart - 1);
    await stack.db.query(`SELECT create_job_partitions($1::date)`, [new Date(monthStart - 1).toISOString().slice(0, 10)]);
    const job = { ...newJob(t, 1320), id };
    jobsById.set(id, job);
    await batched.acceptWithHold(job, 5_000);
    const lastMonth = new Date(monthStart - 1);
    assert.equal(await monthlySpend(stack.db, t.keyId, lastMonth), 1320, 'the hold counts in the month of the job');
    assert.equal(await monthlySpend(stack.db, t.keyId, now), 0);
    const node = await nodeId();
    const attempt = await start(id, node);
    const done = await complete(batched, id, attempt, node, { prompt_tokens: 10, completion_tokens: 5 });
    assert.equal(done?.charged_micro, 10 * 10 + 5 * 20);
    assert.equal(await monthlySpend(stack.db, t.keyId, lastMonth), 200, 'the settlement replaced the hold by the charge in that same month');
    assert.equal(await monthlySpend(stack.db, t.keyId, now), 0);
  }));
