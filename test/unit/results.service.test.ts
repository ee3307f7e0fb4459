// Fast tier (docs/testing.md): ResultsService's rules on the job flow's in-memory fakes: which results
// are accepted and which refused, the usage bounds the backbone checks itself (a node's claim is the bill,
// never taken without a bound), duplicates. The same service on the real engines:
// test/integration/hot-path.test.ts, streaming.test.ts, node-auth.test.ts, edges-io.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ResultsService, type AttemptContext } from '../../src/io/results.service.js';
import { addressOf, signMessage } from '../../src/domain/signatures.js';
import { outputHash, type JobOutput, type JobRequest, type ResultMessage, type Usage } from '../../src/domain/protocol.js';
import { termsOf } from '../../src/domain/job-ticket.js';
import { expectationOf } from '../../src/domain/job-results.js';
import { NAMESPACE, newJob } from '../fakes/job-tables.js';
import { addNode, jobFlow } from '../fakes/job-flow.js';

const KEY = `0x${randomBytes(32).toString('hex')}`;
const NODE = addressOf(KEY);
const OTHER_KEY = `0x${randomBytes(32).toString('hex')}`;
const OTHER = addressOf(OTHER_KEY);
const REQUEST: JobRequest = { messages: [{ role: 'user', content: 'hi' }], max_tokens: 100 };

/** A flow with a funded namespace, two nodes, one accepted job whose attempt 1 runs on NODE. */
async function setUp(opts: { plan?: number | null } = {}) {
  const flow = jobFlow();
  flow.tables.fund(NAMESPACE, 1_000);
  addNode(flow, NODE, { slots: 2 });
  addNode(flow, OTHER);
  const job = newJob();
  await flow.settlement.acceptWithHold(job, null);
  const r = await flow.live.reserveAttempt({ network: 'mainnet', model: 'm', region: null, subcloud: null }, job.id, [OTHER], { attempt: 1, ttlMs: 60_000 });
  assert.ok(r && r !== 'fenced' && r.nodeId === NODE);
  const zeroHeld: string[] = [];
  const results = new ResultsService({
    store: flow.store,
    settlement: flow.settlement,
    payloads: flow.payloads,
    inflight: flow.live,
    lifecycle: flow.lifecycle,
    streams: flow.live,
    usageRules: flow.usageRules,
    retentionHoursFor: () => Promise.resolve(opts.plan === undefined ? 72 : opts.plan),
    zeroHolds: { hold: (_ns, jobId) => Promise.resolve(void zeroHeld.push(jobId)) },
    logger: flow.logger,
    jobLog: { record: (e) => void flow.jobLog.push(e) },
    nodeStats: flow.nodeStats,
  });
  /** The attempt as the gateway that dispatched it knows it. */
  const ctx: AttemptContext = {
    attempt: 1,
    namespaceId: NAMESPACE,
    model: 'm',
    terms: termsOf(flow.tables.job(job.id)),
    startedAt: Date.now() - 20,
    jobDeadlineAt: job.deadlineAt.getTime(),
    streamed: false,
    expects: expectationOf(REQUEST),
  };
  return { ...flow, job, results, ctx, zeroHeld };
}

function result(jobId: string, o: { key?: string; attempt?: number; output?: JobOutput; usage?: Usage; hashOf?: JobOutput } = {}): ResultMessage {
  const key = o.key ?? KEY;
  const output = o.output ?? { content: 'hello there', finish_reason: 'stop' };
  return signMessage(key, {
    type: 'result' as const,
    nodeId: addressOf(key),
    jobId,
    attempt: o.attempt ?? 1,
    ts: Date.now(),
    output,
    outputHash: outputHash(o.hashOf ?? output),
    usage: o.usage ?? { prompt_tokens: 5, completion_tokens: 3 },
  });
}

