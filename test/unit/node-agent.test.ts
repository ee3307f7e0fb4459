// The node agent against a fake gateway (test/helpers/fake-gateway.ts): registration, heartbeats, jobs,
// delivery over the socket or HTTP, reconnection, stop and kill.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { outputHash } from '../../src/domain/protocol.js';
import { addressOf, generatePrivateKey, signMessage } from '../../src/domain/signatures.js';
import { startNodeAgent } from '../../src/node-agent/agent.js';
import { SimulatedRuntime } from '../../src/node-agent/runtime.simulated.js';
import { FakeGateway, OPERATOR, isType, logger, sleep, waitUntil, withAgent } from '../helpers/fake-gateway.js';

void test('agent: registers with a signed answer to the challenge, then sends signed heartbeats with fresh nonces', async () => {
  await withAgent({ heartbeatIntervalMs: 20 }, {}, async (gw, agent, key) => {
    assert.equal(agent.nodeId, addressOf(key));
    const register = await gw.waitFor(isType('register'));
    assert.ok(register.signatureValid);
    assert.equal(register.msg.nodeId, agent.nodeId);
    assert.equal(register.msg.operator, OPERATOR);
    // Nothing declared: mainnet, no region, no GPU, every model at version 1.
    assert.deepEqual(
      { network: register.msg.network, region: register.msg.region, gpu: register.msg.gpu, models: register.msg.models },
      { network: 'mainnet', region: null, gpu: { name: 'none', memoryMb: 0 }, models: [{ name: 'sim-1', version: '1' }] },
    );
    assert.equal(register.msg.runtime, 'simulated');
    await waitUntil(() => gw.received.filter((e) => e.msg.type === 'heartbeat').length >= 2);
    const beats = gw.received.filter((e) => e.msg.type === 'heartbeat');
    assert.ok(beats.every((b) => b.signatureValid));
    const nonces = beats.map((b) => (b.msg.type === 'heartbeat' ? b.msg.nonce : ''));
    assert.equal(new Set(nonces).size, nonces.length);
  });
});

void test("agent: declares, signed in registration and every heartbeat, the operator's network, region, GPU and model versions", async () => {
  const declared = { network: 'testnet', region: 'eu-west', gpu: { name: 'rtx-4090', memoryMb: 24_576 } } as const;
  await withAgent({ heartbeatIntervalMs: 20 }, { ...declared, modelVersions: { 'sim-1': '2024-06' } }, async (gw) => {
    const register = await gw.waitFor(isType('register'));
    await waitUntil(() => gw.received.some((e) => e.msg.type === 'heartbeat'));
    const beat = gw.received.find((e) => e.msg.type === 'heartbeat')!;
    for (const { msg, signatureValid } of [register, beat]) {
      assert.ok(signatureValid);
      assert.ok(msg.type === 'register' || msg.type === 'heartbeat');
      assert.deepEqual({ network: msg.network, region: msg.region, gpu: msg.gpu, models: msg.models }, { ...declared, models: [{ name: 'sim-1', version: '2024-06' }] });
    }
  });
});

void test('agent: runs a network-signed job and returns a signed result with the right output hash', async () => {
  await withAgent({}, {}, async (gw, agent) => {
    const job = gw.dispatch();
    const { msg, signatureValid } = await gw.waitFor(isType('result', job.jobId));
    assert.ok(signatureValid);
    assert.equal(msg.attempt, 1);
    assert.equal(msg.outputHash, outputHash(msg.output));
    const expected = await new SimulatedRuntime({ models: ['sim-1'] }).complete('sim-1', job.request, new AbortController().signal);
    assert.deepEqual(msg.output, expected.output);
    assert.deepEqual(msg.usage, expected.usage);
    assert.equal(agent.completed, 1);
    assert.equal(agent.running(), 0);
  });
});

