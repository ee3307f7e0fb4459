// `npm run bench` (through scripts/bench.sh, which starts FerretDB): end-to-end throughput and latency of
// the backbone's public API in synchronous mode, with simulated zero-latency nodes, side by side with
// BullMQ's bare add -> process -> complete cycle on the same Redis, at the same concurrencies and for the
// same duration, in one process run. Prints a table and rewrites BENCHMARKS.md.
//
// NOT a test: it asserts nothing about speed. It does fail (exit 1) when the pipeline misbehaves: an
// unbalanced ledger, or jobs left unfinished after the load stops.
//
// Knobs (environment): BENCH_CONCURRENCY (comma list, default 8,32), BENCH_DURATION_S (15),
// BENCH_WARMUP_S (3), BENCH_NODES (4), BENCH_NODE_CAPACITY (16), BENCH_MAX_JOBS per run (1000000),
// BENCH_ONE_NAMESPACE_CONCURRENCY (the first concurrency; 0 skips the one-namespace run),
// BENCH_PG_STATEMENTS=1 (prints the PostgreSQL statements per job of each backbone run, for diagnosis),
// BENCH_OUTPUT (default BENCHMARKS.md at the repository root; "-" writes none).
import { fileURLToPath } from 'node:url';
import { TestStack, TEST_MODEL, type Tenant } from '../test/helpers/stack.js';
import { runBullmq } from './bullmq.js';
import { diffCounters, installCounters, readCounters, takeStatementCounts, type DbCounts } from './instrument.js';
import { closedLoop, labelProcesses, type LoadOptions, type LoadResult, type ProcessLabeler } from './load.js';
import { describeMachine, type Machine } from './machine.js';
import { PgWaitSampler, type PgSessions } from './pg-wait.js';
import { renderMarkdown, renderTable, writeDocument, type BenchReport, type DbWork, type RunReport, type StageBreakdown } from './report.js';
import { envNumber, runBench } from './run.js';

const CONCURRENCIES = intList(process.env.BENCH_CONCURRENCY ?? '8,32');
const DURATION_S = envNumber('BENCH_DURATION_S', 15);
const WARMUP_S = envNumber('BENCH_WARMUP_S', 3);
const NODES = envNumber('BENCH_NODES', 4);
const NODE_CAPACITY = envNumber('BENCH_NODE_CAPACITY', 16);
const MAX_JOBS = envNumber('BENCH_MAX_JOBS', 1_000_000);
// The extra run with every client on one namespace (0: skip it).
const ONE_NAMESPACE_C = Number(process.env.BENCH_ONE_NAMESPACE_CONCURRENCY ?? CONCURRENCIES[0]);
const MAX_TOKENS = 16;
const OUTPUT = process.env.BENCH_OUTPUT ?? fileURLToPath(new URL('../../BENCHMARKS.md', import.meta.url));

const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

