// Fast tier (docs/testing.md): JobLifecycle's rules on in-memory fakes (its job rows, settlement's store,
// the Redis, RabbitMQ and MongoDB classes it takes, and the node flags service behind its cooldown
// feedback). The same service on the real engines: test/integration/failover.test.ts, streaming.test.ts,
// hot-path.test.ts, maintenance.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endings, type JobEnding } from '../../src/domain/job-states.js';
import { ticketOf } from '../../src/domain/job-ticket.js';
import type { JobRequest } from '../../src/domain/protocol.js';
import { NAMESPACE, newJob } from '../fakes/job-tables.js';
import { addNode, COOLDOWN, jobFlow } from '../fakes/job-flow.js';

const REQUEST: JobRequest = { messages: [{ role: 'user', content: 'hi' }], max_tokens: 100 };

/** A flow with a funded namespace, one node, and one accepted job (hold 400). */
async function withJob(o: Parameters<typeof newJob>[0] = {}) {
  const flow = jobFlow();
  flow.tables.fund(NAMESPACE, 1_000);
  addNode(flow, '0xnode');
  const job = newJob(o);
  await flow.settlement.acceptWithHold(job, null);
  return { ...flow, job };
}

/** Starts attempt `attempt` of the job on the node, as the scheduler's reservation does. */
async function start(flow: Awaited<ReturnType<typeof withJob>>, attempt = 1, nodeId = '0xnode') {
  const r = await flow.live.reserveAttempt({ network: 'mainnet', model: 'm', region: null, subcloud: null }, flow.job.id, [], { attempt, ttlMs: 60_000 });
  assert.ok(r && r !== 'fenced' && r.nodeId === nodeId, 'the attempt started');
}

test('publishing declares the model\'s queue once, and leaves the outbox mark to the batch', async () => {
  const flow = await withJob();
  const ticket = ticketOf(flow.tables.job(flow.job.id), REQUEST);
  assert.equal(await flow.lifecycle.publish(ticket), true);
  assert.equal(await flow.lifecycle.publish(ticket), true);
  assert.deepEqual(flow.queue.declared, ['m']);
  assert.equal(flow.queue.published.length, 2);
  assert.deepEqual(flow.marks.confirmedJobs, [flow.job.id, flow.job.id]);
  assert.equal(flow.tables.db.calls.includes('markPublished'), false, 'no statement on the accept path');
});

test('the outbox\'s republish marks the row at once and logs the job queued again', async () => {
  const flow = await withJob();
  assert.equal(await flow.lifecycle.publish(ticketOf(flow.tables.job(flow.job.id), REQUEST), { markNow: true }), true);
  assert.ok(flow.tables.job(flow.job.id).published_at instanceof Date);
  assert.deepEqual(flow.marks.confirmedJobs, []);
  assert.deepEqual(flow.jobLog.map((e) => [e.kind, e.reason]), [['queued', 'republished']]);
});

test('a publish the broker does not confirm is not the job\'s failure: false, nothing marked, the job untouched', async () => {
  const flow = await withJob();
  flow.queue.refusePublishes = 1;
  assert.equal(await flow.lifecycle.publish(ticketOf(flow.tables.job(flow.job.id), REQUEST), { markNow: true }), false);
  assert.equal(flow.tables.job(flow.job.id).published_at, null);
  assert.equal(flow.tables.job(flow.job.id).status, 'queued');
  assert.deepEqual(flow.marks.confirmedJobs, []);
});

