// Fast tier (docs/testing.md): the Scheduler's rules on the job flow's in-memory fakes: the next step of a
// job (domain/job-states.ts nextStep) carried out, the no-node grace, attempts that time out or fail and
// are retried elsewhere, redelivered messages. Timers are real and short (the config below). The same
// service on the real engines: test/integration/failover.test.ts, hot-path.test.ts, scheduling tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Scheduler } from '../../src/scheduler/scheduler.service.js';
import { addressOf, verifyMessage } from '../../src/domain/signatures.js';
import { ticketOf, type JobTicket } from '../../src/domain/job-ticket.js';
import type { JobRequest } from '../../src/domain/protocol.js';
import type { DispatchEnvelope } from '../../src/redis/job-events.js';
import { NAMESPACE, newJob } from '../fakes/job-tables.js';
import { addNode, jobFlow } from '../fakes/job-flow.js';

const NETWORK_KEY = `0x${randomBytes(32).toString('hex')}`;
const CONFIG = { NO_NODE_GRACE_MS: 300, JOB_ATTEMPT_TIMEOUT_MS: 150, JOB_RETRY_BACKOFF_MS: 1 };
const REQUEST: JobRequest = { messages: [{ role: 'user', content: 'hi' }], max_tokens: 100 };

type Flow = Awaited<ReturnType<typeof setUp>>;

async function setUp(o: Parameters<typeof newJob>[0] = {}) {
  const flow = jobFlow();
  flow.tables.fund(NAMESPACE, 1_000);
  const job = newJob(o);
  await flow.settlement.acceptWithHold(job, null);
  flow.payloads.inputs.set(job.id, REQUEST);
  const scheduler = new Scheduler(
    {
      config: CONFIG,
      store: flow.store,
      lifecycle: flow.lifecycle,
      payloads: flow.payloads,
      presence: flow.live,
      inflight: flow.live,
      events: flow.live,
      queue: flow.queue,
      networkKey: NETWORK_KEY,
      logger: flow.logger,
      jobLog: { record: (e) => void flow.jobLog.push(e) },
    },
    4,
  );
  const ticket = (): JobTicket => ticketOf(flow.tables.job(job.id), REQUEST);
  return { ...flow, job, scheduler, ticket };
}

/** The node answers: its result settles and the completion event goes out (what io/results.service.ts does). */
async function complete(flow: Flow, d: Pick<DispatchEnvelope, 'jobId' | 'attempt' | 'nodeId'>): Promise<void> {
  const settled = await flow.settlement.complete({
    jobId: d.jobId,
    attempt: d.attempt,
    nodeId: d.nodeId,
    usage: { prompt_tokens: 1, completion_tokens: 1 },
    outputEmpty: false,
    terms: flow.ticket().terms,
  });
  if (settled.outcome === 'completed') await flow.live.completed(d.nodeId, d.jobId, { kind: 'finished', jobId: d.jobId, status: 'completed' });
}

/** What each dispatch was: `attempt@node`. */
const dispatches = (flow: Flow) => flow.live.dispatched.map((d) => `${d.attempt}@${d.nodeId}`);

test('a first delivery with its ticket runs attempt 1 without reading the row: signed by the network, sent to the node\'s instance, logged', async () => {
  const flow = await setUp();
  addNode(flow, '0xa');
  flow.live.onDispatch = (d) => void complete(flow, d);
  await flow.scheduler.handle({ jobId: flow.job.id, ticket: flow.ticket() });
  assert.deepEqual(dispatches(flow), ['1@0xa']);
  const { nodeId: _n, namespaceId: _ns, terms, startedAt, jobDeadlineAt, ...signed } = flow.live.dispatched[0]!;
  assert.ok(verifyMessage(signed, addressOf(NETWORK_KEY)), 'the dispatch carries the network\'s signature');
  assert.equal(terms.holdMicro, 400);
  assert.equal(jobDeadlineAt, flow.job.deadlineAt.getTime());
  assert.ok(signed.deadline <= startedAt + CONFIG.JOB_ATTEMPT_TIMEOUT_MS, 'the node works to the attempt\'s deadline, not the job\'s');
  assert.equal(flow.tables.job(flow.job.id).status, 'completed');
  assert.deepEqual(flow.tables.db.calls.filter((c) => c === 'findJob' || c === 'streamedAttempt'), [], 'nothing read back');
  assert.deepEqual(flow.jobLog.map((e) => [e.kind, e.attempt, e.nodeId]), [['dispatched', 1, '0xa']]);
  await flow.scheduler.stop();
});

