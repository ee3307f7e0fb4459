// The node agent: keeps one WebSocket to the io gateway, proves the node's key by signing the gateway's
// challenge, sends signed heartbeats, runs dispatched jobs on the runtime (see job-runner.ts) and returns signed
// outcomes, over the socket when it is up and over short HTTP when it is not. Reconnects on its own. Each
// gateway message is decoded in gateway-messages.ts and handled by its entry in messageHandlers below.
// Follows the network config the gateway announces, verified against the pinned network address
// (network-config.ts), and reports the digest it holds in every registration and heartbeat.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { WebSocket } from 'ws';
import { registerSchema } from '../domain/protocol.js';
import { isAddress, type Address } from '../domain/signatures.js';
import { DEFAULT_MODEL_VERSION, type Gpu, type Network } from '../domain/eligibility.js';
import { checkDeclaration, sanitizeModels, type Declaration } from './declaration.js';
import { backoffDelay } from './backoff.js';
import { handleGatewayFrame, type GatewayMessageHandlers } from './gateway-messages.js';
import { gatewayUrls, type GatewayUrls } from './gateway-urls.js';
import { nodeIdentity, type NodeIdentity } from './identity.js';
import { JobRunner, type JobOutcome, type SignedObject } from './job-runner.js';
import { postNodeMessage } from './post-message.js';
import type { InferenceRuntime } from './runtime.js';
import { closeSocket, sendJson } from './socket.js';
import { UnackedResults } from './unacked.js';
import { NetworkConfigKeeper } from './network-config.js';

export const AGENT_VERSION = 'resultity-node/0.1.0';

export interface NodeAgentOptions {
  /** http(s) base URL of the backbone; the socket is ws(s)://<host>/io/ws, the HTTP fallback POST /io/results. */
  gatewayUrl: string;
  /** 32-byte secp256k1 key in hex; its address is the node id. Never logged. */
  privateKey: string;
  /** The operator account (uuid) the node is bound to. */
  operator: string;
  /**
   * The operator's consent to bind this node, when the operator did not enrol its address beforehand: a
   * token made for this address (account API or `resultity admin node-enrolment-token`).
   */
  enrolmentToken?: string;
  runtime: InferenceRuntime;
  /** Models to advertise; by default the runtime's list, refreshed at every heartbeat. */
  models?: string[];
  /** Maximum concurrent jobs (1..1024). */
  capacity: number;
  /**
   * What the node declares for eligibility (domain/eligibility.ts), as its operator configured it: the
   * agent measures none of it. Network default mainnet; region default none (it then gets no job that
   * asks for a region); GPU default none (0 MiB); each model's version default '1'.
   */
  network?: Network;
  region?: string | null;
  gpu?: Gpu;
  /** Version run per model name; models not listed run version '1'. */
  modelVersions?: Readonly<Record<string, string>>;
  /** Used until the gateway says otherwise in `registered`. Default 10 000. */
  heartbeatIntervalMs?: number;
  /** The network key's address; jobs not signed by it are refused. Unset: pinned from the first gateway challenge. */
  networkAddress?: string;
  logger: Logger;
  /** Reconnect when the socket drops. Default true. */
  reconnect?: boolean;
  /** First reconnect delay; doubles per failure up to reconnectMaxMs, with jitter. Default 500. */
  reconnectBaseMs?: number;
  /** Default 30 000. */
  reconnectMaxMs?: number;
  /** How long a connection may take to get from open to registered before it is dropped. Default 15 000. */
  registerTimeoutMs?: number;
  /** How long stop() waits for running jobs before aborting them. Default 30 000. */
  drainTimeoutMs?: number;
  /**
   * Where the last good network config is kept across restarts (written on each version adopted, read at
   * start). Unset: kept in memory only.
   */
  networkConfigFile?: string;
}

