// `npm run bench` (a section) or `npm run bench:fleet`: a fleet of SIMULATED nodes (10,000 by default)
// connected to one io gateway, heartbeating at the interval the gateway announces (10 s with the default
// 30 s presence TTL). Measures, in one run:
//   - the time to register the whole fleet (at most BENCH_FLEET_CONNECT_CONCURRENCY handshakes in flight);
//   - the gateway's memory (RSS and V8 heap, after a full GC) before any node and with the fleet
//     registered: per node = delta / nodes;
//   - heartbeats acknowledged per second over a fixed window, the gateway's and the generators' CPU,
//     refusals and dropped sockets;
//   - during that window, reservation latency (reserve + release through the real PresenceRepository, the
//     scheduler's code path) against the fleet's readiness pools, beside raw Redis operations on the same
//     server (an ioredis loop, and redis-benchmark), as ratios.
// Writes its section of BENCHMARKS.md (bench/fleet-report.ts).
//
// Processes: the gateway runs in a child of its own (bench/fleet-gateway.ts, the io role only) so that its
// memory and CPU are its own; the nodes run in BENCH_FLEET_GENERATORS children (bench/fleet-generator.ts);
// this process orchestrates and runs the Redis latency loops. Loopback only. The whole run stops by itself
// within BENCH_FLEET_DEADLINE_S.
//
// NOT a test: it asserts nothing about speed. It exits 1 when the run could not be made (the gateway did not
// start, no node registered).
//
// Knobs (environment): BENCH_FLEET_NODES (10000), BENCH_FLEET_GENERATORS (2), BENCH_FLEET_CONNECT_CONCURRENCY
// (200, over all generators), BENCH_FLEET_WINDOW_S (60), BENCH_FLEET_RESERVATIONS (4000 reserve+release
// pairs, and as many of each raw operation), BENCH_FLEET_STALL_S (30: registration stops when no node has
// registered for that long), BENCH_FLEET_CONNECT_BUDGET_S (240: and at the latest then),
// BENCH_FLEET_DEADLINE_S (600: the whole run), BENCH_FLEET_GATEWAY_FLAGS (node flags for the gateway
// process), BENCH_FLEET_VERIFY_THREADS (1: the gateway's signature verify pool, SIGNATURE_VERIFY_THREADS;
// 0 checks signatures on its event loop), BENCH_OUTPUT (as for e2e.ts).
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { createPool } from '../src/postgres/db.js';
import { enrolNodes } from '../src/postgres/nodes.repository.js';
import { createRedis, LuaScript, RedisKeys } from '../src/redis/client.js';
import { EligibilityMirror } from '../src/redis/eligibility.mirror.js';
import { PresenceRepository } from '../src/redis/presence.repository.js';
import { EligibilityService } from '../src/network/eligibility.service.js';
import { eligibilityStore } from '../src/postgres/eligibility.store.js';
import type { Placement } from '../src/domain/eligibility.js';
import { Child } from './ipc.js';
import { labelProcesses, usageMeter } from './load.js';
import { describeHost, redisVersion } from './machine.js';
import { writeSection } from './report.js';
import { FLEET_MODELS } from './fleet-node.js';
import { measureSignatureRates } from './signature-rates.js';
import type { GatewayInfo, GatewaySample } from './fleet-gateway.js';
import type { ConnectParams, ConnectResult, Progress, WindowStats } from './fleet-generator.js';
import { FLEET_SECTION, renderFleetMarkdown, renderFleetTable, type FleetReport, type RedisBenchmarkRow } from './fleet-report.js';
import { envNumber, runBench } from './run.js';

