// `npm run bench` (scripts/bench.sh e2e, which starts FerretDB): the backbone ALONE, measured from
// outside, in separate processes:
//   - the backbone: `resultity serve` (every role, dist/src/cli/main.js) with a database, MongoDB
//     database, Redis key prefix and RabbitMQ prefix of its own;
//   - the nodes: simulated nodes at 0 ms run by the real node agent (bench/e2e-nodes.ts);
//   - the load: closed loops of C clients, each with its own API key and namespace (bench/e2e-load.ts);
//   - this process: sets up through the admin API, reads the counters, writes the report.
// For each concurrency: jobs/s, p50, p99, latency added over the node's own runtime, CPU per job by
// process group (/proc), and round trips per job, from the backbone's GET /metrics counters and from the
// engines (pg_stat_database, pg_stat_wal, Redis INFO commandstats), set against the round-trip budget.
// In the same run, as references on the same engines: the naive floor pipeline (floor.ts) and BullMQ
// bare (bullmq.ts); a streaming run at C=1 (time to first token); and a C=1 run with BENCH_STORED_PAYLOADS
// payload documents stored in the backbone's payload collection.
//
// Uses only the public HTTP API, the `resultity` CLI entry, the node agent and /metrics, so it runs the
// same against any backbone that keeps them. NOT a test: it asserts nothing about speed. It fails (exit 1)
// when the pipeline misbehaves: an unbalanced ledger, or credits still held (unfinished jobs) after the load.
//
// Knobs (environment): BENCH_CONCURRENCY (1,8,64), BENCH_DURATION_S (10), BENCH_WARMUP_S (2),
// BENCH_NODES (4), BENCH_NODE_CAPACITY (32), BENCH_MAX_JOBS per run (1000000), BENCH_STORED_PAYLOADS
// (100000; 0 skips that run), BENCH_PAYLOAD_COLLECTION (read from src/mongo/payloads.repository.ts when
// unset), BENCH_REFERENCES (floor,bullmq; "none" skips them), BENCH_STREAM (1; 0 skips the streaming
// run), BENCH_OUTPUT (BENCHMARKS.md at the repository root; "-" writes none), BENCH_BACKBONE_NODE_FLAGS
// (flags for the backbone's node process alone, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"),
// SIGNATURE_VERIFY_THREADS (passed to the backbone when set).
import { deleteKeysByPrefix } from '../src/redis/client.js';
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { Connection } from 'rabbitmq-client';
import { Child } from './ipc.js';
import { addressOf, generatePrivateKey } from '../src/domain/signatures.js';
import { labelProcesses, usageMeter, type ProcessLabeler, type Usage } from './load.js';
import { describeMachine } from './machine.js';
import { perJob, readEngines, scrapeBackbone, stageMeans, type BackboneCounts, type EngineCounts, type StageTotals } from './engine-stats.js';
import { renderMarkdown, renderTable, writeDocument, type E2eReport, type E2eRun, type RunKind } from './report.js';
import { envNumber, runBench } from './run.js';
import { storePayloads, payloadCollectionName } from './payload-fill.js';
import type { ApiParams, LoadParams, RunOutput } from './e2e-load.js';
import type { FleetParams, RuntimeTimes } from './e2e-nodes.js';