test('a failed attempt ends once: slot returned, the job queued again for a retry (not ended), the scheduler told, the hop and the failure recorded', async () => {
  const flow = await withJob();
  await start(flow);
  const startedAt = new Date(Date.now() - 50);
  assert.equal(await flow.lifecycle.failAttempt(flow.job.id, 1, '0xnode', 'timeout', 'no result within 10 ms', startedAt), true);
  const row = flow.tables.job(flow.job.id);
  assert.deepEqual({ status: row.status, attempt: row.attempt, finished: row.finished_at }, { status: 'queued', attempt: 1, finished: null });
  assert.deepEqual(flow.live.running('0xnode'), []);
  assert.deepEqual(flow.live.eventsOf(flow.job.id), ['attempt_failed:1:timeout']);
  assert.deepEqual(flow.payloads.traces.map((t) => [t.attempt, t.nodeId, t.outcome]), [[1, '0xnode', 'timeout']]);
  assert.deepEqual(flow.jobLog.map((e) => [e.kind, e.attempt, e.outcome]), [['attempt_failed', 1, 'timeout']]);
  assert.ok((flow.jobLog[0]!.stageMs?.node ?? 0) >= 50);
  assert.deepEqual(flow.nodeStats.lines, ['failed 0xnode timeout']);
  assert.equal(flow.flags.mirror.streaks.get('0xnode')?.count, 1, 'counted toward the node\'s cooldown');
  assert.deepEqual(flow.tables.postingsOf(flow.job.id), ['hold'], 'a retry keeps the hold');

  assert.equal(await flow.lifecycle.failAttempt(flow.job.id, 1, '0xnode', 'failed', 'again'), false, 'ended already');
  assert.equal(flow.live.published.length, 1);
  assert.equal(flow.flags.mirror.streaks.get('0xnode')?.count, 1);
});

test('a dropped connection fails the attempt without counting against the node', async () => {
  const flow = await withJob();
  await start(flow);
  assert.equal(await flow.lifecycle.failAttempt(flow.job.id, 1, '0xnode', 'disconnected', 'node socket closed'), true);
  assert.equal(flow.flags.mirror.streaks.has('0xnode'), false);
  assert.deepEqual(flow.nodeStats.lines, ['failed 0xnode disconnected']);
});

test('cooldown feedback: the rule\'s number of failed attempts in a row puts the node in cooldown, which reservations see', async () => {
  const flow = await withJob({ maxAttempts: 5 });
  for (let attempt = 1; attempt <= COOLDOWN.failures; attempt++) {
    await start(flow, attempt);
    assert.equal(await flow.lifecycle.failAttempt(flow.job.id, attempt, '0xnode', attempt % 2 ? 'failed' : 'invalid_result', 'bad'), true);
  }
  const cooldown = flow.flags.mirror.flags.get('0xnode')?.cooldownUntil ?? 0;
  assert.ok(cooldown > Date.now() + (COOLDOWN.seconds - 5) * 1000, 'in cooldown for the rule\'s time');
  assert.match(flow.flags.store.db.state.flags.get('0xnode')!.reason, /3 failed attempts in a row \(last: failed\)/);
});

test('an attempt that may no longer end (a newer one ran, the job finished) changes nothing', async () => {
  const flow = await withJob();
  await start(flow);
  assert.equal(await flow.lifecycle.failAttempt(flow.job.id, 1, '0xnode', 'timeout', 'x'), true);
  assert.equal(await flow.lifecycle.failAttempt(flow.job.id, 1, '0xnode', 'timeout', 'replayed'), false);
  await flow.lifecycle.end(flow.job.id, endings.attemptsExhausted(3));
  const events = flow.live.published.length;
  assert.equal(await flow.lifecycle.failAttempt(flow.job.id, 2, '0xnode', 'timeout', 'after the end'), false);
  assert.equal(flow.live.published.length, events);
  assert.equal(flow.tables.state.attempts.length, 1);
});

test('a routing hop MongoDB refuses is not waited for and does not fail the attempt\'s end', async () => {
  const flow = await withJob();
  await start(flow);
  flow.payloads.failNext('appendTrace');
  assert.equal(await flow.lifecycle.failAttempt(flow.job.id, 1, '0xnode', 'failed', 'x'), true);
  assert.deepEqual(flow.live.eventsOf(flow.job.id), ['attempt_failed:1:failed']);
});

const ENDINGS: Array<[string, JobEnding]> = [
  ['attempts exhausted', endings.attemptsExhausted(3)],
  ['no node available', endings.noNodeAvailable('m on mainnet', 1_000)],
  ['input gone', endings.payloadMissing()],
  ['deadline passed', endings.deadlineExceeded()],
  ['stream interrupted', endings.streamInterrupted()],
  ['cancelled', endings.cancelled()],
];