test('next step: a job past its deadline expires without being placed, its hold released', async () => {
  const flow = await setUp();
  addNode(flow, '0xa');
  await flow.scheduler.handle({ jobId: flow.job.id, ticket: { ...flow.ticket(), deadlineAt: Date.now() - 1 } });
  assert.deepEqual(dispatches(flow), []);
  assert.deepEqual({ status: flow.tables.job(flow.job.id).status, code: flow.tables.job(flow.job.id).error_code }, { status: 'expired', code: 'deadline_exceeded' });
  assert.deepEqual(flow.tables.postingsOf(flow.job.id), ['hold', 'release']);
  await flow.scheduler.stop();
});

test('next step: failed attempts are retried on another node first, until the job\'s attempts run out; then it fails, charged nothing', async () => {
  const flow = await setUp({ maxAttempts: 3 });
  addNode(flow, '0xa');
  addNode(flow, '0xb');
  flow.live.onDispatch = (d) => void flow.lifecycle.failAttempt(d.jobId, d.attempt, d.nodeId, 'failed', 'runtime error');
  await flow.scheduler.handle({ jobId: flow.job.id, ticket: flow.ticket() });
  assert.deepEqual(dispatches(flow), ['1@0xa', '2@0xb', '3@0xa'], 'a node not failed on first; then any');
  const row = flow.tables.job(flow.job.id);
  assert.deepEqual({ status: row.status, code: row.error_code }, { status: 'failed', code: 'attempts_exhausted' });
  assert.deepEqual(flow.tables.postingsOf(flow.job.id), ['hold', 'release']);
  assert.deepEqual(flow.queue.quarantined, [{ jobId: flow.job.id, reason: 'attempts_exhausted' }]);
  await flow.scheduler.stop();
});

test('a silent attempt times out (the node blamed) and the job is retried', async () => {
  const flow = await setUp();
  addNode(flow, '0xa', { slots: 2 });
  flow.live.onDispatch = (d) => void (d.attempt === 2 && complete(flow, d));
  await flow.scheduler.handle({ jobId: flow.job.id, ticket: flow.ticket() });
  assert.deepEqual(dispatches(flow), ['1@0xa', '2@0xa']);
  assert.deepEqual(flow.tables.state.attempts.map((a) => [a.attempt, a.outcome]), [[1, 'timeout'], [2, 'completed']]);
  assert.equal(flow.flags.mirror.streaks.get('0xa')?.count, 1, 'the timeout counted against the node');
  assert.equal(flow.tables.job(flow.job.id).status, 'completed');
  await flow.scheduler.stop();
});

test('silence up to the job\'s own deadline is its client\'s cut: the job expires and the node is not blamed', async () => {
  const flow = await setUp();
  addNode(flow, '0xa');
  const ticket = { ...flow.ticket(), deadlineAt: Date.now() + 400, attemptTimeoutMs: 200 };
  await flow.scheduler.handle({ jobId: flow.job.id, ticket });
  assert.deepEqual(dispatches(flow), ['1@0xa']);
  assert.equal(flow.tables.job(flow.job.id).status, 'expired');
  assert.deepEqual(flow.tables.state.attempts, [], 'no attempt failed');
  assert.equal(flow.flags.mirror.streaks.has('0xa'), false);
  assert.deepEqual(flow.live.running('0xa'), [], 'its slot returned');
  await flow.scheduler.stop();
});

test('no-node grace: with no eligible node online for the grace the job fails no_node_available, charged nothing', async () => {
  const flow = await setUp();
  addNode(flow, '0xother', { models: ['another-model'] });
  const started = Date.now();
  await flow.scheduler.handle({ jobId: flow.job.id, ticket: flow.ticket() });
  assert.ok(Date.now() - started >= CONFIG.NO_NODE_GRACE_MS, 'not before the grace');
  const row = flow.tables.job(flow.job.id);
  assert.deepEqual({ status: row.status, code: row.error_code }, { status: 'failed', code: 'no_node_available' });
  assert.deepEqual(flow.tables.postingsOf(flow.job.id), ['hold', 'release']);
  await flow.scheduler.stop();
});

test('no-node grace: a node that comes online within it serves the job; busy eligible nodes are not "no node"', async () => {
  const flow = await setUp();
  flow.live.onDispatch = (d) => void complete(flow, d);
  setTimeout(() => addNode(flow, '0xlate'), 150);
  await flow.scheduler.handle({ jobId: flow.job.id, ticket: flow.ticket() });
  assert.deepEqual(dispatches(flow), ['1@0xlate']);

  const busy = await setUp();
  addNode(busy, '0xbusy');
  busy.live.onDispatch = (d) => void complete(busy, d);
  await busy.live.reserveAttempt({ network: 'mainnet', model: 'm', region: null, subcloud: null }, 'another-job', [], { attempt: 1, ttlMs: 60_000 });
  setTimeout(() => void busy.live.release('0xbusy', 'another-job'), 3 * CONFIG.NO_NODE_GRACE_MS);
  await busy.scheduler.handle({ jobId: busy.job.id, ticket: busy.ticket() });
  assert.equal(busy.tables.job(busy.job.id).status, 'completed', 'waited past the grace for the busy node');
  await Promise.all([flow.scheduler.stop(), busy.scheduler.stop()]);
});