void test('agent: refuses a job not signed by the network key with a signed job_error', async () => {
  await withAgent({}, {}, async (gw, agent) => {
    const forged = gw.dispatch({}, generatePrivateKey());
    const { msg, signatureValid } = await gw.waitFor(isType('job_error', forged.jobId));
    assert.ok(signatureValid);
    assert.match(msg.message, /not signed by the network key/);
    // Tampering with a genuinely signed job breaks its signature too.
    const genuine = gw.dispatch();
    await gw.waitFor(isType('result', genuine.jobId));
    const tampered = signMessage(gw.networkKey, { ...genuine, type: 'job' as const, jobId: randomUUID() });
    gw.sockets.at(-1)?.send(JSON.stringify({ ...tampered, attempt: 2 }));
    const refused = await gw.waitFor(isType('job_error', tampered.jobId));
    assert.match(refused.msg.message, /not signed/);
    assert.equal(agent.completed, 1);
  });
});

void test('agent: without --network-address it pins the network of the first challenge and refuses jobs not signed by it', async () => {
  await withAgent({}, { networkAddress: undefined }, async (gw) => {
    const forged = gw.dispatch({}, generatePrivateKey());
    const { msg } = await gw.waitFor(isType('job_error', forged.jobId));
    assert.match(msg.message, /not signed by the network key/);
    const genuine = gw.dispatch();
    await gw.waitFor(isType('result', genuine.jobId));
  });
});

void test('agent: a job beyond capacity gets an over-capacity job_error', async () => {
  await withAgent({}, { capacity: 1, latencyMs: 200 }, async (gw, agent) => {
    const first = gw.dispatch();
    const second = gw.dispatch();
    const refused = await gw.waitFor(isType('job_error', second.jobId));
    assert.equal(refused.msg.message, 'over capacity');
    assert.equal(agent.running(), 1);
    await gw.waitFor(isType('result', first.jobId));
  });
});

void test('agent: a job that outlives its deadline is aborted and reported', async () => {
  await withAgent({}, { latencyMs: 5_000 }, async (gw, agent) => {
    const job = gw.dispatch({ deadline: Date.now() + 100 });
    const { msg } = await gw.waitFor(isType('job_error', job.jobId));
    assert.equal(msg.message, 'deadline exceeded');
    assert.equal(agent.running(), 0);
  });
});

void test('agent: a result ready after the socket dropped is POSTed to /io/results', async () => {
  await withAgent({}, { latencyMs: 150, reconnect: false }, async (gw) => {
    const job = gw.dispatch();
    await sleep(20);
    gw.sockets.at(-1)?.terminate();
    const { msg, signatureValid } = await gw.waitFor(isType('result', job.jobId), 'http');
    assert.ok(signatureValid);
    assert.equal(msg.outputHash, outputHash(msg.output));
    assert.equal(gw.received.filter((e) => e.msg.type === 'result').length, 0);
  });
});

void test('agent: reconnects and re-registers after the socket drops', async () => {
  await withAgent({}, {}, async (gw) => {
    assert.equal(gw.registrations, 1);
    gw.sockets.at(-1)?.terminate();
    await waitUntil(() => gw.registrations === 2);
    const job = gw.dispatch();
    await gw.waitFor(isType('result', job.jobId));
  });
});

void test('agent: stop() finishes the running job, delivers it, then closes', async () => {
  await withAgent({}, { latencyMs: 100 }, async (gw, agent) => {
    const job = gw.dispatch();
    await sleep(20);
    const closed = new Promise<void>((resolve) => gw.sockets.at(-1)?.once('close', () => resolve()));
    await agent.stop();
    await closed;
    await gw.waitFor(isType('result', job.jobId));
    assert.equal(agent.completed, 1);
    // The node withdrew its models before draining, so the scheduler stops sending it work.
    const beat = await gw.waitFor(isType('heartbeat'));
    assert.deepEqual(beat.msg.models, []);
  });
});