const CONCURRENCIES = intList(process.env.BENCH_CONCURRENCY ?? '1,8,64');
const DURATION_S = envNumber('BENCH_DURATION_S', 10);
const WARMUP_S = envNumber('BENCH_WARMUP_S', 2);
const NODES = envNumber('BENCH_NODES', 4, { integer: true });
const NODE_CAPACITY = envNumber('BENCH_NODE_CAPACITY', 32, { integer: true });
const MAX_JOBS = envNumber('BENCH_MAX_JOBS', 1_000_000, { integer: true });
const STORED = Number(process.env.BENCH_STORED_PAYLOADS ?? 100_000);
const REFERENCES = (process.env.BENCH_REFERENCES ?? 'floor,bullmq').split(',').map((s) => s.trim());
const STREAM = process.env.BENCH_STREAM !== '0';
const OUTPUT = process.env.BENCH_OUTPUT ?? fileURLToPath(new URL('../../BENCHMARKS.md', import.meta.url));
const MODEL = 'bench/sim-0ms';
const MAX_TOKENS = 16;
const POSTGRES = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const RABBITMQ_URL = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
// FerretDB's own PostgreSQL cluster, when scripts/bench.sh started one: its URL, cluster name and directory.
const FERRET_PG_URL = process.env.BENCH_FERRETDB_PG_URL ?? null;
const FERRET_PG_CLUSTER = process.env.BENCH_FERRETDB_PG_CLUSTER ?? null;
const FERRET_PG_DIR = process.env.BENCH_FERRETDB_PG_DIR ?? null;
const FERRET_PORT = process.env.BENCH_FERRETDB_PORT_USED ?? null;

const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