async function main(): Promise<number> {
  const stop = new AbortController();
  const onSignal = () => {
    log('interrupted: ending the current run, then cleaning up');
    stop.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const startedAt = new Date();
  installCounters({ statementCounts: process.env.BENCH_PG_STATEMENTS === '1' });
  log(`starting an isolated backbone (${NODES} simulated nodes x capacity ${NODE_CAPACITY}, latency 0 ms)`);
  const stack = await TestStack.start({
    config: {
      // Far above anything a loopback run reaches: the bench measures the pipeline, not the limiter.
      RATE_LIMIT_RPS: 1_000_000,
      RATE_LIMIT_BURST: 1_000_000,
      // Production defaults where the test stack departs from them (a smaller pool, faster background work).
      PG_POOL_MAX: 20,
      SWEEP_INTERVAL_MS: 5_000,
      JOB_ATTEMPT_TIMEOUT_MS: 10_000,
      JOB_DEADLINE_MS: 30_000,
    },
  });
  labelProcesses(processLabeler(stack.id));
  const sampler = new PgWaitSampler(stack.config.DATABASE_URL, stack.id);
  let failed = false;
  const runs: RunReport[] = [];
  let machine: Machine | null = null;
  let totalJobs = 0;
  const problems: string[] = [];
  try {
    await stack.model();
    for (let n = 0; n < NODES; n++) await stack.node({ latencyMs: 0, capacity: NODE_CAPACITY, completionTokens: MAX_TOKENS });
    // One consumer (namespace and API key) per client: C independent tenants, as on a real network.
    const maxC = Math.max(...CONCURRENCIES, ONE_NAMESPACE_C);
    const tenants: Tenant[] = [];
    for (let t = 0; t < maxC; t++) tenants.push(await stack.tenant(1_000_000, { rateLimitRps: 1_000_000, rateLimitBurst: 1_000_000 }));
    machine = await describeMachine(stack.db, stack.backbone.mongo.db, stack.config.REDIS_URL, amqpAddress(stack.config.RABBITMQ_URL));

    await sampler.open();
    const endpoint = `${stack.url}/v1/chat/completions`;
    let seq = 0;
    const request = async (tenant: Tenant, signal?: AbortSignal): Promise<void> => {
      const body = JSON.stringify({ model: TEST_MODEL, messages: [{ role: 'user', content: `bench request ${seq++}` }], max_tokens: MAX_TOKENS });
      const headers = { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json' };
      const res = await fetch(endpoint, { method: 'POST', headers, body, signal });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`);
      const parsed = JSON.parse(text) as { object?: string; choices?: Array<{ message?: { content?: string | null } }> };
      const content = parsed.choices?.[0]?.message?.content ?? '';
      if (parsed.object !== 'chat.completion' || !content.startsWith('simulated answer')) throw new Error(`unexpected answer: ${text.slice(0, 200)}`);
    };
    // Fail fast, with the reason, when the pipeline does not work at all.
    await request(tenants[0]!);

    const runBackbone = async (system: 'backbone' | 'backbone-1ns', load: LoadOptions) => {
      const work = new WorkMeter(stack);
      // Filled in by the window callbacks.
      const seen: { statements: Array<[string, number]> | null; sessions: Promise<PgSessions> | null } = { statements: null, sessions: null };
      const result = await closedLoop(
        {
          ...load,
          onWindow: (edge) => {
            work.edge(edge);
            if (edge === 'start') {
              takeStatementCounts();
              sampler.start();
            } else {
              seen.statements = takeStatementCounts();
              seen.sessions = sampler.stop();
            }
          },
        },
        (_i, worker, signal) => request(system === 'backbone' ? tenants[worker]! : tenants[0]!, signal),
      );
      if (seen.statements && result.completed > 0) {
        const perJob = seen.statements.map(([text, n]) => `  ${(n / result.completed).toFixed(2).padStart(6)}  ${text}`);
        log(`PostgreSQL statements per completed job (${system}, C=${load.concurrency}):\n${perJob.slice(0, 40).join('\n')}`);
      }
      runs.push({
        system,
        ...summarize(result),
        stages: await stageBreakdown(stack, result),
        db: await work.perJob(result.completed),
        sessions: seen.sessions ? await seen.sessions : null,
      });
      log(`  ${line(runs.at(-1)!)}`);
    };
    const loadAt = (concurrency: number): LoadOptions => ({
      concurrency,
      warmupMs: WARMUP_S * 1000,
      durationMs: DURATION_S * 1000,
      maxOps: MAX_JOBS,
      signal: stop.signal,
      drainMs: 5_000,
    });

    for (const concurrency of CONCURRENCIES) {
      if (stop.signal.aborted) break;
      log(`backbone: concurrency ${concurrency} (one namespace per client), ${WARMUP_S} s warm-up + ${DURATION_S} s`);
      await runBackbone('backbone', loadAt(concurrency));

      if (stop.signal.aborted) break;
      log(`bullmq: concurrency ${concurrency}, ${WARMUP_S} s warm-up + ${DURATION_S} s`);
      const bull = await runBullmq(loadAt(concurrency));
      runs.push({ system: 'bullmq', ...summarize(bull.result), stages: null, db: null, sessions: null });
      log(`  ${line(runs.at(-1)!)}`);
    }
    if (ONE_NAMESPACE_C > 0 && !stop.signal.aborted) {
      // Every client on the same namespace: every hold and settlement contends for the same ledger rows.
      log(`backbone: concurrency ${ONE_NAMESPACE_C}, all clients on ONE namespace, ${WARMUP_S} s warm-up + ${DURATION_S} s`);
      await runBackbone('backbone-1ns', loadAt(ONE_NAMESPACE_C));
    }

    // Requests given up on at the end of a window leave their jobs running: let them end before checking.
    const settleBy = Date.now() + 15_000;
    while (Date.now() < settleBy && (await unfinishedJobs(stack)) > 0) await new Promise((r) => setTimeout(r, 250));

    // The pipeline must have stayed correct under load, or its speed means nothing.
    try {
      await stack.assertLedgerBalanced();
    } catch (err) {
      problems.push(err instanceof Error ? err.message : String(err));
    }
    const unfinished = await unfinishedJobs(stack);
    if (unfinished > 0) problems.push(`${unfinished} jobs still unfinished 15 s after the load stopped`);
    const byStatus = await stack.db.query<{ status: string; n: number }>(`SELECT status, count(*)::int AS n FROM jobs GROUP BY status ORDER BY status`);
    totalJobs = byStatus.rows.reduce((sum, r) => sum + r.n, 0);
    log(`jobs in the ledger run: ${byStatus.rows.map((r) => `${r.status} ${r.n}`).join(', ')}`);
    for (const r of byStatus.rows) if (r.status !== 'completed') problems.push(`${r.n} jobs ended ${r.status}`);
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    await sampler.close();
    log('closing the backbone and dropping its data');
    await stack.close({ keepData: failed });
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }

  if (!machine) throw new Error('unreachable: the machine was described before any run');
  const report: BenchReport = {
    startedAt,
    finishedAt: new Date(),
    machine,
    params: {
      concurrencies: CONCURRENCIES,
      durationS: DURATION_S,
      warmupS: WARMUP_S,
      nodes: NODES,
      nodeCapacity: NODE_CAPACITY,
      maxTokens: MAX_TOKENS,
      pgPoolMax: stack.config.PG_POOL_MAX,
    },
    totalJobs,
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
}

/**
 * Database work per completed job over the measured window: statements and commits the backbone sent to
 * PostgreSQL and operations it sent to MongoDB (counted in-process, see instrument.ts), and transactions
 * PostgreSQL itself committed in the backbone's database and in FerretDB's backing database
 * (pg_stat_database; its counters are flushed about once a second, so these are approximate).
 */
class WorkMeter {
  private counters: DbCounts[] = [];
  private stats: Array<Promise<Map<string, { xact: number; deadlocks: number }>>> = [];
  private readonly ferretDb = process.env.BENCH_FERRETDB_PG_DATABASE ?? null;

  constructor(private readonly stack: TestStack) {}

  edge(_edge: 'start' | 'end'): void {
    this.counters.push(readCounters());
    const names = [this.stack.id, ...(this.ferretDb ? [this.ferretDb] : [])];
    const p = this.stack.db
      .query<{ datname: string; xact: number; deadlocks: number }>(
        `SELECT datname, (xact_commit + xact_rollback)::float8 AS xact, deadlocks::float8 AS deadlocks FROM pg_stat_database WHERE datname = ANY($1)`,
        [names],
      )
      .then((r) => new Map(r.rows.map((row) => [row.datname, { xact: row.xact, deadlocks: row.deadlocks }])));
    p.catch(() => undefined);
    this.stats.push(p);
  }

  async perJob(jobs: number): Promise<DbWork | null> {
    const [c0, c1] = this.counters;
    if (!c0 || !c1) return null;
    const per = Math.max(jobs, 1); // a run that completed no job still reports its deadlocks
    const d = diffCounters(c0, c1);
    const [s0, s1] = await Promise.all(this.stats.map((p) => p.catch(() => new Map<string, { xact: number; deadlocks: number }>())));
    const delta = (db: string | null, k: 'xact' | 'deadlocks') => (db && s0?.has(db) && s1?.has(db) ? s1.get(db)![k] - s0.get(db)![k] : NaN);
    const xact = (db: string | null) => delta(db, 'xact') / per;
    return {
      deadlocks: delta(this.stack.id, 'deadlocks'),
      pgStatements: d.pgStatements / per,
      pgCommits: d.pgCommits / per,
      mongoOps: d.mongoOps / per,
      backbonePgXacts: xact(this.stack.id),
      ferretPgXacts: xact(this.ferretDb),
    };
  }
}

function summarize(r: LoadResult): Omit<RunReport, 'system' | 'stages' | 'db' | 'sessions'> {
  return {
    concurrency: r.concurrency,
    windowS: r.windowMs / 1000,
    completed: r.completed,
    errors: r.errors,
    errorSamples: r.errorSamples,
    warmupOps: r.warmupOps,
    jobsPerSecond: r.completed / (r.windowMs / 1000),
    latencies: r.latencies,
    usage: r.usage,
  };
}

function line(r: RunReport): string {
  const q = (p: number) => {
    const i = Math.min(r.latencies.length - 1, Math.max(0, Math.ceil(p * r.latencies.length) - 1));
    return (r.latencies[i] ?? NaN).toFixed(1);
  };
  return `${r.system}: ${r.jobsPerSecond.toFixed(0)} jobs/s, p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, ${r.errors} errors; CPU: process ${r.usage.processCores.toFixed(2)} cores (ELU ${r.usage.elu.toFixed(2)}), machine ${r.usage.machineCores.toFixed(2)}/${r.usage.cores}`;
}

/**
 * Where a job's time went inside the backbone, from the timestamps the pipeline itself writes on the job
 * row (PostgreSQL now(): the start of the transaction or statement that set each one), for the jobs that
 * finished inside the measured window.
 */
async function stageBreakdown(stack: TestStack, r: LoadResult): Promise<StageBreakdown> {
  const row = (
    await stack.db.query<{ n: number; a: number[] | null; b: number[] | null; c: number[] | null; d: number[] | null }>(
      `SELECT count(*)::int AS n,
              percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM published_at - created_at) * 1000) AS a,
              percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at) * 1000) AS b,
              percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at) * 1000) AS c,
              percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at) * 1000) AS d
         FROM jobs
        WHERE status = 'completed' AND finished_at >= to_timestamp($1 / 1000.0) AND finished_at < to_timestamp($2 / 1000.0)`,
      [r.windowStart, r.windowEnd],
    )
  ).rows[0];
  const pair = (v: number[] | null | undefined) => ({ p50: v?.[0] ?? NaN, p99: v?.[1] ?? NaN });
  return {
    jobs: row?.n ?? 0,
    acceptToPublished: pair(row?.a),
    acceptToStarted: pair(row?.b),
    startedToSettling: pair(row?.c),
    acceptToSettling: pair(row?.d),
  };
}

/**
 * Groups processes for the CPU breakdown: this process, the engines (PostgreSQL backends by the database
 * they serve), and everything else running on the machine, marked foreign (the machine may be shared).
 */
function processLabeler(backboneDb: string): ProcessLabeler {
  const ferretDb = process.env.BENCH_FERRETDB_PG_DATABASE;
  const ferretPort = process.env.BENCH_FERRETDB_PORT_USED;
  return (pid, command, cmdline) => {
    if (pid === process.pid) return { label: 'bench process', foreign: false };
    if (pid === process.ppid) return { label: 'bench.sh', foreign: false };
    if (command === 'postgres') {
      // Backends are titled "postgres: <cluster>: <user> <database> <client> <state>".
      const title = safeRead(cmdline);
      if (title.includes(` ${backboneDb} `)) return { label: 'postgres (backbone db)', foreign: false };
      if (ferretDb && title.includes(` ${ferretDb} `)) return { label: 'postgres (FerretDB db)', foreign: false };
      if (/^postgres: \S+: \S+ \S+ \d/.test(title)) return { label: 'postgres (other dbs)', foreign: true };
      return { label: 'postgres (server processes)', foreign: false };
    }
    if (command === 'ferretdb') {
      if (ferretPort && safeRead(cmdline).includes(`:${ferretPort} `)) return { label: 'ferretdb', foreign: false };
      return { label: 'ferretdb (other)', foreign: true };
    }
    if (['redis-server', 'beam.smp', 'kdamond.0', 'process_api'].includes(command) || command.startsWith('kworker')) return { label: command, foreign: false };
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

async function unfinishedJobs(stack: TestStack): Promise<number> {
  const r = await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE finished_at IS NULL`);
  return r.rows[0]?.n ?? 0;
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