void test('agent: kill() drops the socket at once and abandons running jobs', async () => {
  await withAgent({}, { latencyMs: 150 }, async (gw, agent) => {
    const job = gw.dispatch();
    await sleep(20);
    const closed = new Promise<void>((resolve) => gw.sockets.at(-1)?.once('close', () => resolve()));
    agent.kill();
    await closed;
    await sleep(250);
    assert.ok(!gw.received.some((e) => 'jobId' in e.msg && e.msg.jobId === job.jobId));
    assert.ok(!gw.posted.some((e) => 'jobId' in e.msg && e.msg.jobId === job.jobId));
    assert.equal(gw.registrations, 1); // and it does not come back
  });
});

void test('agent: start rejects with the gateway message when registration is refused', async () => {
  const gw = await FakeGateway.start({ refuse: true });
  try {
    await assert.rejects(
      startNodeAgent({ gatewayUrl: gw.url, privateKey: generatePrivateKey(), operator: OPERATOR, runtime: new SimulatedRuntime({ models: ['sim-1'] }), capacity: 1, logger }),
      /node is frozen by the operator/,
    );
  } finally {
    await gw.close();
  }
});

void test('agent: start rejects when the gateway serves another network', async () => {
  const gw = await FakeGateway.start({ announce: addressOf(generatePrivateKey()) });
  try {
    await assert.rejects(
      startNodeAgent({ gatewayUrl: gw.url, privateKey: generatePrivateKey(), operator: OPERATOR, runtime: new SimulatedRuntime({ models: ['sim-1'] }), capacity: 1, networkAddress: gw.network, logger }),
      /serves network/,
    );
  } finally {
    await gw.close();
  }
});

void test('agent: without reconnect, an unreachable gateway fails the start; bad options fail at once', async () => {
  const gw = await FakeGateway.start();
  const url = gw.url;
  await gw.close();
  const base = { gatewayUrl: url, privateKey: generatePrivateKey(), operator: OPERATOR, runtime: new SimulatedRuntime({ models: ['sim-1'] }), capacity: 1, logger };
  await assert.rejects(startNodeAgent({ ...base, reconnect: false }), /could not register.*ECONNREFUSED/);
  await assert.rejects(startNodeAgent({ ...base, capacity: 0 }), /capacity/);
  await assert.rejects(startNodeAgent({ ...base, operator: 'bob' }), /uuid/);
  await assert.rejects(startNodeAgent({ ...base, region: 'Mars Base' }), /region/);
  await assert.rejects(startNodeAgent({ ...base, gpu: { name: 'h100', memoryMb: -1 } }), /gpu/);
  await assert.rejects(startNodeAgent({ ...base, modelVersions: { 'sim-1': 'v@2' } }), /version of sim-1/);
  await assert.rejects(startNodeAgent({ ...base, privateKey: 'secret-but-wrong' }), (err: unknown) => {
    assert.ok(err instanceof Error);
    assert.match(err.message, /private key/);
    assert.doesNotMatch(err.message, /secret-but-wrong/);
    return true;
  });
});

void test('agent: a streamed job sends its text as numbered job_chunks before the result, which equals them put together', async () => {
  await withAgent({}, { latencyMs: 50 }, async (gw) => {
    const job = gw.dispatch({ request: { messages: [{ role: 'user', content: 'stream this' }], max_tokens: 8, stream: true } });
    const { msg: result, signatureValid } = await gw.waitFor(isType('result', job.jobId));
    assert.ok(signatureValid);
    const order = gw.received.map((e) => e.msg).filter((m) => 'jobId' in m && m.jobId === job.jobId);
    const chunks = order.filter((m) => m.type === 'job_chunk');
    assert.ok(chunks.length > 1);
    assert.equal(order.at(-1)?.type, 'result', 'every chunk goes out before the result');
    assert.deepEqual(chunks.map((c) => c.seq), [...chunks.keys()]);
    assert.ok(chunks.every((c) => c.attempt === job.attempt));
    assert.equal(chunks.map((c) => c.delta).join(''), result.output.content);

    const plain = gw.dispatch();
    await gw.waitFor(isType('result', plain.jobId));
    assert.ok(!gw.received.some((e) => e.msg.type === 'job_chunk' && e.msg.jobId === plain.jobId), 'no chunks for an unstreamed job');
  });
});