const NODES = envNumber('BENCH_FLEET_NODES', 10_000, { integer: true });
const GENERATORS = envNumber('BENCH_FLEET_GENERATORS', 2, { integer: true });
const CONNECT_CONCURRENCY = envNumber('BENCH_FLEET_CONNECT_CONCURRENCY', 200, { integer: true });
const WINDOW_S = envNumber('BENCH_FLEET_WINDOW_S', 60, { integer: true });
const RESERVATIONS = envNumber('BENCH_FLEET_RESERVATIONS', 4_000, { integer: true });
const DEADLINE_S = envNumber('BENCH_FLEET_DEADLINE_S', 600, { integer: true });
const STALL_S = envNumber('BENCH_FLEET_STALL_S', 30, { integer: true });
const CONNECT_BUDGET_S = envNumber('BENCH_FLEET_CONNECT_BUDGET_S', 240, { integer: true });
/** Node flags for the gateway process besides --expose-gc, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to see where its time goes. */
const GATEWAY_FLAGS = (process.env.BENCH_FLEET_GATEWAY_FLAGS ?? '').split(' ').filter(Boolean);
const OUTPUT = process.env.BENCH_OUTPUT ?? fileURLToPath(new URL('../../BENCHMARKS.md', import.meta.url));
/** The latency loops run in this many blocks, each system in turn, so that a burst of other load on the shared machine hits all of them. */
const BLOCKS = 4;
const REGISTER_ATTEMPTS = 3;
const REGISTER_TIMEOUT_MS = 20_000;
/** The placement reserved for: the first model on mainnet, any region, public: the fleet's largest pool. */
const PLACEMENT: Placement = { network: 'mainnet', model: FLEET_MODELS[0], region: null, subcloud: null };
/** The floor of any script round trip: what RESERVE and RELEASE cost beyond it is their own work. */
const TRIVIAL_SOURCE = 'return 1';
const TRIVIAL_SCRIPT = new LuaScript(TRIVIAL_SOURCE);
const TRIVIAL_SHA = createHash('sha1').update(TRIVIAL_SOURCE).digest('hex');