test('a dispatch no gateway instance takes: the node leaves rotation, the attempt fails as a disconnect, the job goes elsewhere', async () => {
  const flow = await setUp();
  addNode(flow, '0xgone', { instance: 'io-gone' });
  flow.live.onDispatch = (d) => void complete(flow, d);
  setTimeout(() => addNode(flow, '0xb'), 50);
  await flow.scheduler.handle({ jobId: flow.job.id, ticket: flow.ticket() });
  assert.deepEqual(dispatches(flow), ['2@0xb'], 'only the delivered dispatch reached an instance');
  assert.equal(flow.live.nodes.get('0xgone')!.online, false);
  assert.deepEqual(flow.tables.state.attempts.map((a) => [a.attempt, a.nodeId, a.outcome]), [[1, '0xgone', 'disconnected'], [2, '0xb', 'completed']]);
  await flow.scheduler.stop();
});

test('redelivery: the row says which attempts ended, the stored input rebuilds the ticket, and the next attempt starts', async () => {
  const flow = await setUp();
  addNode(flow, '0xa');
  await flow.lifecycle.failAttempt(flow.job.id, 1, '0xa', 'failed', 'before the crash');
  flow.live.onDispatch = (d) => void complete(flow, d);
  await flow.scheduler.handle({ jobId: flow.job.id, ticket: flow.ticket() }, true);
  assert.deepEqual(dispatches(flow), ['2@0xa']);
  assert.equal(flow.tables.job(flow.job.id).status, 'completed');
  await flow.scheduler.handle({ jobId: flow.job.id, ticket: null }, true);
  assert.deepEqual(dispatches(flow), ['2@0xa'], 'a finished job\'s message is acked with nothing done');
  await flow.scheduler.stop();
});

test('redelivery while an attempt is in flight waits for it, and that attempt\'s result finishes the job', async () => {
  const flow = await setUp();
  addNode(flow, '0xa');
  await flow.live.reserveAttempt({ network: 'mainnet', model: 'm', region: null, subcloud: null }, flow.job.id, [], { attempt: 1, ttlMs: 60_000 });
  setTimeout(() => void complete(flow, { jobId: flow.job.id, attempt: 1, nodeId: '0xa' }), 50);
  await flow.scheduler.handle({ jobId: flow.job.id, ticket: null }, true);
  assert.deepEqual(dispatches(flow), [], 'no second attempt');
  assert.equal(flow.tables.job(flow.job.id).status, 'completed');
  await flow.scheduler.stop();
});

test('redelivery of a job whose input is gone fails it payload_missing; one whose streamed attempt ended fails it stream_interrupted', async () => {
  const gone = await setUp();
  gone.payloads.inputs.clear();
  await gone.scheduler.handle({ jobId: gone.job.id, ticket: null }, true);
  assert.equal(gone.tables.job(gone.job.id).error_code, 'payload_missing');

  const streamed = await setUp();
  addNode(streamed, '0xa');
  streamed.tables.job(streamed.job.id).streamed_attempt = 1;
  await streamed.lifecycle.failAttempt(streamed.job.id, 1, '0xa', 'failed', 'after part of the answer');
  await streamed.scheduler.handle({ jobId: streamed.job.id, ticket: null }, true);
  const row = streamed.tables.job(streamed.job.id);
  assert.deepEqual({ code: row.error_code, charged: row.charged_micro }, { code: 'stream_interrupted', charged: 0 });
  assert.deepEqual(streamed.live.dispatched, [], 'never sent to a second node');
  await Promise.all([gone.scheduler.stop(), streamed.scheduler.stop()]);
});

test('a message redelivered while this process drives its job joins the handling in progress', async () => {
  const flow = await setUp();
  addNode(flow, '0xa');
  flow.live.onDispatch = (d) => void setTimeout(() => void complete(flow, d), 30);
  await Promise.all([flow.scheduler.handle({ jobId: flow.job.id, ticket: flow.ticket() }), flow.scheduler.handle({ jobId: flow.job.id, ticket: flow.ticket() }, true)]);
  assert.deepEqual(dispatches(flow), ['1@0xa']);
  assert.equal(flow.tables.db.calls.includes('findJob'), false, 'joined: no second handling catching up from the row');
  await flow.scheduler.stop();
});

test('stopping hands a waiting job back (its message requeued), with nothing ended', async () => {
  const flow = await setUp();
  const handling = flow.scheduler.handle({ jobId: flow.job.id, ticket: flow.ticket() });
  setTimeout(() => void flow.scheduler.stop(), 50);
  await assert.rejects(handling, /scheduler stopping/);
  assert.equal(flow.tables.job(flow.job.id).finished_at, null);
  assert.deepEqual(flow.tables.postingsOf(flow.job.id), ['hold']);
});