test('the dispatched attempt\'s result completes the job: output stored, settled once, slot back, the answer in the event; nothing read back', async () => {
  const s = await setUp();
  assert.deepEqual(await s.results.acceptResult(result(s.job.id), s.ctx), { accepted: true });
  const row = s.tables.job(s.job.id);
  // 5 × 2 + 3 × 3 = 19
  assert.deepEqual({ status: row.status, charged: row.charged_micro, node: row.node_id }, { status: 'completed', charged: 19, node: NODE });
  assert.deepEqual(s.tables.postingsOf(s.job.id), ['hold', 'release', 'capture']);
  assert.equal(s.payloads.results.get(`${s.job.id}#1`)?.output.content, 'hello there');
  assert.deepEqual(s.live.running(NODE), []);
  const finished = s.live.published.find((e) => e.jobId === s.job.id);
  assert.ok(finished?.kind === 'finished' && finished.completed?.chargedMicro === 19 && finished.completed.output.content === 'hello there');
  assert.deepEqual(s.jobLog.map((e) => e.kind), ['completed']);
  assert.deepEqual(s.nodeStats.lines, [`completed ${NODE} m 3`]);
  assert.equal(s.tables.db.calls.includes('findJob'), false, 'the success path reads nothing back');
  assert.equal(s.tables.ledgerSum(), 0);
});

test('an unverifiable result is refused and changes nothing: a forged signature, an output that does not match its hash', async () => {
  const s = await setUp();
  const forged = { ...result(s.job.id, { key: OTHER_KEY }), nodeId: NODE };
  assert.deepEqual(await s.results.acceptResult(forged, s.ctx), { accepted: false, reason: 'bad_signature' });
  // Signed by the node, over a hash of another output than the one it carries.
  const tampered = result(s.job.id, { hashOf: { content: 'something else', finish_reason: 'stop' } });
  assert.deepEqual(await s.results.acceptResult(tampered, s.ctx), { accepted: false, reason: 'output_hash_mismatch' });
  assert.deepEqual(s.tables.postingsOf(s.job.id), ['hold']);
  assert.equal(s.payloads.saveCalls, 0);
  assert.equal(s.tables.job(s.job.id).status, 'queued');
});

test('usage bound: completion tokens beyond what the output can hold (counted by the backbone) are refused, never billed, and fail the attempt', async () => {
  const s = await setUp();
  // 'hello there' is 11 bytes: at most 11 tokens, and 4 for special tokens.
  const claim = result(s.job.id, { usage: { prompt_tokens: 5, completion_tokens: 16 } });
  assert.deepEqual(await s.results.acceptResult(claim, s.ctx), { accepted: false, reason: 'usage_out_of_bounds' });
  assert.deepEqual(s.tables.postingsOf(s.job.id), ['hold']);
  assert.equal(s.payloads.saveCalls, 0, 'an output refused before it is stored');
  assert.deepEqual(s.live.eventsOf(s.job.id), ['attempt_failed:1:invalid_result']);
  assert.equal(s.flags.mirror.streaks.get(NODE)?.count, 1, 'counted against the node');
  assert.deepEqual(await s.results.acceptResult(result(s.job.id, { usage: { prompt_tokens: 5, completion_tokens: 15 } }), { ...s.ctx, attempt: 1 }), {
    accepted: false,
    reason: 'stale_attempt',
  }, 'the failed attempt can no longer settle, even with a claim within the bound');
});

test('usage bound: a claim within the output\'s bound but beyond the request\'s (its prompt bound) is refused by settlement, and the attempt fails', async () => {
  const s = await setUp();
  assert.deepEqual(await s.results.acceptResult(result(s.job.id, { usage: { prompt_tokens: 51, completion_tokens: 3 } }), s.ctx), { accepted: false, reason: 'usage_out_of_bounds' });
  assert.deepEqual(s.tables.postingsOf(s.job.id), ['hold']);
  assert.deepEqual(s.live.eventsOf(s.job.id), ['attempt_failed:1:invalid_result']);
});

test('a model the catalogue no longer knows has no output bound; the request\'s bounds still hold', async () => {
  const s = await setUp();
  s.rules.clear();
  assert.deepEqual(await s.results.acceptResult(result(s.job.id, { usage: { prompt_tokens: 5, completion_tokens: 100 } }), s.ctx), { accepted: true });
  assert.equal(s.tables.job(s.job.id).completion_tokens, 100);
});

test('a streamed attempt\'s result must be exactly what it streamed; an answer of the wrong shape is refused', async () => {
  const s = await setUp();
  s.live.streamed.set(`${s.job.id}#1`, 'hello their');
  assert.deepEqual(await s.results.acceptResult(result(s.job.id), { ...s.ctx, streamed: true }), { accepted: false, reason: 'stream_mismatch' });
  assert.deepEqual(s.live.eventsOf(s.job.id), ['attempt_failed:1:invalid_result']);

  const e = await setUp();
  const embedding = expectationOf({ kind: 'embedding', messages: [{ role: 'user', content: 'a' }], max_tokens: 1 });
  assert.deepEqual(await e.results.acceptResult(result(e.job.id), { ...e.ctx, expects: embedding }), { accepted: false, reason: 'result_mismatch' });
  assert.deepEqual(e.tables.postingsOf(e.job.id), ['hold']);
});

