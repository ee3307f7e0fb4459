// How the node agent handles each message the gateway sends (agent.ts messageHandlers,
// gateway-messages.ts), against a fake gateway: the ones the registration and job tests in
// node-agent.test.ts do not already cover.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressOf, generatePrivateKey } from '../../src/domain/signatures.js';
import { isType, sleep, waitUntil, withAgent } from '../helpers/fake-gateway.js';

const DIGEST = 'ab'.repeat(32);

void test('gateway messages: frames that are not JSON or not gateway messages are ignored, and the session goes on', async () => {
  await withAgent({}, {}, async (gw, agent) => {
    gw.send('not json {');
    gw.send({ type: 'no_such_type' });
    gw.send({ type: 'job', jobId: 'not-a-uuid' });
    gw.send({ type: 'result_ack' });
    const job = gw.dispatch();
    await gw.waitFor(isType('result', job.jobId));
    assert.equal(gw.sockets.length, 1);
    assert.equal(gw.received.filter((e) => e.msg.type === 'job_error').length, 0);
    assert.equal(agent.completed, 1);
  });
});

void test('gateway messages: an error while registered is only logged; the connection stays', async () => {
  await withAgent({}, {}, async (gw) => {
    gw.send({ type: 'error', code: 'bad_heartbeat', message: 'heartbeat refused' });
    const job = gw.dispatch();
    await gw.waitFor(isType('result', job.jobId));
    assert.equal(gw.sockets.length, 1);
    assert.deepEqual(gw.closes, []);
  });
});

void test('gateway messages: a later connection refused (a frozen node, say) is closed and retried until the gateway accepts again', async () => {
  await withAgent({}, {}, async (gw) => {
    gw.opts.refuse = true;
    gw.sockets.at(-1)?.terminate();
    // The agent closes each refused connection itself, and tries again.
    await waitUntil(() => gw.closes.filter((c) => c.code === 1000 && c.reason === 'registration refused').length >= 2);
    assert.equal(gw.registrations, 1);
    gw.opts.refuse = false;
    await waitUntil(() => gw.registrations === 2);
    const job = gw.dispatch();
    await gw.waitFor(isType('result', job.jobId));
  });
});

void test('gateway messages: a later gateway of another network is closed as the wrong network, without registering, and retried', async () => {
  await withAgent({}, {}, async (gw) => {
    const registers = () => gw.received.filter((e) => e.msg.type === 'register').length;
    gw.opts.announce = addressOf(generatePrivateKey());
    gw.sockets.at(-1)?.terminate();
    await waitUntil(() => gw.closes.filter((c) => c.code === 1008 && c.reason === 'wrong network').length >= 2);
    assert.equal(registers(), 1, 'no registration is sent to a gateway of another network');
    gw.opts.announce = undefined;
    await waitUntil(() => gw.registrations === 2);
    const job = gw.dispatch();
    await gw.waitFor(isType('result', job.jobId));
  });
});

void test('gateway messages: results the gateway acknowledged are not re-sent when the socket drops; the others are POSTed again', async () => {
  await withAgent({ ackResults: true }, { reconnect: false }, async (gw) => {
    const acked = gw.dispatch();
    await gw.waitFor(isType('result', acked.jobId));
    await sleep(50); // the result_ack's way back
    gw.opts.ackResults = false;
    const unacked = gw.dispatch();
    await gw.waitFor(isType('result', unacked.jobId));
    gw.sockets.at(-1)?.terminate();
    await gw.waitFor(isType('result', unacked.jobId), 'http');
    await sleep(100);
    assert.ok(!gw.posted.some((e) => e.msg.type === 'result' && e.msg.jobId === acked.jobId), 'an acknowledged result is not posted again');
  });
});

void test('gateway messages: an abort stops the running attempt, which reports why', async () => {
  await withAgent({}, { latencyMs: 5_000 }, async (gw, agent) => {
    const job = gw.dispatch();
    await waitUntil(() => agent.running() === 1);
    gw.send({ type: 'abort', jobId: job.jobId, attempt: job.attempt + 1, reason: 'another attempt' });
    await sleep(50);
    assert.equal(agent.running(), 1, 'an abort for another attempt leaves this one running');
    gw.send({ type: 'abort', jobId: job.jobId, attempt: job.attempt, reason: 'client cancelled' });
    const { msg } = await gw.waitFor(isType('job_error', job.jobId));
    assert.equal(msg.message, 'aborted by the gateway: client cancelled');
    assert.equal(agent.running(), 0);
  });
});

void test('gateway messages: a config version announced in heartbeat_ack (or registered) that the node does not hold is fetched', async () => {
  await withAgent({}, {}, async (gw, agent) => {
    assert.equal(gw.configRequests, 0);
    gw.send({ type: 'heartbeat_ack', ts: Date.now() });
    await sleep(50);
    assert.equal(gw.configRequests, 0, 'no announcement, no fetch');
    gw.send({ type: 'heartbeat_ack', ts: Date.now(), config: { version: 1, digest: DIGEST } });
    await waitUntil(() => gw.configRequests === 1);
    // The fake answers 404: the agent keeps what it had (nothing) and asks again at the next announcement.
    assert.equal(agent.networkConfig(), null);
    await sleep(100); // that fetch's end: one runs at a time, and an announcement meanwhile is not fetched again
    gw.send({ type: 'registered', nodeId: agent.nodeId, heartbeatIntervalMs: 60_000, config: { version: 1, digest: DIGEST } });
    await waitUntil(() => gw.configRequests === 2);
  });
});
