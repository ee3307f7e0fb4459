// Fast tier (docs/testing.md): SettlementService's rules on an in-memory SettlementStore. The same service
// on the real engines: test/integration/ledger.test.ts, ledger-batching.test.ts, hot-path.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SettlementService } from '../../src/jobs/settlement.service.js';
import { IdempotencyKeyInUse } from '../../src/jobs/settlement.service.js';
import { JobPastDeadlineError } from '../../src/postgres/jobs.repository.js';
import { AppError } from '../../src/errors.js';
import { epochOf, POINTS_PER_JOB, type RcpClock } from '../../src/domain/rcp.js';
import type { GroupCommitOptions } from '../../src/common/group-commit.js';
import { API_KEY, JobTables, NAMESPACE, newJob } from '../fakes/job-tables.js';
import { FakeSettlementStore } from '../fakes/settlement.store.js';
import { FakeJobsStore } from '../fakes/jobs.store.js';
import { termsOf } from '../../src/domain/job-ticket.js';

const SHARE_BPS = 8_000;
const RCP: RcpClock = { epochSeconds: 3_600, uptimeSlotSeconds: 60 };
const BATCHED: GroupCommitOptions = { maxItems: 8, maxInFlight: 1, lingerMs: 0 };

function setUp(batching: GroupCommitOptions | null = null) {
  const tables = new JobTables();
  const store = new FakeSettlementStore(tables);
  return { tables, store, jobs: new FakeJobsStore(tables), settlement: new SettlementService(store, SHARE_BPS, RCP, batching) };
}

const code = (c: string) => (e: unknown) => e instanceof AppError && e.code === c;

/** The ledger balances (invariant 3) and no account of the namespace is below zero (invariant 2). */
function assertLedger(tables: JobTables): void {
  assert.equal(tables.ledgerSum(), 0, 'the ledger sums to zero');
  assert.ok(tables.balance('ns_available', NAMESPACE) >= 0, 'available credits never below zero');
  assert.ok(tables.balance('ns_held', NAMESPACE) >= 0, 'held credits never below zero');
}

test('concurrent holds share one statement, each decided in order against the running balance; a refusal is its own item\'s', async () => {
  const { tables, store, settlement } = setUp(BATCHED);
  tables.fund(NAMESPACE, 1_000);
  const jobs = [newJob(), newJob(), newJob(), newJob()];
  const outcomes = await Promise.allSettled(jobs.map((j) => settlement.acceptWithHold(j, null)));
  // The first goes at once, alone (no added latency when idle); the three that came meanwhile go together.
  assert.deepEqual(store.statements.hold, [1, 3]);
  assert.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'fulfilled', 'rejected', 'rejected']);
  for (const o of outcomes.slice(2)) assert.ok(o.status === 'rejected' && code('insufficient_credits')(o.reason));
  assert.equal(tables.balance('ns_available', NAMESPACE), 200);
  assert.equal(tables.balance('ns_held', NAMESPACE), 800);
  assert.deepEqual([...tables.state.jobs.keys()], [jobs[0]!.id, jobs[1]!.id], 'refused jobs have no row');
  assertLedger(tables);
});

test('an accepted job is returned as its row (queued, no attempt) without reading it back', async () => {
  const { tables, settlement } = setUp();
  tables.fund(NAMESPACE, 1_000);
  const job = newJob();
  const row = await settlement.acceptWithHold(job, null);
  assert.deepEqual({ id: row.id, status: row.status, attempt: row.attempt, hold: row.hold_micro }, { id: job.id, status: 'queued', attempt: 0, hold: 400 });
  assert.deepEqual(tables.db.calls, ['holdOne'], 'one statement, no read');
});

test('without batching each hold and completion is a statement of its own', async () => {
  const { tables, store, settlement } = setUp(null);
  tables.fund(NAMESPACE, 1_000);
  const jobs = [newJob(), newJob()];
  await Promise.all(jobs.map((j) => settlement.acceptWithHold(j, null)));
  await Promise.all(jobs.map((j) => settlement.complete({ jobId: j.id, attempt: 1, nodeId: '0xn', usage: { prompt_tokens: 1, completion_tokens: 1 }, outputEmpty: false, terms: termsOf(tables.job(j.id)) })));
  assert.deepEqual(store.statements, { hold: [1, 1], complete: [1, 1] });
  assert.deepEqual(tables.db.calls, ['holdOne', 'holdOne', 'completeOne', 'completeOne']);
});

