// The fleet benchmark's gateway (bench/fleet.ts forks it, with --expose-gc): a backbone running the io
// role only, on the real engines, isolated like a test stack (its own PostgreSQL database, MongoDB
// database, Redis key prefix and RabbitMQ prefix; test/helpers/stack.ts), alone in its process so that
// its memory and CPU are measured apart from the load generator's. Dropped with its data on close.
import { performance } from 'node:perf_hooks';
import { TestStack } from '../test/helpers/stack.js';
import { FLEET_MODELS, FLEET_MODEL_VERSION } from './fleet-node.js';
import { serveParent } from './ipc.js';

export interface GatewayInfo {
  url: string;
  stackId: string;
  redisUrl: string;
  redisPrefix: string;
  databaseUrl: string;
  heartbeatTtlMs: number;
  /** PresenceRepository's slotMaxAgeMs as app.ts derives it, for the benchmark's own repository. */
  slotMaxAgeMs: number;
  /** The operator account every simulated node is bound to. */
  operator: string;
  /** Threads of the gateway's verify pool (SIGNATURE_VERIFY_THREADS; 0: signatures checked on its event loop). */
  verifyThreads: number;
}

export interface GatewaySample {
  /** Date.now() when taken. */
  at: number;
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  arrayBuffersBytes: number;
  /** User + system CPU time of the process since it started, in microseconds. */
  cpuMicros: number;
  /** Cumulative event-loop figures (perf_hooks), to diff between two samples. */
  loop: { idle: number; active: number };
  /** WebSockets open on the gateway (registered or not). */
  sockets: number;
}

const gc = (globalThis as { gc?: () => void }).gc;
/** BENCH_FLEET_VERIFY_THREADS (bench/fleet.ts passes it down): the gateway's verify pool; 0 is allowed. */
const VERIFY_THREADS = Number(process.env.BENCH_FLEET_VERIFY_THREADS ?? '1');
let stack: TestStack | null = null;

async function start(): Promise<GatewayInfo> {
  stack = await TestStack.start({
    roles: ['io'],
    config: {
      // Production defaults where the test stack departs from them.
      PG_POOL_MAX: 20,
      JOB_ATTEMPT_TIMEOUT_MS: 60_000,
      JOB_DEADLINE_MS: 300_000,
      SWEEP_INTERVAL_MS: 5_000,
      SIGNATURE_VERIFY_THREADS: VERIFY_THREADS,
      // The whole simulated fleet connects from one address (loopback): the per-address limit, meant for
      // strangers on the internet, would refuse all but the first 64.
      IO_CONNECTIONS_PER_ADDRESS: 1_000_000,
    },
  });
  for (const name of FLEET_MODELS) {
    await stack.backbone.admin.models.putModel({ name, inputPricePerMtok: 10, outputPricePerMtok: 20, contextTokens: 8192, version: FLEET_MODEL_VERSION });
  }
  const c = stack.config;
  return {
    url: stack.url,
    stackId: stack.id,
    redisUrl: c.REDIS_URL,
    redisPrefix: c.REDIS_KEY_PREFIX,
    databaseUrl: c.DATABASE_URL,
    heartbeatTtlMs: c.HEARTBEAT_TTL_MS,
    slotMaxAgeMs: 2 * c.JOB_ATTEMPT_TIMEOUT_MS,
    operator: await stack.operator(),
    verifyThreads: c.SIGNATURE_VERIFY_THREADS,
  };
}

/** Memory (after a full garbage collection when `collect`, so that two samples compare live data) and CPU. */
function sample(collect: boolean): GatewaySample {
  if (collect && gc) {
    // Twice: objects freed by the first collection's finalizers go in the second.
    gc();
    gc();
  }
  const m = process.memoryUsage();
  const cpu = process.cpuUsage();
  const loop = performance.eventLoopUtilization();
  return {
    at: Date.now(),
    rssBytes: m.rss,
    heapUsedBytes: m.heapUsed,
    heapTotalBytes: m.heapTotal,
    externalBytes: m.external,
    arrayBuffersBytes: m.arrayBuffers,
    cpuMicros: cpu.user + cpu.system,
    loop: { idle: loop.idle, active: loop.active },
    sockets: stack?.backbone.app.websocketServer.clients.size ?? 0,
  };
}

async function close(): Promise<void> {
  const s = stack;
  stack = null;
  await s?.close({ keepData: false });
}

const link = serveParent(
  {
    sample: (params: { collect: boolean }) => sample(params.collect),
    close: async () => {
      await close();
      setImmediate(() => process.exit(0));
    },
  },
  () => {
    // The benchmark died: drop the stack's data and leave.
    void close().finally(() => process.exit(1));
  },
);

start().then(
  (info) => link.emit('ready', info),
  (err: unknown) => {
    process.stderr.write(`fleet gateway: start failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    link.emit('failed', err instanceof Error ? err.message : String(err));
    void close().finally(() => process.exit(1));
  },
);