test('a duplicate result is stale and charged nothing more, whether it comes with the dispatch or from elsewhere', async () => {
  const s = await setUp();
  const msg = result(s.job.id);
  assert.deepEqual(await s.results.acceptResult(msg, s.ctx), { accepted: true });
  assert.deepEqual(await s.results.acceptResult(result(s.job.id), s.ctx), { accepted: false, reason: 'stale_attempt' });
  assert.deepEqual(await s.results.acceptResult(result(s.job.id), null), { accepted: false, reason: 'stale_attempt' });
  assert.deepEqual(s.tables.postingsOf(s.job.id), ['hold', 'release', 'capture'], 'settled once');
  assert.equal(s.live.published.filter((e) => e.kind === 'finished').length, 1);
});

test('a result from elsewhere (HTTP) counts only for the node the records say runs the attempt; an unknown job is told apart', async () => {
  const s = await setUp();
  assert.deepEqual(await s.results.acceptResult(result(s.job.id, { key: OTHER_KEY }), null), { accepted: false, reason: 'stale_attempt' });
  assert.deepEqual(await s.results.acceptResult(result(s.job.id, { attempt: 2 }), null), { accepted: false, reason: 'stale_attempt' });
  assert.deepEqual(await s.results.acceptResult(result(newJob().id), null), { accepted: false, reason: 'unknown_job' });
  assert.deepEqual(s.tables.postingsOf(s.job.id), ['hold']);
  assert.deepEqual(await s.results.acceptResult(result(s.job.id), null), { accepted: true });
  assert.equal(s.tables.job(s.job.id).charged_micro, 19);
});

test('the zero plan\'s output never goes to MongoDB: it is held in Redis for one read', async () => {
  const s = await setUp({ plan: null });
  assert.deepEqual(await s.results.acceptResult(result(s.job.id), s.ctx), { accepted: true });
  assert.equal(s.payloads.saveCalls, 0);
  assert.deepEqual(s.zeroHeld, [s.job.id]);
});

test('an output MongoDB refuses every time still completes the job its client was charged for', async () => {
  const s = await setUp();
  s.payloads.failNext('saveResult', 2);
  assert.deepEqual(await s.results.acceptResult(result(s.job.id), s.ctx), { accepted: true });
  assert.equal(s.payloads.saveCalls, 2, 'tried twice');
  assert.equal(s.tables.job(s.job.id).status, 'completed');
  assert.ok(s.live.published.some((e) => e.kind === 'finished' && e.jobId === s.job.id));
});

function jobError(jobId: string, key = KEY) {
  return signMessage(key, { type: 'job_error' as const, nodeId: addressOf(key), jobId, attempt: 1, ts: Date.now(), message: 'runtime crashed' });
}

test('a node\'s job_error fails its attempt (retried elsewhere) and counts against it', async () => {
  const s = await setUp();
  assert.equal(await s.results.acceptJobError(jobError(s.job.id), s.ctx), true);
  assert.deepEqual(s.live.eventsOf(s.job.id), ['attempt_failed:1:failed']);
  assert.equal(s.tables.job(s.job.id).status, 'queued');
  assert.equal(s.flags.mirror.streaks.get(NODE)?.count, 1);
});

test('a job_error at the job\'s own deadline is its client\'s cut: the job expires, the hold is released, the node is not blamed', async () => {
  const s = await setUp();
  assert.equal(await s.results.acceptJobError(jobError(s.job.id), { ...s.ctx, jobDeadlineAt: Date.now() }), true);
  assert.equal(s.tables.job(s.job.id).status, 'expired');
  assert.deepEqual(s.tables.postingsOf(s.job.id), ['hold', 'release']);
  assert.equal(s.flags.mirror.streaks.has(NODE), false);
});

test('a job_error from elsewhere by a node that does not run the attempt changes nothing', async () => {
  const s = await setUp();
  assert.equal(await s.results.acceptJobError(jobError(s.job.id, OTHER_KEY), null), false);
  assert.equal(s.tables.job(s.job.id).status, 'queued');
  assert.deepEqual(s.live.published, []);
});