const log = (msg: string) => process.stderr.write(`bench:fleet: ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<number> {
  const startedAt = new Date();
  const problems: string[] = [];
  const children: Child[] = [];
  let interrupted = false;
  const abort = (why: string) => {
    interrupted = true;
    log(`${why}: stopping the generators and the gateway`);
    for (const c of children) if (c.name !== 'gateway') c.kill();
  };
  const deadline = setTimeout(() => abort(`deadline of ${DEADLINE_S} s reached`), DEADLINE_S * 1000);
  const onSignal = () => abort('interrupted');
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  // Before anything else runs: the libraries' bare rates on one core, for the ratios.
  const signatures = await measureSignatureRates();
  log(
    `this machine, one core: noble signs in ${signatures.noble.signMs.toFixed(3)} ms and verifies in ${signatures.noble.verifyMs.toFixed(3)} ms; ` +
      `libsecp256k1 (wasm) ${signatures.wasm.signMs.toFixed(3)} ms and ${signatures.wasm.verifyMs.toFixed(3)} ms (${Math.round(1000 / signatures.wasm.verifyMs)} bare verifications/s); ` +
      `through a pool of ${signatures.pool.threads} threads ${(signatures.pool.loopMsPerVerify * 1000).toFixed(0)} µs of event loop per verification`,
  );

  log('starting the gateway (io role only) in its own process');
  const gateway = Child.fork('gateway', new URL('./fleet-gateway.js', import.meta.url), ['--expose-gc', ...GATEWAY_FLAGS]);
  children.push(gateway);
  try {
    const info = await Promise.race([
      gateway.once<GatewayInfo>('ready', 120_000),
      gateway.once<string>('failed', 120_000).then((m) => Promise.reject(new Error(`the gateway did not start: ${m}`))),
    ]);
    const generators = Array.from({ length: GENERATORS }, (_, i) => Child.fork(`generator ${i + 1}`, new URL('./fleet-generator.js', import.meta.url)));
    children.push(...generators);
    labelProcesses(processLabeler(gateway.pid, new Set(generators.map((g) => g.pid)), info.stackId));
    log(`gateway up at ${info.url} (pid ${gateway.pid}; database, Redis and RabbitMQ prefix ${info.stackId})`);

    const baseline = await gateway.call<GatewaySample>('sample', { collect: true });
    log(`gateway baseline: RSS ${mib(baseline.rssBytes)} MiB, heap used ${mib(baseline.heapUsedBytes)} MiB`);

    const shares = split(NODES, GENERATORS);
    log(`making ${NODES} node keys in ${GENERATORS} generators`);
    const keygen = await Promise.all(generators.map((g, i) => g.call<{ ms: number; nodeIds: string[] }>('keys', { first: shares[i]!.first, count: shares[i]!.count }, 600_000)));
    // A node binds only to an operator that enrolled it: the fleet's operator enrols every address first.
    await enrolFleet(info, keygen.flatMap((k) => k.nodeIds));

    const { connect, stoppedBecause } = await registerFleet(generators, info);
    log(`registered ${connect.registered} of ${NODES} in ${(connect.ms / 1000).toFixed(1)} s (${connect.failed} failed, ${connect.retries} retries)`);
    if (stoppedBecause) {
      log(`registration stopped early: ${stoppedBecause}`);
      problems.push(`registration stopped at ${connect.registered} of ${NODES} nodes: ${stoppedBecause}`);
    }
    if (connect.registered === 0) throw new Error(`no node registered: ${JSON.stringify(connect.failures)}`);
    if (connect.failed > 0) problems.push(`${connect.failed} nodes could not register: ${describeCounts(connect.failures)}`);

    // Every node has sent at least one heartbeat by the end of one interval: the steady state measured.
    const intervalMs = connect.heartbeatIntervalMs;
    log(`settling for one heartbeat interval (${intervalMs / 1000} s)`);
    await sleep(intervalMs + 2_000);
    const loaded = await gateway.call<GatewaySample>('sample', { collect: true });
    log(`gateway with the fleet: RSS ${mib(loaded.rssBytes)} MiB, heap used ${mib(loaded.heapUsedBytes)} MiB, ${loaded.sockets} sockets`);

    log(`measured window: ${WINDOW_S} s of heartbeats; reservations and raw Redis operations meanwhile`);
    const redis = createRedis(info.redisUrl, 'bench-fleet');
    const db = createPool(info.databaseUrl, 2);
    const keys = new RedisKeys(info.redisPrefix);
    const eligibility = new EligibilityService({ store: eligibilityStore(db), mirror: new EligibilityMirror(redis, keys) });
    const presence = new PresenceRepository(redis, keys, () => info.heartbeatTtlMs, () => info.slotMaxAgeMs, () => eligibility.sync());
    let latencies: Awaited<ReturnType<typeof measureRedis>>;
    let redisBenchmark: RedisBenchmarkRow[] = [];
    let windowStats: WindowStats[];
    let gatewayWindow: { start: GatewaySample; end: GatewaySample };
    let usage: ReturnType<ReturnType<typeof usageMeter>>;
    const poolSize = await redis.zcard(`${new RedisKeys(info.redisPrefix).live}ready:${PLACEMENT.network}:${PLACEMENT.model}@1`);
    try {
      const meter = usageMeter();
      const start = await gateway.call<GatewaySample>('sample', { collect: false });
      await Promise.all(generators.map((g) => g.call('windowStart')));
      const windowEndsAt = performance.now() + WINDOW_S * 1000;
      const windowEnds = sleep(WINDOW_S * 1000);
      latencies = await measureRedis(presence, redis, `${info.redisPrefix}bench-raw`, RESERVATIONS);
      try {
        redisBenchmark = await runRedisBenchmark(info.redisUrl, `${info.redisPrefix}bench-raw-set`, TRIVIAL_SHA);
      } catch (err) {
        problems.push(`redis-benchmark did not run: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (performance.now() > windowEndsAt) problems.push('the reservation and raw Redis loops outlasted the heartbeat window: their last part ran without the measured heartbeat load');
      await windowEnds;
      windowStats = await Promise.all(generators.map((g) => g.call<WindowStats>('windowEnd')));
      gatewayWindow = { start, end: await gateway.call<GatewaySample>('sample', { collect: false }) };
      usage = meter();
    } finally {
      redis.disconnect();
      await db.end();
    }
    const after = await gateway.call<GatewaySample>('sample', { collect: true });
    log('stopping the generators and closing the gateway (its data is dropped)');
    await Promise.all(generators.map((g) => g.call('stop').catch(() => g.kill())));
    await gateway.call('close', null, 60_000).catch((err: unknown) => problems.push(`the gateway did not close cleanly: ${String(err)}`));

    const report: FleetReport = {
      startedAt,
      finishedAt: new Date(),
      host: describeHost(),
      redis: await redisVersion(info.redisUrl),
      fdLimit: openFilesLimit(),
      params: { nodes: NODES, generators: GENERATORS, connectConcurrency: CONNECT_CONCURRENCY, windowS: WINDOW_S, reservations: RESERVATIONS, blocks: BLOCKS, heartbeatIntervalMs: intervalMs, heartbeatTtlMs: info.heartbeatTtlMs,
        registerAttempts: REGISTER_ATTEMPTS, registerTimeoutMs: REGISTER_TIMEOUT_MS, stallS: STALL_S, connectBudgetS: CONNECT_BUDGET_S },
      signatures,
      verifyThreads: info.verifyThreads,
      keygenMs: Math.max(...keygen.map((k) => k.ms)),
      connect,
      stoppedBecause,
      memory: { baseline, loaded, after },
      window: { generators: windowStats, gateway: gatewayWindow, usage },
      placement: PLACEMENT,
      poolSize,
      latencies,
      redisBenchmark,
      problems,
      interrupted,
    };
    process.stdout.write(`\n${renderFleetTable(report)}\n`);
    if (problems.length > 0) process.stdout.write(`\nPROBLEMS:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
    if (OUTPUT !== '-' && !interrupted) {
      writeSection(OUTPUT, FLEET_SECTION, renderFleetMarkdown(report));
      log(`wrote its section of ${OUTPUT}`);
    }
    return interrupted ? 1 : 0;
  } catch (err) {
    for (const c of children) if (c.name !== 'gateway') c.kill();
    // Give the gateway the chance to drop its data; kill it if it cannot.
    await gateway.call('close', null, 30_000).catch(() => gateway.kill());
    throw err;
  } finally {
    clearTimeout(deadline);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await Promise.race([Promise.all(children.map((c) => c.exited)), sleep(10_000)]);
  }
}

/**
 * Connects and registers the fleet, at most CONNECT_CONCURRENCY handshakes in flight. Gives up on the
 * rest (keeping the nodes registered) when no node has registered for STALL_S, or after CONNECT_BUDGET_S:
 * a gateway that cannot keep up with the heartbeats of the nodes it has lets new registrations time out,
 * and waiting longer would only measure its backlog.
 */
async function registerFleet(generators: Child[], info: GatewayInfo): Promise<{ connect: ConnectResult; stoppedBecause: string | null }> {
  log(`registering ${NODES} nodes, at most ${CONNECT_CONCURRENCY} handshakes in flight`);
  const progress = new Map<Child, Progress>();
  for (const g of generators) g.on('progress', (d) => progress.set(g, d as Progress));
  const started = performance.now();
  let stoppedBecause: string | null = null;
  let last = { registered: 0, at: started };
  let lastLog = started;
  const watch = setInterval(() => {
    const now = performance.now();
    const all = [...progress.values()];
    const registered = all.reduce((n, p) => n + p.registered, 0);
    const failed = all.reduce((n, p) => n + p.failed, 0);
    const lastFailure = all.map((p) => p.lastFailure).find((f) => f !== null) ?? null;
    if (registered > last.registered) last = { registered, at: now };
    if (now - lastLog >= 5_000) {
      lastLog = now;
      log(`  ${registered} registered, ${failed} failed${lastFailure ? ` (last failure: ${lastFailure})` : ''}`);
    }
    if (stoppedBecause) return;
    if (now - last.at >= STALL_S * 1000) stoppedBecause = `no node registered for ${STALL_S} s (last failure: ${lastFailure ?? 'none'})`;
    else if (now - started >= CONNECT_BUDGET_S * 1000) stoppedBecause = `the registration phase reached its budget of ${CONNECT_BUDGET_S} s (last failure: ${lastFailure ?? 'none'})`;
    if (stoppedBecause) for (const g of generators) void g.call('stopConnecting').catch(() => undefined);
  }, 1_000);
  const perGenerator = Math.ceil(CONNECT_CONCURRENCY / GENERATORS);
  const params: ConnectParams = { url: info.url, operator: info.operator, concurrency: perGenerator, attempts: REGISTER_ATTEMPTS, timeoutMs: REGISTER_TIMEOUT_MS };
  try {
    const results = await Promise.all(generators.map((g) => g.call<ConnectResult>('connect', params, DEADLINE_S * 1000)));
    return { connect: mergeConnect(results), stoppedBecause };
  } finally {
    clearInterval(watch);
  }
}

/**
 * Reservation latency beside raw Redis round trips, one operation at a time (latency, not throughput),
 * on this process's own ioredis connection, in BLOCKS rounds of each kind in turn. A reservation is
 * `PresenceRepository.reserve` for a fresh job id (the RESERVE script: the pool's top candidates, their
 * presence, flags and slots) and its `release` (RELEASE: the slot back, the node rescored, capacity
 * announced); raw operations are EVALSHA of `return 1` (the same ioredis call the scripts go through) and
 * ZADD on a scratch key.
 */
async function measureRedis(presence: PresenceRepository, redis: ReturnType<typeof createRedis>, scratchKey: string, count: number) {
  const reserve: number[] = [];
  const release: number[] = [];
  const evalsha: number[] = [];
  const zadd: number[] = [];
  let noNode = 0;
  const per = Math.ceil(count / BLOCKS);
  for (let b = 0; b < BLOCKS; b++) {
    for (let i = 0; i < per; i++) {
      const jobId = randomUUID();
      const t0 = performance.now();
      const r = await presence.reserve(PLACEMENT, jobId, []);
      const t1 = performance.now();
      if (!r) {
        noNode++;
        continue;
      }
      await presence.release(r.nodeId, jobId);
      reserve.push(t1 - t0);
      release.push(performance.now() - t1);
    }
    for (let i = 0; i < per; i++) {
      const t0 = performance.now();
      await TRIVIAL_SCRIPT.run(redis, [scratchKey], []);
      evalsha.push(performance.now() - t0);
    }
    for (let i = 0; i < per; i++) {
      const t0 = performance.now();
      await redis.zadd(scratchKey, i, `m${i % 1000}`);
      zadd.push(performance.now() - t0);
    }
  }
  const sorted = (xs: number[]) => Float64Array.from(xs).sort();
  return { reserve: sorted(reserve), release: sorted(release), evalsha: sorted(evalsha), zadd: sorted(zadd), noNode };
}

/**
 * redis-benchmark (C, one client: round-trip latency, not throughput) against the same server: PING, SET
 * of a key under the gateway's prefix (dropped with it) and EVALSHA of the same trivial script.
 */
async function runRedisBenchmark(redisUrl: string, setKey: string, trivialSha: string): Promise<RedisBenchmarkRow[]> {
  const u = new URL(redisUrl);
  const base = ['-h', u.hostname, '-p', u.port || '6379', '-c', '1', '-n', '20000', '--csv'];
  const bin = process.env.BENCH_REDIS_BENCHMARK ?? 'redis-benchmark';
  const run = promisify(execFile);
  const rows: RedisBenchmarkRow[] = [];
  for (const [label, args] of [
    ['PING', ['-t', 'ping_mbulk']],
    ['SET', ['SET', setKey, 'x']],
    ['EVALSHA return 1', ['EVALSHA', trivialSha, '0']],
  ] as const) {
    const { stdout } = await run(bin, [...base, ...args], { timeout: 60_000 });
    const line = stdout.trim().split('\n').at(-1) ?? '';
    const f = [...line.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    if (f.length < 8 || !Number.isFinite(Number(f[1]))) throw new Error(`unexpected redis-benchmark output: ${stdout.slice(0, 200)}`);
    rows.push({ label, rps: Number(f[1]), p50Ms: Number(f[4]), p99Ms: Number(f[6]), maxMs: Number(f[7]) });
  }
  return rows;
}

function mergeConnect(results: ConnectResult[]): ConnectResult {
  const merge = (pick: (r: ConnectResult) => Record<string, number>) => {
    const out: Record<string, number> = {};
    for (const r of results) for (const [k, v] of Object.entries(pick(r))) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  return {
    registered: results.reduce((s, r) => s + r.registered, 0),
    failed: results.reduce((s, r) => s + r.failed, 0),
    abandoned: results.reduce((s, r) => s + r.abandoned, 0),
    notTried: results.reduce((s, r) => s + r.notTried, 0),
    retries: results.reduce((s, r) => s + r.retries, 0),
    ms: Math.max(...results.map((r) => r.ms)),
    failures: merge((r) => r.failures),
    tryFailures: merge((r) => r.tryFailures),
    heartbeatIntervalMs: Math.max(...results.map((r) => r.heartbeatIntervalMs)),
  };
}

function describeCounts(counts: Record<string, number>): string {
  return Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${v} × ${k}`)
    .join('; ');
}