export interface NodeAgent {
  readonly nodeId: Address;
  /** Jobs currently running on the runtime. */
  running(): number;
  /** Graceful: refuse new jobs, finish (or after drainTimeoutMs abort) running ones, close the socket. */
  stop(): Promise<void>;
  /** Abrupt, like a crashed process: drop the socket at once and abandon running jobs without a word. */
  kill(): void;
  /** Results delivered to the gateway (over the socket or HTTP) since start. */
  readonly completed: number;
  /** The network config the agent holds (its last good one), null before it has any. */
  networkConfig(): { version: number; digest: string } | null;
}

const MIN_HEARTBEAT_MS = 10;

/** Connects, registers and resolves once the gateway has accepted the node; rejects if it refuses. */
export async function startNodeAgent(opts: NodeAgentOptions): Promise<NodeAgent> {
  const identity = nodeIdentity(opts.privateKey);
  if (!Number.isInteger(opts.capacity) || opts.capacity < 1 || opts.capacity > 1024) {
    throw new Error(`capacity must be an integer from 1 to 1024, got ${opts.capacity}`);
  }
  if (!registerSchema.shape.operator.safeParse(opts.operator).success) throw new Error(`operator must be a uuid, got ${opts.operator}`);
  const networkAddress = opts.networkAddress?.toLowerCase();
  if (networkAddress !== undefined && !isAddress(networkAddress)) throw new Error(`network address must be 0x and 40 hex digits, got ${opts.networkAddress}`);
  const declared = checkDeclaration(opts);
  const urls = gatewayUrls(opts.gatewayUrl);
  const logger = opts.logger.child({ nodeId: identity.nodeId });

  let models: string[];
  try {
    models = sanitizeModels(opts.models ?? (await opts.runtime.models()), logger);
  } catch (err) {
    throw new Error(`cannot list the runtime's models: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }

  const agent = new Agent(opts, declared, identity, urls, networkAddress, models, logger);
  await agent.start();
  return {
    nodeId: identity.nodeId,
    running: () => agent.running,
    stop: () => agent.stop(),
    kill: () => agent.kill(),
    get completed() {
      return agent.completed;
    },
    networkConfig: () => {
      const c = agent.configs.current;
      return c ? { version: c.version, digest: c.digest } : null;
    },
  };
}

class Agent {
  completed = 0;
  private socket: WebSocket | undefined;
  private registered = false; // on the current socket
  private everRegistered = false;
  private stopping = false;
  private killed = false;
  private lastError: string | undefined;
  private reconnectAttempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private registerTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeatIntervalMs: number;
  private heartbeatBusy = false;
  private pongPending = false;
  private stopPromise: Promise<void> | undefined;
  private startSettlers: { resolve: () => void; reject: (err: Error) => void } | undefined;
  // Aborted on kill or at the end of stop: cancels HTTP deliveries still retrying.
  private readonly lifetime = new AbortController();
  private readonly runner: JobRunner;
  private readonly unacked = new UnackedResults();
  private readonly reconnect: boolean;
  readonly configs: NetworkConfigKeeper;

  constructor(
    private readonly opts: NodeAgentOptions,
    private readonly declared: Declaration,
    private readonly identity: NodeIdentity,
    private readonly urls: GatewayUrls,
    /** The network key's address: as configured, or else pinned from the first gateway challenge (trust on first use). */
    private networkAddress: string | undefined,
    private advertised: string[],
    private readonly logger: Logger,
  ) {
    this.reconnect = opts.reconnect ?? true;
    this.heartbeatIntervalMs = opts.heartbeatIntervalMs ?? 10_000;
    this.configs = new NetworkConfigKeeper({
      url: urls.config,
      file: opts.networkConfigFile,
      logger,
      onAdopt: (config) => {
        // A new heartbeat interval applies at once, not at the next registration.
        const interval = Math.max(MIN_HEARTBEAT_MS, config.document.heartbeat.intervalMs);
        if (interval !== this.heartbeatIntervalMs && this.socket && this.registered) {
          this.heartbeatIntervalMs = interval;
          this.startHeartbeats(this.socket);
        }
      },
    });
    this.runner = new JobRunner({
      identity,
      runtime: opts.runtime,
      capacity: opts.capacity,
      networkAddress: () => this.networkAddress,
      logger,
      servedModels: () => this.advertised,
      deliver: (outcome, deadline) => this.deliver(outcome, deadline),
      sendChunk: (chunk) => {
        // Socket only: a chunk is worthless late, and the gateway fails an attempt whose socket dropped.
        const ws = this.socket;
        if (ws && this.registered && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(chunk));
      },
    });
  }

  get running(): number {
    return this.runner.running;
  }

  async start(): Promise<void> {
    await this.configs.load();
    if (this.networkAddress !== undefined) this.configs.trust(this.networkAddress);
    return new Promise<void>((resolve, reject) => {
      this.startSettlers = { resolve, reject };
      this.connect();
    });
  }

  stop(): Promise<void> {
    this.stopPromise ??= this.shutdown();
    return this.stopPromise;
  }

  kill(): void {
    if (this.killed) return;
    this.killed = true;
    this.halt();
    this.logger.warn('node agent killed');
  }

  private async shutdown(): Promise<void> {
    if (this.killed) return;
    this.stopping = true;
    clearTimeout(this.reconnectTimer);
    this.logger.info('node agent stopping');
    // An empty model list takes the node out of the readiness index at once, instead of having the
    // scheduler keep dispatching jobs that would only be refused while we drain.
    const ws = this.socket;
    if (ws && this.registered) await sendJson(ws, this.heartbeat());
    await this.runner.drain(this.opts.drainTimeoutMs ?? 30_000);
    this.clearTimers();
    this.lifetime.abort();
    await closeSocket(this.socket, 'node stopping');
    this.logger.info({ completed: this.completed }, 'node agent stopped');
  }

  private connect(): void {
    const ws = new WebSocket(this.urls.socket, { handshakeTimeout: 10_000, maxPayload: 16 * 1024 * 1024 });
    this.socket = ws;
    this.registered = false;
    ws.on('open', () => {
      this.logger.debug({ url: this.urls.socket }, 'connected to the gateway');
      // A gateway that accepts the socket but never completes the handshake must not hold us forever.
      this.registerTimer = setTimeout(() => {
        if (ws === this.socket && !this.registered) {
          this.lastError = 'the gateway did not complete registration in time';
          ws.terminate();
        }
      }, this.opts.registerTimeoutMs ?? 15_000);
    });
    const handlers = this.messageHandlers(ws);
    ws.on('message', (data) => {
      if (ws === this.socket) handleGatewayFrame(data, handlers, this.logger);
    });
    ws.on('pong', () => {
      this.pongPending = false;
    });
    ws.on('error', (err) => {
      this.lastError = err.message;
      this.logger.warn({ err: err.message }, 'gateway socket error');
    });
    ws.on('close', (code, reason) => this.onClose(ws, code, reason.toString()));
  }

  /** What the agent does with each message the gateway sends on `ws` (gateway-messages.ts). */
  private messageHandlers(ws: WebSocket): GatewayMessageHandlers {
    return {
      challenge: (msg) => this.onChallenge(ws, msg.challenge, msg.network),
      registered: (msg) => {
        this.onRegistered(ws, msg.nodeId, msg.heartbeatIntervalMs);
        this.followConfig(msg.config);
      },
      heartbeat_ack: (msg) => this.followConfig(msg.config),
      result_ack: (msg) => {
        this.unacked.ack(msg.jobId, msg.attempt);
        if (!msg.accepted) this.logger.warn({ jobId: msg.jobId, attempt: msg.attempt, reason: msg.reason }, 'gateway did not accept a result');
      },
      error: (msg) => this.onGatewayError(ws, msg.code, msg.message),
      abort: (msg) => this.runner.abort(msg.jobId, msg.attempt, msg.reason),
      // The schema accepted `raw` as a job, so it is an object carrying a signature string.
      job: (msg, raw) => this.runner.accept(raw as SignedObject, msg),
    };
  }

  private onChallenge(ws: WebSocket, challenge: string, network: string): void {
    if (this.networkAddress === undefined) {
      // No --network-address: pin the network the first gateway announces, so that from here on a job
      // not signed by that key (or a later gateway of another network) is refused.
      this.networkAddress = network;
      this.logger.info({ network }, 'pinned the network key announced by the gateway');
      this.configs.trust(network);
    }
    if (this.networkAddress !== undefined && network !== this.networkAddress) {
      return this.turnedDown(ws, `the gateway serves network ${network}, not the expected ${this.networkAddress}`, 1008, 'wrong network');
    }
    void sendJson(
      ws,
      this.identity.sign({
        type: 'register' as const,
        nodeId: this.identity.nodeId,
        operator: this.opts.operator,
        ...(this.opts.enrolmentToken ? { enrolmentToken: this.opts.enrolmentToken } : {}),
        challenge,
        ts: Date.now(),
        agentVersion: AGENT_VERSION,
        runtime: this.opts.runtime.name.slice(0, 64),
        ...this.status(),
      }),
    );
  }

  private onRegistered(ws: WebSocket, nodeId: string, intervalMs: number): void {
    if (nodeId !== this.identity.nodeId) this.logger.warn({ registeredAs: nodeId }, 'gateway registered a different node id');
    clearTimeout(this.registerTimer);
    this.registered = true;
    this.reconnectAttempt = 0;
    if (intervalMs > 0) this.heartbeatIntervalMs = Math.max(MIN_HEARTBEAT_MS, intervalMs);
    this.startHeartbeats(ws);
    this.logger.info({ models: this.advertised, capacity: this.opts.capacity }, 'registered with the gateway');
    if (!this.everRegistered) {
      this.everRegistered = true;
      this.startSettlers?.resolve();
      this.startSettlers = undefined;
    }
  }

  private followConfig(announced: { version: number; digest: string } | undefined): void {
    if (announced) void this.configs.follow(announced, this.networkAddress);
  }

  private onGatewayError(ws: WebSocket, code: string, message: string): void {
    if (this.registered) {
      this.logger.warn({ code, message }, 'gateway reported an error');
      return;
    }
    this.turnedDown(ws, `registration refused (${code}): ${message}`, 1000, 'registration refused');
  }

  /**
   * The gateway turned this connection down (`problem`). Before the first registration the start fails with
   * it; on a later connection (a frozen node, a gateway of another network) the socket closes and the
   * reconnection keeps retrying with backoff.
   */
  private turnedDown(ws: WebSocket, problem: string, code: number, reason: string): void {
    if (!this.everRegistered) return this.failStart(new Error(problem));
    this.logger.error(problem);
    this.lastError = problem;
    ws.close(code, reason);
  }

  private onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.socket) return;
    this.socket = undefined;
    this.registered = false;
    this.clearTimers();
    if (this.killed || this.stopping) return;
    this.logger.warn({ code, reason, lastError: this.lastError }, 'gateway connection closed');
    this.redeliverUnacked();
    if (!this.reconnect) {
      if (!this.everRegistered) this.failStart(new Error(`could not register with the gateway at ${this.urls.socket}: ${this.lastError ?? `socket closed (${code})`}`));
      return;
    }
    const wait = backoffDelay(this.reconnectAttempt++, { baseMs: this.opts.reconnectBaseMs ?? 500, maxMs: this.opts.reconnectMaxMs ?? 30_000 });
    this.logger.info({ inMs: wait }, 'reconnecting to the gateway');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.stopping) this.connect();
    }, wait);
  }

  private failStart(err: Error): void {
    this.halt();
    this.startSettlers?.reject(err);
    this.startSettlers = undefined;
  }

  /** Stops everything at once: timers, running jobs (abandoned without a word), HTTP deliveries, the socket. */
  private halt(): void {
    this.stopping = true;
    this.clearTimers();
    this.runner.abandon();
    this.lifetime.abort();
    this.socket?.terminate();
  }

  private startHeartbeats(ws: WebSocket): void {
    clearInterval(this.heartbeatTimer);
    this.pongPending = false;
    this.heartbeatTimer = setInterval(() => this.tick(ws), this.heartbeatIntervalMs);
  }

  private tick(ws: WebSocket): void {
    if (ws !== this.socket || !this.registered) return;
    // WebSocket pings catch a half-open connection (gateway host gone without a FIN), which a
    // one-way heartbeat never would.
    if (this.pongPending) {
      this.lastError = 'the gateway stopped answering pings';
      ws.terminate();
      return;
    }
    this.pongPending = true;
    ws.ping();
    void this.sendHeartbeat(ws);
  }

  private async sendHeartbeat(ws: WebSocket): Promise<void> {
    if (this.heartbeatBusy) return;
    this.heartbeatBusy = true;
    try {
      await this.refreshModels();
      if (ws === this.socket && this.registered) await sendJson(ws, this.heartbeat());
    } finally {
      this.heartbeatBusy = false;
    }
  }

  private heartbeat(): SignedObject {
    return this.identity.sign({
      type: 'heartbeat' as const,
      nodeId: this.identity.nodeId,
      ts: Date.now(),
      nonce: randomUUID(),
      ...this.status(),
    });
  }

  /** What registrations and heartbeats both report: eligibility (no models while stopping), load, config held. */
  private status() {
    const { network, region, gpu, versions } = this.declared;
    const models = this.stopping ? [] : this.advertised.map((name) => ({ name, version: versions[name] ?? DEFAULT_MODEL_VERSION }));
    const capabilities = this.opts.runtime.capabilities ?? [];
    // Declared only when there are some, so that an agent without any speaks as agents did before them.
    const declared = { network, region, gpu, models, ...(capabilities.length > 0 ? { capabilities: [...capabilities] } : {}) };
    return { ...declared, capacity: this.opts.capacity, running: this.runner.running, configDigest: this.configs.digest };
  }

  private async refreshModels(): Promise<void> {
    if (this.opts.models !== undefined || this.stopping) return;
    try {
      this.advertised = sanitizeModels(await this.opts.runtime.models(), this.logger);
    } catch (err) {
      // Advertise nothing rather than models the runtime may not be able to serve.
      this.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'cannot list the runtime models; advertising none');
      this.advertised = [];
    }
  }

  private async deliver(outcome: JobOutcome, deadline: number): Promise<void> {
    const ws = this.socket;
    if (ws && this.registered && (await sendJson(ws, outcome))) {
      if (outcome.type === 'result') {
        this.completed++;
        this.unacked.add(outcome, deadline);
      }
      return;
    }
    if (this.killed) return;
    const ok = await this.post(outcome, deadline);
    if (ok && outcome.type === 'result') this.completed++;
  }

  private post(outcome: JobOutcome, deadline: number): Promise<boolean> {
    return postNodeMessage({ url: this.urls.results, message: outcome, deadline, signal: this.lifetime.signal, logger: this.logger });
  }

  /** Re-sends over HTTP the results the dropped socket may have lost; they were already counted. */
  private redeliverUnacked(): void {
    for (const { message, deadline } of this.unacked.takeAll()) void this.post(message, deadline);
  }

  private clearTimers(): void {
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.registerTimer);
    clearInterval(this.heartbeatTimer);
    this.reconnectTimer = undefined;
    this.registerTimer = undefined;
    this.heartbeatTimer = undefined;
  }
}
