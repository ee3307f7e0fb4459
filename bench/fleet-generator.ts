// A load generator of the fleet benchmark (bench/fleet.ts forks one or more, each with its share of the
// fleet): SIMULATED nodes (bench/fleet-node.ts), each on its own WebSocket to the gateway, registering
// with its own key and then sending a signed heartbeat, with a WebSocket ping, at the interval the
// gateway announces, as the real agent (src/node-agent/agent.ts) does. It never reconnects a node once
// registered: a socket the gateway closes is counted, not hidden.
//
// Its own CPU is the other side that can bound the run (every heartbeat is a secp256k1 signature), so it
// reports how late its heartbeats left against their schedule, and its CPU and event-loop use.
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { heartbeatFrame, newFleetNode, registerFrame, type FleetNode } from './fleet-node.js';
import { serveParent } from './ipc.js';

export interface ConnectParams {
  url: string;
  operator: string;
  /** Handshakes (connect, challenge, register, registered) in flight at once in this generator. */
  concurrency: number;
  /** Tries per node before it counts as failed (a real agent retries too, with backoff). */
  attempts: number;
  timeoutMs: number;
}

export interface ConnectResult {
  registered: number;
  failed: number;
  /** Tries cut short, and nodes never tried, because the benchmark stopped the registration phase. */
  abandoned: number;
  notTried: number;
  retries: number;
  ms: number;
  /** Why nodes finally failed, with counts. */
  failures: Record<string, number>;
  /** Why single tries failed (retried or not), with counts. */
  tryFailures: Record<string, number>;
  heartbeatIntervalMs: number;
}

export interface WindowStats {
  windowMs: number;
  /** Nodes registered, and sockets still open, at the end of the window. */
  registered: number;
  open: number;
  sent: number;
  acked: number;
  /** Heartbeats the gateway answered with an error, by code. */
  refused: Record<string, number>;
  /** Acks received in each whole second of the window. */
  ackedPerSecond: number[];
  /** Heartbeat sent -> ack received, ms, sorted. */
  ackLatencyMs: Float64Array;
  /** How long after its scheduled time each heartbeat left (signing included), ms, sorted. */
  lateMs: Float64Array;
  /** Sockets closed during the window, by "code reason". */
  closes: Record<string, number>;
  /** Pings still unanswered when the next heartbeat was due (the agent would drop such a connection). */
  pongsMissed: number;
  cpuCores: number;
  elu: number;
}

interface SimNode {
  readonly node: FleetNode;
  ws: WebSocket | null;
  registered: boolean;
  /** Send times (performance.now()) of heartbeats not answered yet, oldest first: answers come in order. */
  unanswered: number[];
  pongPending: boolean;
}

type GatewayFrame = { type: string; challenge?: string; code?: string; heartbeatIntervalMs?: number };

/** Granularity of the heartbeat schedule. */
const SLOT_MS = 50;

let fleet: SimNode[] = [];
/** Set by `stopConnecting`: no new node is tried, and the tries in flight are cut short. */
let connecting: { stopped: boolean; inFlight: Set<(reason: string) => void> } = { stopped: false, inFlight: new Set() };
const ABANDONED = 'abandoned: the benchmark stopped the registration phase';
let wheel: HeartbeatWheel | null = null;
let heartbeatIntervalMs = 0;

/** Counters of the measured window; null outside it. */
let window: {
  startedAt: number;
  cpu: NodeJS.CpuUsage;
  loop: ReturnType<typeof performance.eventLoopUtilization>;
  sent: number;
  acked: number;
  refused: Record<string, number>;
  ackedPerSecond: number[];
  ackLatencyMs: number[];
  lateMs: number[];
  closes: Record<string, number>;
  pongsMissed: number;
} | null = null;

const bump = (counts: Record<string, number>, key: string) => {
  counts[key] = (counts[key] ?? 0) + 1;
};

/**
 * Sends each registered node's heartbeat once per interval, at a phase drawn at random when it
 * registers, so that the fleet's heartbeats spread evenly over the interval instead of arriving in the
 * waves the nodes connected in. Schedules against the clock, not the previous send: a generator that
 * falls behind shows it as lateness, it does not quietly send fewer heartbeats.
 */