test('refused holds write nothing: credits, the key\'s monthly cap, an idempotency key in use, a deadline passed', async () => {
  const { tables, settlement } = setUp();
  tables.fund(NAMESPACE, 500);
  await assert.rejects(settlement.acceptWithHold(newJob({ holdMicro: 600 }), null), code('insufficient_credits'));
  await assert.rejects(settlement.acceptWithHold(newJob(), 300), code('monthly_cap_reached'));
  await assert.rejects(settlement.acceptWithHold(newJob({ deadlineAt: new Date(Date.now() - 1) }), null), (e: unknown) => e instanceof JobPastDeadlineError);
  const first = newJob({ holdMicro: 100 });
  await settlement.acceptWithHold(first, null, { key: 'k1', requestHash: Buffer.from('a'), windowHours: 24 });
  await assert.rejects(settlement.acceptWithHold(newJob({ holdMicro: 100 }), null, { key: 'k1', requestHash: Buffer.from('b'), windowHours: 24 }), (e: unknown) => e instanceof IdempotencyKeyInUse && e.key === 'k1');
  assert.deepEqual([...tables.state.jobs.keys()], [first.id]);
  assert.equal(tables.balance('ns_held', NAMESPACE), 100);
  assert.equal(tables.state.keySpend.get(API_KEY), 100);
  assertLedger(tables);
});

test('a batch whose statement fails (the connection broke) fails every item it carried, and writes nothing', async () => {
  const { tables, store, settlement } = setUp({ maxItems: 3, maxInFlight: 1, lingerMs: 1_000 });
  tables.fund(NAMESPACE, 10_000);
  tables.db.failNext('holdBatch', Object.assign(new Error('connection terminated'), {}));
  const outcomes = await Promise.allSettled([newJob(), newJob(), newJob()].map((j) => settlement.acceptWithHold(j, null)));
  assert.deepEqual(store.statements.hold, [], 'the failed statement wrote nothing');
  assert.deepEqual(outcomes.map((o) => o.status === 'rejected' && (o.reason as Error).message), ['connection terminated', 'connection terminated', 'connection terminated']);
  assert.equal(tables.state.jobs.size, 0);
  assert.equal(tables.balance('ns_held', NAMESPACE), 0);
  assertLedger(tables);
});

test('a completion captures the actual cost (the operator\'s share to the node\'s operator), releases the rest, and earns the node its point', async () => {
  const { tables, store, settlement } = setUp();
  tables.fund(NAMESPACE, 1_000);
  tables.addNode('0xnode', 'operator-1');
  const job = newJob();
  await settlement.acceptWithHold(job, null);
  const settled = await settlement.complete({ jobId: job.id, attempt: 1, nodeId: '0xnode', usage: { prompt_tokens: 10, completion_tokens: 20 }, outputEmpty: false, terms: termsOf(tables.job(job.id)) });
  // 10 × 2 + 20 × 3 = 80; the operator gets 80 % of it.
  assert.deepEqual(settled, { outcome: 'completed', chargedMicro: 80 });
  assert.deepEqual(tables.postingsOf(job.id), ['hold', 'release', 'capture']);
  assert.equal(tables.balance('operator_earnings', 'operator-1'), 64);
  assert.equal(tables.balance('platform_revenue', null), 16);
  assert.equal(tables.balance('ns_held', NAMESPACE), 0);
  assert.equal(tables.balance('ns_available', NAMESPACE), 920);
  assert.equal(tables.state.keySpend.get(API_KEY), 80, 'the key\'s spend is the charge, the hold replaced');
  assert.deepEqual(store.completionClock, [{ epoch: epochOf(RCP, Date.now()), pointsPerJob: POINTS_PER_JOB }]);
  assert.deepEqual(tables.state.points.map((p) => p.nodeId), ['0xnode']);
  assertLedger(tables);
});

