// A minimal io gateway for the node agent's unit tests (test/unit/node-agent*.test.ts): challenge,
// registration check, job dispatch, the HTTP result fallback and GET /io/config, with switches to make
// it refuse registrations, announce another network or acknowledge results, so that each gateway
// message the agent handles can be exercised without a backbone.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { nodeMessageSchema, registerSchema, type JobDispatch, type NodeMessage } from '../../src/domain/protocol.js';
import { addressOf, generatePrivateKey, signMessage, verifyMessage } from '../../src/domain/signatures.js';
import { startNodeAgent, type NodeAgent, type NodeAgentOptions } from '../../src/node-agent/agent.js';
import { SimulatedRuntime } from '../../src/node-agent/runtime.simulated.js';

export const OPERATOR = '6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b';
export const logger = pino({ level: 'silent' });

export interface GatewayOptions {
  /** Answer registration with an error instead of `registered`. */
  refuse?: boolean;
  heartbeatIntervalMs?: number;
  /** The network announced in the challenge; the gateway's own key by default. */
  announce?: string;
  /** Answer every result received over the socket with an accepting result_ack. */
  ackResults?: boolean;
}

/** A minimal io gateway: challenge, registration check, job dispatch, and the HTTP result fallback. */
export class FakeGateway {
  readonly networkKey = generatePrivateKey();
  readonly network = addressOf(this.networkKey);
  /** Every node message received over the socket, in order, with a flag saying whether its signature held. */
  readonly received: { msg: NodeMessage; signatureValid: boolean }[] = [];
  readonly posted: { msg: NodeMessage; signatureValid: boolean }[] = [];
  readonly sockets: WebSocket[] = [];
  registrations = 0;
  /** GET /io/config requests received (answered 404: these tests check that the agent asks, not what it adopts). */
  configRequests = 0;
  /** How each socket was closed, in order, as the gateway saw it. */
  readonly closes: { code: number; reason: string }[] = [];
  private readonly http: Server;
  private readonly wss: WebSocketServer;

  private constructor(
    /** May be changed while running: it applies from the next message or connection. */
    readonly opts: GatewayOptions,
  ) {
    this.http = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method === 'POST' && req.url === '/io/results') {
          this.posted.push(check(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"accepted":true}');
        } else if (req.method === 'GET' && req.url === '/io/config') {
          this.configRequests++;
          res.writeHead(404).end();
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
    ws.on('close', (code, reason) => this.closes.push({ code, reason: reason.toString() }));
    const challenge = randomBytes(16).toString('hex');
    ws.on('message', (data: Buffer) => {
      const entry = check(JSON.parse(data.toString('utf8')));
      this.received.push(entry);
      const { msg } = entry;
      if (msg.type === 'result' && this.opts.ackResults) ws.send(JSON.stringify({ type: 'result_ack', jobId: msg.jobId, attempt: msg.attempt, accepted: true }));
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

  /** Sends a frame as it is (an object is sent as JSON) to the latest connection. */
  send(frame: unknown): void {
    const ws = this.sockets.at(-1);
    assert.ok(ws);
    ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }
}

/** Every node message must parse, and is signed by the node it names (job_chunk excepted: see protocol.ts). */
export function check(raw: unknown): { msg: NodeMessage; signatureValid: boolean } {
  const msg = nodeMessageSchema.parse(raw);
  return { msg, signatureValid: msg.type !== 'job_chunk' && verifyMessage(msg, msg.nodeId) };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function waitUntil(cond: () => boolean, timeoutMs = 3_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out waiting for a condition');
    await sleep(5);
  }
}

export const isType =
  <K extends NodeMessage['type']>(type: K, jobId?: string) =>
  (m: NodeMessage): m is Extract<NodeMessage, { type: K }> =>
    m.type === type && (jobId === undefined || ('jobId' in m && m.jobId === jobId));

export async function withAgent(
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