for (const [name, ending] of ENDINGS) {
  test(`every ending releases the hold in full when nothing was delivered: ${name}`, async () => {
    const flow = await withJob();
    await start(flow);
    const row = await flow.lifecycle.end(flow.job.id, ending);
    assert.equal(row?.status, ending.status);
    assert.deepEqual(flow.tables.postingsOf(flow.job.id), ['hold', 'release']);
    assert.equal(flow.tables.balance('ns_held', NAMESPACE), 0);
    assert.equal(flow.tables.balance('ns_available', NAMESPACE), 1_000);
    assert.equal(flow.tables.ledgerSum(), 0);
    assert.deepEqual(flow.live.running('0xnode'), [], 'the running attempt\'s slot returned');
    assert.deepEqual(flow.live.eventsOf(flow.job.id), [`finished:${ending.status}`]);
    assert.deepEqual(flow.marks.finishedJobs, [flow.job.id], 'out of the outbox');
    assert.deepEqual(flow.jobLog.map((e) => [e.kind, e.outcome]), [[ending.status, ending.code]]);
    assert.deepEqual(flow.queue.quarantined, ending.status === 'cancelled' ? [] : [{ jobId: flow.job.id, reason: ending.code }]);
    assert.equal(await flow.lifecycle.end(flow.job.id, ending), null, 'an ended job ends once');
    assert.deepEqual(flow.tables.postingsOf(flow.job.id), ['hold', 'release']);
  });
}

/** A streamed job whose attempt 1 sent `text` to its client, the attempt still running. */
async function streamed(text: string) {
  const flow = await withJob();
  await start(flow);
  flow.tables.job(flow.job.id).streamed_attempt = 1;
  flow.live.streamed.set(`${flow.job.id}#1`, text);
  return flow;
}

test('a streamed job its client\'s deadline cuts short is charged for what reached it, counted by the backbone at its peers\' tokens per byte', async () => {
  const flow = await streamed('x'.repeat(40));
  // Three nodes with enough samples claim 1 token per 4 bytes: 40 bytes are 10 tokens, at 3 each.
  flow.live.samples.set('m', ['a', 'b', 'c'].map((nodeId) => ({ nodeId, tokens: 1_024, bytes: 4_096 })));
  const row = await flow.lifecycle.end(flow.job.id, endings.deadlineExceeded());
  assert.deepEqual({ charged: row?.charged_micro, completion: row?.completion_tokens, node: row?.node_id }, { charged: 30, completion: 10, node: '0xnode' });
  assert.deepEqual(flow.tables.postingsOf(flow.job.id), ['hold', 'release', 'capture']);
  assert.equal(flow.tables.balance('operator_earnings', 'operator-1'), 24);
  assert.equal(flow.tables.ledgerSum(), 0);
});

test('what a client received is billed within the model\'s bound and never above the job\'s max_tokens', async () => {
  const flow = await streamed('y'.repeat(500));
  const row = await flow.lifecycle.end(flow.job.id, endings.cancelled());
  assert.equal(row?.completion_tokens, 100);
  assert.equal(row?.charged_micro, 300);
});

test('a failed streamed job is charged nothing: the failure is the node\'s', async () => {
  const flow = await streamed('some text');
  const row = await flow.lifecycle.end(flow.job.id, endings.streamInterrupted());
  assert.equal(row?.charged_micro, 0);
  assert.deepEqual(flow.tables.postingsOf(flow.job.id), ['hold', 'release']);
});

test('nothing is charged when the attempt the client read had already failed, or when Redis lost its stream', async () => {
  const failedFirst = await streamed('some text');
  await failedFirst.lifecycle.failAttempt(failedFirst.job.id, 1, '0xnode', 'failed', 'x');
  assert.equal((await failedFirst.lifecycle.end(failedFirst.job.id, endings.deadlineExceeded()))?.charged_micro, 0);

  const lost = await streamed('some text');
  lost.live.streamed.clear();
  assert.equal((await lost.lifecycle.end(lost.job.id, endings.cancelled()))?.charged_micro, 0);
  assert.deepEqual(lost.tables.postingsOf(lost.job.id), ['hold', 'release']);
});