test('the charge is never more than the hold, and an empty output is not charged', async () => {
  const { tables, settlement } = setUp();
  tables.fund(NAMESPACE, 1_000);
  const [big, empty] = [newJob({ holdMicro: 50 }), newJob()];
  await settlement.acceptWithHold(big, null);
  await settlement.acceptWithHold(empty, null);
  const usage = { prompt_tokens: 50, completion_tokens: 100 };
  assert.equal((await settlement.complete({ jobId: big.id, attempt: 1, nodeId: '0xn', usage, outputEmpty: false, terms: termsOf(tables.job(big.id)) })).chargedMicro, 50);
  assert.deepEqual(await settlement.complete({ jobId: empty.id, attempt: 1, nodeId: '0xn', usage, outputEmpty: true, terms: termsOf(tables.job(empty.id)) }), { outcome: 'completed', chargedMicro: 0 });
  assert.equal(tables.balance('ns_available', NAMESPACE), 950);
  assertLedger(tables);
});

test('a stale, duplicate or out-of-bounds result is charged nothing and changes nothing', async () => {
  const { tables, jobs, settlement } = setUp();
  tables.fund(NAMESPACE, 1_000);
  const job = newJob();
  await settlement.acceptWithHold(job, null);
  const result = (attempt: number, completion: number) =>
    settlement.complete({ jobId: job.id, attempt, nodeId: '0xn', usage: { prompt_tokens: 1, completion_tokens: completion }, outputEmpty: false, terms: termsOf(tables.job(job.id)) });
  await jobs.failAttempt({ jobId: job.id, attempt: 1, nodeId: '0xn', outcome: 'timeout', reason: 'late', startedAt: null });
  assert.deepEqual(await result(1, 5), { outcome: 'stale', chargedMicro: 0 }, 'a result of an attempt that already ended');
  assert.deepEqual(await result(2, 101), { outcome: 'usage_out_of_bounds', chargedMicro: 0 }, 'more completion tokens than the job\'s max_tokens');
  assert.deepEqual(tables.postingsOf(job.id), ['hold']);
  assert.deepEqual(await result(2, 5), { outcome: 'completed', chargedMicro: 17 });
  assert.deepEqual(await result(2, 5), { outcome: 'stale', chargedMicro: 0 }, 'a replay of the settled result');
  assert.deepEqual(tables.postingsOf(job.id), ['hold', 'release', 'capture'], 'settled once');
  assertLedger(tables);
});

test('grouped completions: each gets its own outcome, and a second result of one job in the same batch is stale', async () => {
  const { tables, store, settlement } = setUp(BATCHED);
  tables.fund(NAMESPACE, 2_000);
  const [a, b] = [newJob(), newJob()];
  await Promise.all([a, b].map((j) => settlement.acceptWithHold(j, null)));
  const usage = { prompt_tokens: 1, completion_tokens: 1 };
  const complete = (jobId: string, nodeId: string) => settlement.complete({ jobId, attempt: 1, nodeId, usage, outputEmpty: false, terms: termsOf(tables.job(jobId)) });
  const first = complete(a.id, '0xfirst'); // runs alone, at once
  const rest = await Promise.all([complete(b.id, '0xn'), complete(b.id, '0xother'), complete(a.id, '0xlate')]);
  assert.equal((await first).outcome, 'completed');
  assert.deepEqual(rest.map((r) => r.outcome), ['completed', 'stale', 'stale']);
  assert.deepEqual(store.statements.complete, [1, 3]);
  assert.equal(tables.job(b.id).node_id, '0xn');
  assertLedger(tables);
});