/** Groups processes for the CPU breakdown; everything not started by this benchmark and no engine is foreign. */
function processLabeler(gatewayPid: number, generatorPids: Set<number>, stackDb: string) {
  const ferretPort = process.env.BENCH_FERRETDB_PORT_USED;
  return (pid: number, command: string, cmdline: () => string) => {
    if (pid === process.pid) return { label: 'bench process (latency loops)', foreign: false };
    if (pid === gatewayPid) return { label: 'gateway process', foreign: false };
    if (generatorPids.has(pid)) return { label: 'load generators', foreign: false };
    if (command === 'postgres') {
      const title = safe(cmdline);
      if (title.includes(` ${stackDb} `)) return { label: 'postgres (gateway db)', foreign: false };
      if (/^postgres: \S+: \S+ \S+ \d/.test(title)) return { label: 'postgres (other dbs)', foreign: true };
      return { label: 'postgres (server processes)', foreign: false };
    }
    if (command === 'ferretdb') return ferretPort && safe(cmdline).includes(`:${ferretPort} `) ? { label: 'ferretdb', foreign: false } : { label: 'ferretdb (other)', foreign: true };
    if (['redis-server', 'redis-benchmark', 'beam.smp'].includes(command) || command.startsWith('kworker')) return { label: command, foreign: false };
    return { label: 'other processes', foreign: true };
  };
}