class HeartbeatWheel {
  private readonly slots: SimNode[][];
  private readonly t0 = performance.now();
  private k = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(intervalMs: number) {
    this.slots = Array.from({ length: Math.max(1, Math.round(intervalMs / SLOT_MS)) }, () => []);
    this.schedule();
  }

  add(s: SimNode): void {
    this.slots[Math.floor(Math.random() * this.slots.length)]!.push(s);
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private schedule(): void {
    const due = this.t0 + (this.k + 1) * SLOT_MS;
    this.timer = setTimeout(() => this.tick(), Math.max(0, due - performance.now()));
  }

  private tick(): void {
    const now = performance.now();
    while (this.t0 + (this.k + 1) * SLOT_MS <= now) {
      this.k++;
      const scheduled = this.t0 + this.k * SLOT_MS;
      for (const s of this.slots[this.k % this.slots.length]!) beat(s, scheduled);
    }
    this.schedule();
  }
}

function beat(s: SimNode, scheduled: number): void {
  const ws = s.ws;
  if (!s.registered || !ws || ws.readyState !== WebSocket.OPEN) return;
  if (s.pongPending && window) window.pongsMissed++;
  s.pongPending = true;
  ws.ping();
  ws.send(JSON.stringify(heartbeatFrame(s.node)));
  const sentAt = performance.now();
  s.unanswered.push(sentAt);
  if (window) {
    window.sent++;
    window.lateMs.push(sentAt - scheduled);
  }
}

/** A frame on a registered node's socket: after registration it only ever sends heartbeats, so every answer is to one. */
function onFrame(s: SimNode, msg: GatewayFrame): void {
  if (msg.type !== 'heartbeat_ack' && msg.type !== 'error') return;
  const sentAt = s.unanswered.shift();
  if (!window) return;
  if (msg.type === 'error') return bump(window.refused, msg.code ?? 'unknown');
  const now = performance.now();
  window.acked++;
  const second = Math.floor((now - window.startedAt) / 1000);
  window.ackedPerSecond[second] = (window.ackedPerSecond[second] ?? 0) + 1;
  if (sentAt !== undefined) window.ackLatencyMs.push(now - sentAt);
}

/** One try: open a socket, answer the challenge, wait for `registered`. Rejects with a short reason. */
function registerOnce(s: SimNode, p: ConnectParams): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${p.url.replace(/^http/, 'ws')}/io/ws`, { perMessageDeflate: false, handshakeTimeout: p.timeoutMs });
    let settled = false;
    const fail = (reason: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      connecting.inFlight.delete(fail);
      ws.terminate();
      reject(new Error(reason));
    };
    const timer = setTimeout(() => fail(`not registered within ${p.timeoutMs} ms`), p.timeoutMs);
    connecting.inFlight.add(fail);
    ws.on('message', (data: Buffer) => {
      const msg = JSON.parse(data.toString('utf8')) as GatewayFrame;
      if (s.registered) return onFrame(s, msg);
      if (msg.type === 'challenge') ws.send(JSON.stringify(registerFrame(s.node, p.operator, msg.challenge ?? '')));
      else if (msg.type === 'error') fail(`refused: ${msg.code ?? 'unknown'}`);
      else if (msg.type === 'registered' && !settled) {
        settled = true;
        clearTimeout(timer);
        connecting.inFlight.delete(fail);
        s.ws = ws;
        s.registered = true;
        heartbeatIntervalMs ||= msg.heartbeatIntervalMs ?? 10_000;
        wheel ??= new HeartbeatWheel(heartbeatIntervalMs);
        wheel.add(s);
        resolve();
      }
    });
    ws.on('pong', () => {
      s.pongPending = false;
    });
    ws.on('close', (code: number, reason: Buffer) => {
      if (!settled) return fail(`closed ${code} ${reason.toString()}`.trim());
      s.registered = false;
      s.ws = null;
      if (window) bump(window.closes, `${code} ${reason.toString()}`.trim());
    });
    // Before registration: the reason the try failed ('close' may not follow a failed connect).
    // After it, 'close' follows and is what counts.
    ws.on('error', (err: Error) => fail(err.message.replace(/127\.0\.0\.1:\d+/g, '127.0.0.1')));
  });
}

export interface Progress {
  registered: number;
  failed: number;
  lastFailure: string | null;
}

async function connect(p: ConnectParams, progress: (p: Progress) => void): Promise<ConnectResult> {
  const started = performance.now();
  connecting = { stopped: false, inFlight: new Set() };
  const failures: Record<string, number> = {};
  const tryFailures: Record<string, number> = {};
  let registered = 0;
  let failed = 0;
  let abandoned = 0;
  let retries = 0;
  let next = 0;
  let lastFailure: string | null = null;
  const ticker = setInterval(() => progress({ registered, failed, lastFailure }), 1000);
  const worker = async () => {
    while (next < fleet.length && !connecting.stopped) {
      const s = fleet[next++]!;
      for (let attempt = 1; ; attempt++) {
        try {
          await registerOnce(s, p);
          registered++;
          break;
        } catch (err) {
          const reason = err instanceof Error ? err.message : String(err);
          if (reason === ABANDONED) {
            abandoned++;
            break;
          }
          bump(tryFailures, reason);
          lastFailure = reason;
          if (attempt >= p.attempts || connecting.stopped) {
            bump(failures, reason);
            failed++;
            break;
          }
          retries++;
          await new Promise((r) => setTimeout(r, 500 * attempt));
          if (connecting.stopped) {
            abandoned++;
            break;
          }
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(p.concurrency, fleet.length) }, worker));
  clearInterval(ticker);
  progress({ registered, failed, lastFailure });
  return { registered, failed, abandoned, notTried: fleet.length - next, retries, ms: performance.now() - started, failures, tryFailures, heartbeatIntervalMs };
}

/** Ends the registration phase early: the nodes registered stay, the rest are given up. */
function stopConnecting(): void {
  connecting.stopped = true;
  for (const fail of [...connecting.inFlight]) fail(ABANDONED);
}

function startWindow(): void {
  window = {
    startedAt: performance.now(),
    cpu: process.cpuUsage(),
    loop: performance.eventLoopUtilization(),
    sent: 0,
    acked: 0,
    refused: {},
    ackedPerSecond: [],
    ackLatencyMs: [],
    lateMs: [],
    closes: {},
    pongsMissed: 0,
  };
}

function endWindow(): WindowStats {
  const w = window;
  if (!w) throw new Error('no window open');
  window = null;
  const windowMs = performance.now() - w.startedAt;
  const cpu = process.cpuUsage(w.cpu);
  const whole = Math.floor(windowMs / 1000);
  return {
    windowMs,
    registered: fleet.filter((s) => s.registered).length,
    open: fleet.filter((s) => s.ws?.readyState === WebSocket.OPEN).length,
    sent: w.sent,
    acked: w.acked,
    refused: w.refused,
    ackedPerSecond: Array.from({ length: whole }, (_, i) => w.ackedPerSecond[i] ?? 0),
    ackLatencyMs: Float64Array.from(w.ackLatencyMs).sort(),
    lateMs: Float64Array.from(w.lateMs).sort(),
    closes: w.closes,
    pongsMissed: w.pongsMissed,
    cpuCores: (cpu.user + cpu.system) / 1000 / windowMs,
    elu: performance.eventLoopUtilization(w.loop).utilization,
  };
}

function stop(): void {
  wheel?.stop();
  for (const s of fleet) s.ws?.terminate();
}

const link = serveParent(
  {
    /** Makes this generator's nodes (their keys: the CPU-heavy part, done before any connection). */
    keys: (p: { first: number; count: number }) => {
      const started = performance.now();
      fleet = Array.from({ length: p.count }, (_, i) => ({ node: newFleetNode(p.first + i), ws: null, registered: false, unanswered: [], pongPending: false }));
      return { ms: performance.now() - started, nodeIds: fleet.map((s) => s.node.nodeId) };
    },
    connect: (p: ConnectParams) => connect(p, (progress) => link.emit('progress', progress)),
    stopConnecting: () => stopConnecting(),
    windowStart: () => startWindow(),
    windowEnd: () => endWindow(),
    stop: () => {
      stop();
      setTimeout(() => process.exit(0), 100);
    },
  },
  () => {
    stop();
    process.exit(1);
  },
);