test('a job failed without a result releases its whole hold, is quarantined and its job.failed message written; a second end does nothing', async () => {
  const { tables, settlement } = setUp();
  tables.fund(NAMESPACE, 1_000);
  const job = newJob();
  await settlement.acceptWithHold(job, null);
  const row = await settlement.endWithoutResult(job.id, 'failed', 'attempts_exhausted', 'No node completed the job.');
  assert.deepEqual({ status: row?.status, charged: row?.charged_micro, interrupted: row?.interrupted_node_id }, { status: 'failed', charged: 0, interrupted: null });
  assert.deepEqual(tables.postingsOf(job.id), ['hold', 'release']);
  assert.equal(tables.balance('ns_available', NAMESPACE), 1_000);
  assert.equal(tables.state.keySpend.get(API_KEY), 0);
  assert.deepEqual(tables.state.quarantine, [{ jobId: job.id, reason: 'attempts_exhausted' }]);
  assert.deepEqual(tables.state.webhookJobFailed, [job.id]);
  assert.equal(await settlement.endWithoutResult(job.id, 'expired', 'deadline_exceeded', 'late'), null);
  assert.deepEqual(tables.postingsOf(job.id), ['hold', 'release'], 'released once');
  assertLedger(tables);
});

test('a job its client cut short is charged for the part delivered (the operator paid its share), the rest released; no quarantine, no webhook', async () => {
  const { tables, settlement } = setUp();
  tables.fund(NAMESPACE, 1_000);
  tables.addNode('0xnode', 'operator-1');
  const job = newJob();
  await settlement.acceptWithHold(job, null);
  const row = await settlement.endWithoutResult(job.id, 'cancelled', 'cancelled', 'by its client', { attempt: 2, nodeId: '0xnode', usage: { prompt_tokens: 0, completion_tokens: 30 } });
  assert.deepEqual({ charged: row?.charged_micro, node: row?.node_id, attempt: row?.attempt }, { charged: 90, node: '0xnode', attempt: 2 });
  assert.deepEqual(tables.postingsOf(job.id), ['hold', 'release', 'capture']);
  assert.equal(tables.balance('operator_earnings', 'operator-1'), 72);
  assert.equal(tables.balance('platform_revenue', null), 18);
  assert.equal(tables.balance('ns_available', NAMESPACE), 910);
  assert.equal(tables.state.keySpend.get(API_KEY), 90);
  assert.deepEqual(tables.state.quarantine, []);
  assert.deepEqual(tables.state.webhookJobFailed, []);
  assertLedger(tables);
});

test('a delivered part served by a node without an operator on record goes to the platform whole', async () => {
  const { tables, settlement } = setUp();
  tables.fund(NAMESPACE, 1_000);
  const job = newJob();
  await settlement.acceptWithHold(job, null);
  await settlement.endWithoutResult(job.id, 'expired', 'deadline_exceeded', 'late', { attempt: 1, nodeId: '0xunbound', usage: { prompt_tokens: 0, completion_tokens: 10 } });
  assert.equal(tables.balance('platform_revenue', null), 30);
  assert.deepEqual(tables.state.webhookJobFailed, [job.id], 'an expired job has its job.failed message');
  assertLedger(tables);
});

test('an end whose last step fails is not made: the job is unfinished, no posting, no quarantine', async () => {
  const { tables, settlement } = setUp();
  tables.fund(NAMESPACE, 1_000);
  const job = newJob();
  await settlement.acceptWithHold(job, null);
  tables.db.failNext('enqueueJobEnded');
  await assert.rejects(settlement.endWithoutResult(job.id, 'failed', 'attempts_exhausted', 'x'), /enqueueJobEnded failed/);
  assert.equal(tables.job(job.id).finished_at, null);
  assert.deepEqual(tables.postingsOf(job.id), ['hold']);
  assert.deepEqual(tables.state.quarantine, []);
  assert.equal(tables.state.keySpend.get(API_KEY), 400);
  assertLedger(tables);
});

test('ending a job whose attempt an older version started on its row names that node, whose slot the caller returns', async () => {
  const { tables, settlement } = setUp();
  tables.fund(NAMESPACE, 1_000);
  const job = newJob();
  await settlement.acceptWithHold(job, null);
  Object.assign(tables.job(job.id), { status: 'running', attempt: 1, node_id: '0xold' });
  const row = await settlement.endWithoutResult(job.id, 'expired', 'deadline_exceeded', 'late');
  assert.equal(row?.interrupted_node_id, '0xold');
});