async function main(): Promise<number> {
  const mongoBase = process.env.TEST_MONGODB_URL;
  if (!mongoBase) throw new Error('TEST_MONGODB_URL is not set: run `npm run bench` (it starts FerretDB), or point it at a MongoDB server');
  const startedAt = new Date();
  const id = `rt_bench_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const adminToken = randomBytes(24).toString('hex');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const mongoUrl = withMongoDb(mongoBase, id);

  // This process's own connections: one PostgreSQL backend (to the maintenance database, never the
  // backbone's), one Redis client, one MongoDB client. Their CPU is named as the benchmark's own.
  const own = new pg.Pool({ connectionString: `${POSTGRES}/postgres`, max: 1, application_name: 'resultity-bench' });
  own.on('error', () => undefined);
  const ferretPg = FERRET_PG_URL ? new pg.Pool({ connectionString: FERRET_PG_URL, max: 1, application_name: 'resultity-bench' }) : null;
  ferretPg?.on('error', () => undefined);
  const ownPgPids = new Set<number>();
  const redis = new Redis(REDIS_URL, { connectionName: 'resultity-bench' });
  const mongo = new MongoClient(mongoUrl);
  await mongo.connect();

  let backbone: ChildProcess | null = null;
  let nodes: Child | null = null;
  let load: Child | null = null;
  const runs: E2eRun[] = [];
  const problems: string[] = [];
  const stop = new AbortController();
  const onSignal = () => {
    log('interrupted: ending the current run, then cleaning up');
    stop.abort();
    void load?.call('abort').catch(() => undefined);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let stored = 0;
  let collection = '';
  let held = NaN;
  try {
    log(`starting the backbone (resultity serve, every role) on ${url}, database ${id}`);
    const backboneFlags = (process.env.BENCH_BACKBONE_NODE_FLAGS ?? '').split(' ').filter(Boolean);
    backbone = spawn(process.execPath, [...backboneFlags, fileURLToPath(new URL('../src/cli/main.js', import.meta.url)), 'serve'], {
      env: {
        PATH: process.env.PATH,
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: process.env.BENCH_BACKBONE_LOG_LEVEL ?? 'warn',
        DATABASE_URL: `${POSTGRES}/${id}`,
        MONGODB_URL: mongoUrl,
        REDIS_URL,
        RABBITMQ_URL,
        REDIS_KEY_PREFIX: `${id}:`,
        RABBITMQ_PREFIX: id,
        ADMIN_TOKEN: adminToken,
        NETWORK_SIGNING_KEY: randomBytes(32).toString('hex'),
        // Payloads sealed at rest, as in production (space/payload-keys.service.ts).
        PAYLOAD_MASTER_KEYS: `1:${randomBytes(32).toString('base64')}`,
        // Far above anything a loopback run reaches: the bench measures the pipeline, not the limiter.
        RATE_LIMIT_RPS: '1000000',
        RATE_LIMIT_BURST: '1000000',
        ACCOUNT_RATE_LIMIT_RPS: '1000000',
        ACCOUNT_RATE_LIMIT_BURST: '1000000',
        PG_POOL_MAX: process.env.BENCH_PG_POOL_MAX ?? '20',
        JOB_DEADLINE_MS: '60000',
        NO_NODE_GRACE_MS: '10000',
        ...(process.env.SIGNATURE_VERIFY_THREADS ? { SIGNATURE_VERIFY_THREADS: process.env.SIGNATURE_VERIFY_THREADS } : {}),
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const exited = new Promise<number | string>((resolve) => backbone!.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
    await waitReady(url, exited, 90_000);
    const admin = adminClient(url, adminToken);

    log(`setting up through the admin API: the model, ${Math.max(...CONCURRENCIES)} tenants, an operator`);
    await admin('PUT', `/admin/models/${encodeURIComponent(MODEL)}`, { input_price: 10, output_price: 20, context_tokens: 8192 });
    const operator = String((await admin('POST', '/admin/accounts', { name: 'bench operator' })).id);
    const tenants: Array<{ namespaceId: string; apiKey: string }> = [];
    for (let t = 0; t < Math.max(...CONCURRENCIES); t++) {
      const account = String((await admin('POST', '/admin/accounts', { name: `bench tenant ${t}` })).id);
      const ns = String((await admin('POST', `/admin/accounts/${account}/namespaces`, { name: 'bench' })).id);
      await admin('POST', `/admin/namespaces/${ns}/credits`, { amount: 1_000_000 });
      const key = await admin('POST', `/admin/namespaces/${ns}/keys`, { rate_limit_rps: 100_000, rate_limit_burst: 100_000 });
      tenants.push({ namespaceId: ns, apiKey: String(key.key) });
    }

    log(`starting ${NODES} simulated nodes (capacity ${NODE_CAPACITY}, 0 ms) in their own process, enrolled to the operator`);
    const privateKeys = Array.from({ length: NODES }, () => generatePrivateKey());
    for (const key of privateKeys) await admin('POST', `/admin/operators/${operator}/nodes`, { node: addressOf(key) });
    nodes = Child.fork('nodes', new URL('./e2e-nodes.js', import.meta.url));
    await nodes.call<string[]>('start', { gatewayUrl: url, operator, privateKeys, capacity: NODE_CAPACITY, model: MODEL, completionTokens: MAX_TOKENS } satisfies FleetParams);
    load = Child.fork('load', new URL('./e2e-load.js', import.meta.url));

    const labeler = processLabeler({ backbone: backbone.pid ?? -1, nodes: nodes.pid, load: load.pid, backboneDb: id, ownPgPids });
    labelProcesses(labeler);
    const machine = await describeMachine(own, mongo.db(), REDIS_URL, amqpAddress(RABBITMQ_URL));
    ownPgPids.add((await own.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
    if (ferretPg) ownPgPids.add((await ferretPg.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
    collection = await payloadCollectionName();

    // The window's edges are the load process's; the readings here follow them by an IPC hop.
    type Counts = { backbone: BackboneCounts; stages: StageTotals; engines: EngineCounts };
    type Edge = { usage: () => Usage; counts: Promise<Counts | null> };
    let edge: Edge | null = null;
    const ends: Array<{ usage: Usage; counts: Promise<Counts | null> }> = [];
    let countsWanted = false;
    const readCounts = () =>
      countsWanted
        ? Promise.all([scrapeBackbone(url), readEngines(own, redis, id, ferretPg)]).then(
            ([b, e]) => ({ backbone: b.counts, stages: b.stages, engines: e }),
            (err: unknown) => {
              log(`could not read the counters: ${String(err)}`);
              return null;
            },
          )
        : Promise.resolve(null);
    load.on('window', (data) => {
      if (data === 'start') edge = { usage: usageMeter(), counts: readCounts() };
      else if (edge) ends.push({ usage: edge.usage(), counts: readCounts() });
    });

    const loadParams = (concurrency: number): LoadParams => ({ concurrency, warmupMs: WARMUP_S * 1000, durationMs: DURATION_S * 1000, maxOps: MAX_JOBS, drainMs: 10_000 });
    const apiParams = (concurrency: number, tag: string): ApiParams => ({
      ...loadParams(concurrency),
      url,
      apiKeys: tenants.map((t) => t.apiKey),
      model: MODEL,
      maxTokens: MAX_TOKENS,
      tag,
    });
    const run = async (kind: RunKind, concurrency: number, method: string, params: unknown) => {
      if (stop.signal.aborted) return;
      countsWanted = kind === 'backbone' || kind === 'backbone-stream' || kind === 'backbone-stored';
      edge = null;
      ends.length = 0;
      await nodes!.call('takeRuntimeTimes');
      log(`${kind}: concurrency ${concurrency}, ${WARMUP_S} s warm-up + ${DURATION_S} s`);
      const out = await load!.call<RunOutput>(method, params, (WARMUP_S + DURATION_S) * 1000 + 600_000);
      const runtime = await nodes!.call<RuntimeTimes>('takeRuntimeTimes');
      const start = edge as Edge | null;
      const end = ends[0];
      const [c0, c1] = start && end ? await Promise.all([start.counts, end.counts]) : [null, null];
      const r: E2eRun = {
        kind,
        concurrency,
        result: out.result,
        ttft: out.ttft,
        usage: end?.usage ?? out.result.usage,
        backbone: c0 && c1 ? perJob(c0.backbone, c1.backbone, out.result.completed) : null,
        engines: c0 && c1 ? perJob(c0.engines, c1.engines, out.result.completed) : null,
        stages: c0 && c1 ? stageMeans(c0.stages, c1.stages, out.result.completed) : null,
        // The whole run's runtime calls (warm-up and drain included): a mean per call is what is subtracted.
        runtimeMeanMs: countsWanted && runtime.calls > 0 ? runtime.totalMs / runtime.calls : NaN,
      };
      runs.push(r);
      log(`  ${out.result.completed} ok, ${out.result.errors} errors, ${(out.result.completed / (out.result.windowMs / 1000)).toFixed(0)} jobs/s${out.result.errorSamples.length ? `; e.g. ${out.result.errorSamples[0]}` : ''}`);
    };

    // Fail fast, with the reason, when the pipeline does not work at all.
    await load.call('probe', apiParams(1, 'probe')).catch((err: unknown) => {
      throw new Error(`the first request failed: ${err instanceof Error ? err.message : String(err)}`);
    });

    // C=1 first, on a nearly empty payload collection: the reference for the stored-payloads run.
    for (const c of CONCURRENCIES) await run('backbone', c, 'sync', apiParams(c, `c${c}`));
    if (STREAM) await run('backbone-stream', 1, 'stream', apiParams(1, 'stream'));
    for (const c of CONCURRENCIES) {
      if (REFERENCES.includes('floor')) await run('floor', c, 'floor', { ...loadParams(c), postgresUrl: POSTGRES, redisUrl: REDIS_URL, rabbitUrl: RABBITMQ_URL });
      if (REFERENCES.includes('bullmq')) await run('bullmq', c, 'bullmq', loadParams(c));
    }
    if (STORED > 0 && !stop.signal.aborted) {
      log(`storing ${STORED} payload documents in ${collection} (the backbone's payload collection)`);
      const t0 = Date.now();
      stored = await storePayloads(mongo.db().collection(collection), STORED, MODEL, tenants.map((t) => t.namespaceId));
      log(`  stored in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      await run('backbone-stored', 1, 'sync', apiParams(1, 'stored'));
    }

    // Every hold must be captured or released once the load has stopped: credits still held are jobs
    // that did not finish. One request at a time, retried: on a shared server, connections can run short.
    const retried = async (method: string, path: string) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await admin(method, path);
        } catch (err) {
          if (attempt >= 5) throw err;
          await new Promise((r) => setTimeout(r, 500 * attempt));
        }
      }
    };
    try {
      const settleBy = Date.now() + 20_000;
      for (;;) {
        held = 0;
        for (const t of tenants) held += Number((await retried('GET', `/admin/namespaces/${t.namespaceId}/balance`)).held_micro);
        if (held === 0 || Date.now() > settleBy) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      if (held !== 0) problems.push(`${held} micro-credits still held 20 s after the load stopped: jobs left unfinished`);
      const totals = await retried('GET', '/admin/ledger/total');
      if (Number(totals.entriesTotal) !== 0 || Number(totals.balancesTotal) !== 0 || Number(totals.mismatchedAccounts) !== 0) {
        problems.push(`the ledger does not balance: ${JSON.stringify(totals)}`);
      }
    } catch (err) {
      problems.push(`could not check the ledger after the load: ${err instanceof Error ? err.message : String(err)}`);
    }

    const report: E2eReport = {
      startedAt,
      finishedAt: new Date(),
      machine,
      params: { concurrencies: CONCURRENCIES, durationS: DURATION_S, warmupS: WARMUP_S, nodes: NODES, nodeCapacity: NODE_CAPACITY, maxTokens: MAX_TOKENS, stored, collection },
      runs,
      problems,
      interrupted: stop.signal.aborted,
    };
    process.stdout.write(`\n${renderTable(report)}\n`);
    if (problems.length > 0) process.stdout.write(`\nPROBLEMS:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
    if (OUTPUT !== '-') {
      writeDocument(OUTPUT, renderMarkdown(report));
      log(`wrote ${OUTPUT}`);
    }
    return problems.length > 0 ? 1 : 0;
  } finally {
    log('stopping the processes and dropping the run\'s data');
    await load?.call('abort').catch(() => undefined);
    await nodes?.call('stop', null, 40_000).catch(() => undefined);
    for (const child of [load, nodes]) {
      if (!child) continue;
      // Closing the IPC channel ends the child (it exits when orphaned) and releases this end's pipe.
      if (child.process.connected) child.process.disconnect();
      await Promise.race([child.exited, new Promise((r) => setTimeout(r, 5_000).unref())]);
      child.kill();
      // An exited child's pipe handles may linger a moment: they must not keep this process alive.
      child.process.channel?.unref();
      child.process.unref();
    }
    if (backbone && backbone.exitCode === null) {
      const gone = new Promise((resolve) => backbone!.once('exit', resolve));
      backbone.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 20_000).unref())]);
      if (backbone.exitCode === null) backbone.kill('SIGKILL');
    }
    backbone?.unref();
    await dropRunData(id, mongo, redis, own).catch((err: unknown) => log(`cleanup incomplete: ${String(err)}`));
    await mongo.close();
    redis.disconnect();
    await own.end();
    await ferretPg?.end();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