function safe(fn: () => string): string {
  try {
    return fn();
  } catch {
    return '';
  }
}

/** This process's soft and hard limits on open files (each node is a socket in a generator and one in the gateway). */
function openFilesLimit(): { soft: number; hard: number } {
  const line = /^Max open files\s+(\S+)\s+(\S+)/m.exec(safe(() => readFileSync('/proc/self/limits', 'utf8')));
  return { soft: Number(line?.[1] ?? NaN), hard: Number(line?.[2] ?? NaN) };
}

function split(total: number, parts: number): Array<{ first: number; count: number }> {
  const out: Array<{ first: number; count: number }> = [];
  let first = 0;
  for (let i = 0; i < parts; i++) {
    const count = Math.floor(total / parts) + (i < total % parts ? 1 : 0);
    out.push({ first, count });
    first += count;
  }
  return out;
}

function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}

await runBench('bench:fleet', main);

/** Enrols the fleet's node addresses to its operator, in batches (the operator's consent to their binding). */
async function enrolFleet(info: GatewayInfo, nodeIds: readonly string[]): Promise<void> {
  const db = createPool(info.databaseUrl, 1);
  try {
    for (let i = 0; i < nodeIds.length; i += 10_000) await enrolNodes(db, nodeIds.slice(i, i + 10_000), info.operator);
  } finally {
    await db.end();
  }
}
