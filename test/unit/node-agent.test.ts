import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  nodeMessageSchema,
  outputHash,
  registerSchema,
  type JobDispatch,
  type NodeMessage,
} from '../../src/domain/protocol.js';
import { addressOf, generatePrivateKey, signMessage, verifyMessage } from '../../src/domain/signatures.js';
import { startNodeAgent, type NodeAgent, type NodeAgentOptions } from '../../src/node-agent/agent.js';
import { SimulatedRuntime } from '../../src/node-agent/runtime.simulated.js';

const OPERATOR = '6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b';
const logger = pino({ level: 'silent' });

interface GatewayOptions {
  /** Answer registration with an error instead of `registered`. */
  refuse?: boolean;
  heartbeatIntervalMs?: number;
  /** The network announced in the challenge; the gateway's own key by default. */
  announce?: string;
}

/** A minimal io gateway: challenge, registration check, job dispatch, and the HTTP result fallback. */
class FakeGateway {
  readonly networkKey = generatePrivateKey();
  readonly network = addressOf(this.networkKey);
  /** Every node message received over the socket, in order, with a flag saying whether its signature held. */
  readonly received: { msg: NodeMessage; signatureValid: boolean }[] = [];
  readonly posted: { msg: NodeMessage; signatureValid: boolean }[] = [];
  readonly sockets: WebSocket[] = [];
  registrations = 0;
  private readonly http: Server;
  private readonly wss: WebSocketServer;

  private constructor(private readonly opts: GatewayOptions) {
    this.http = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method === 'POST' && req.url === '/io/results') {
          this.posted.push(check(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"accepted":true}');
        } else {
          res.writeHead(404).end();
        }
      });
    });
    this.wss = new WebSocketServer({ server: this.http, path: '/io/ws' });
    this.wss.on('connection', (ws) => this.onConnection(ws));
  }

  static async start(opts: GatewayOptions = {}): Promise<FakeGateway> {
    const gw = new FakeGateway(opts);
    await new Promise<void>((resolve) => gw.http.listen(0, '127.0.0.1', resolve));
    return gw;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  private onConnection(ws: WebSocket): void {
    this.sockets.push(ws);
    const challenge = randomBytes(16).toString('hex');
    ws.on('message', (data: Buffer) => {
      const entry = check(JSON.parse(data.toString('utf8')));
      this.received.push(entry);
      const { msg } = entry;
      if (msg.type !== 'register') return;
      assert.ok(entry.signatureValid, 'register signature');
      assert.equal(msg.challenge, challenge);
      assert.ok(registerSchema.safeParse(msg).success);
      if (this.opts.refuse) {
        ws.send(JSON.stringify({ type: 'error', code: 'node_frozen', message: 'node is frozen by the operator' }));
        return;
      }
      this.registrations++;
      ws.send(JSON.stringify({ type: 'registered', nodeId: msg.nodeId, heartbeatIntervalMs: this.opts.heartbeatIntervalMs ?? 60_000 }));
    });
    ws.send(JSON.stringify({ type: 'challenge', challenge, network: this.opts.announce ?? this.network }));
  }

  /** Sends a job to the latest connection, signed by `signer` (the network key by default). */
  dispatch(overrides: Partial<JobDispatch> = {}, signer = this.networkKey): JobDispatch {
    const now = Date.now();
    const job = signMessage(signer, {
      type: 'job' as const,
      jobId: randomUUID(),
      attempt: 1,
      model: 'sim-1',
      request: { messages: [{ role: 'user' as const, content: 'hello there' }], max_tokens: 8 },
      deadline: now + 10_000,
      ts: now,
      ...overrides,
    });
    const ws = this.sockets.at(-1);
    assert.ok(ws);
    ws.send(JSON.stringify(job));
    return job;
  }

  /** Waits for a node message matching `pred`, over the socket or HTTP. */
  async waitFor<T extends NodeMessage>(pred: (m: NodeMessage) => m is T, where: 'socket' | 'http' = 'socket', timeoutMs = 3_000): Promise<{ msg: T; signatureValid: boolean }> {
    const list = where === 'socket' ? this.received : this.posted;
    const until = Date.now() + timeoutMs;
    for (;;) {
      for (const e of list) if (pred(e.msg)) return { msg: e.msg, signatureValid: e.signatureValid };
      if (Date.now() > until) throw new Error('timed out waiting for a node message');
      await sleep(5);
    }
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }
}

/** Every node message must parse, and is signed by the node it names (job_chunk excepted: see protocol.ts). */
function check(raw: unknown): { msg: NodeMessage; signatureValid: boolean } {
  const msg = nodeMessageSchema.parse(raw);
  return { msg, signatureValid: msg.type !== 'job_chunk' && verifyMessage(msg, msg.nodeId) };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function waitUntil(cond: () => boolean, timeoutMs = 3_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out waiting for a condition');
    await sleep(5);
  }
}

const isType =
  <K extends NodeMessage['type']>(type: K, jobId?: string) =>
  (m: NodeMessage): m is Extract<NodeMessage, { type: K }> =>
    m.type === type && (jobId === undefined || ('jobId' in m && m.jobId === jobId));

async function withAgent(
  gwOpts: GatewayOptions,
  agentOpts: Partial<NodeAgentOptions> & { latencyMs?: number },
  body: (gw: FakeGateway, agent: NodeAgent, key: string) => Promise<void>,
): Promise<void> {
  const gw = await FakeGateway.start(gwOpts);
  const key = generatePrivateKey();
  let agent: NodeAgent | undefined;
  try {
    agent = await startNodeAgent({
      gatewayUrl: gw.url,
      privateKey: key,
      operator: OPERATOR,
      runtime: new SimulatedRuntime({ models: ['sim-1'], latencyMs: agentOpts.latencyMs ?? 0 }),
      capacity: 2,
      networkAddress: gw.network,
      logger,
      reconnectBaseMs: 10,
      ...agentOpts,
    });
    await body(gw, agent, key);
  } finally {
    await agent?.stop();
    await gw.close();
  }
}

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