/** An admin API caller: JSON in and out; throws with the answer on any non-2xx status. */
function adminClient(url: string, token: string) {
  return async (method: string, path: string, body?: unknown): Promise<Record<string, unknown>> => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status < 200 || res.status > 299) throw new Error(`${method} ${path}: HTTP ${res.status} ${text.slice(0, 300)}`);
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  };
}

async function waitReady(url: string, exited: Promise<number | string>, timeoutMs: number): Promise<void> {
  let gone: number | string | null = null;
  void exited.then((how) => (gone = how));
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (gone !== null) throw new Error(`the backbone exited (${String(gone)}) before it was ready`);
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    if (Date.now() > end) throw new Error(`the backbone was not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Groups processes for the CPU breakdown: the three processes of the run, this one, the engines
 * (PostgreSQL backends by the database they serve, the benchmark's own apart), and everything else on the
 * machine, marked foreign (the machine is shared).
 */
function processLabeler(p: { backbone: number; nodes: number; load: number; backboneDb: string; ownPgPids: Set<number> }): ProcessLabeler {
  return (pid, command, cmdline) => {
    if (pid === p.backbone) return { label: 'backbone process', foreign: false };
    if (pid === p.nodes) return { label: 'nodes process', foreign: false };
    if (pid === p.load) return { label: 'load process', foreign: false };
    if (pid === process.pid) return { label: 'bench (this process)', foreign: false };
    if (command === 'postgres') {
      if (p.ownPgPids.has(pid)) return { label: 'postgres: bench\'s own', foreign: false };
      // Backends are titled "postgres: <cluster>: <user> <database> <client> <state>".
      const title = safeRead(cmdline);
      if (title.includes(` ${p.backboneDb} `)) return { label: 'postgres: backbone db', foreign: false };
      // FerretDB's own cluster: every process of it (titled with its cluster name; its postmaster by its directory).
      if ((FERRET_PG_CLUSTER && title.startsWith(`postgres: ${FERRET_PG_CLUSTER}:`)) || (FERRET_PG_DIR && title.includes(FERRET_PG_DIR))) {
        return { label: 'postgres: FerretDB db', foreign: false };
      }
      if (/ rt_floor_\S+ /.test(title)) return { label: 'postgres: floor db', foreign: false };
      if (/^postgres: \S+: \S+ \S+ \d/.test(title)) return { label: 'postgres: other dbs', foreign: true };
      return { label: 'postgres: server processes', foreign: false };
    }
    if (command === 'ferretdb') {
      if (FERRET_PORT && safeRead(cmdline).includes(`:${FERRET_PORT} `)) return { label: 'ferretdb', foreign: false };
      return { label: 'ferretdb (other)', foreign: true };
    }
    if (command === 'redis-server' || command === 'beam.smp') return { label: command, foreign: false };
    return { label: 'other processes', foreign: true };
  };
}

function safeRead(fn: () => string): string {
  try {
    return fn();
  } catch {
    return '';
  }
}

/** Drops what the run left: the backbone's databases, its Redis keys, its RabbitMQ queues and exchanges. */
async function dropRunData(id: string, mongo: MongoClient, redis: Redis, own: pg.Pool): Promise<void> {
  await mongo.db().dropDatabase();
  await deleteKeysByPrefix(redis, `${id}:`);
  await own.query(`DROP DATABASE IF EXISTS "${id}" WITH (FORCE)`);
  // Queue and exchange names are the backbone's business: ask the broker which carry the run's prefix.
  const listed = async (what: 'queues' | 'exchanges') =>
    (await rabbitctl([`list_${what}`, '-q', '--no-table-headers', 'name']).catch(() => ''))
      .split('\n')
      .map((s) => s.trim())
      .filter((s) => s.startsWith(`${id}.`));
  const [queues, exchanges] = [await listed('queues'), await listed('exchanges')];
  const rabbit = new Connection({ url: RABBITMQ_URL, retryLow: 100, retryHigh: 200 });
  try {
    const ch = await rabbit.acquire();
    for (const queue of queues) await ch.queueDelete({ queue }).catch(() => undefined);
    for (const exchange of exchanges) await ch.exchangeDelete({ exchange }).catch(() => undefined);
    await ch.close();
  } finally {
    await rabbit.close();
  }
}

function rabbitctl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('rabbitmqctl', args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.once('error', reject);
    p.once('exit', (code) =>
      // A helper it leaves behind (epmd) may hold the pipe open: take what was written, then let go of it.
      setTimeout(() => {
        p.stdout.destroy();
        if (code === 0) resolve(out);
        else reject(new Error(`rabbitmqctl ${args[0]} exited ${code}`));
      }, 50),
    );
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

function withMongoDb(url: string, db: string): string {
  const u = new URL(url.replace(/^mongodb:/, 'http:'));
  u.pathname = `/${db}`;
  return u.toString().replace(/^http:/, 'mongodb:');
}

function amqpAddress(url: string): { host: string; port: number } {
  const u = new URL(url.replace(/^amqps?:/, 'http:'));
  return { host: u.hostname, port: Number(u.port || 5672) };
}

function intList(csv: string): number[] {
  const list = csv.split(',').map((s) => Number(s.trim()));
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1 || n > 1024)) throw new Error(`BENCH_CONCURRENCY must be a comma list of integers 1..1024, got ${csv}`);
  return list;
}

await runBench('bench', main);
