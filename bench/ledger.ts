// `npm run bench` (its second section) or `npm run bench:ledger`: credit holds and settlements per second
// through the real settlement code (src/jobs/settlement.service.ts) on PostgreSQL alone, one transaction
// per operation ("naive") and group-committed ("batched", the LEDGER_BATCH_* settings), on one hot
// namespace and on many, side by side with `pgbench -b simple-update` on the same server at the same
// client count and duration, in one process run. Writes its section of BENCHMARKS.md (bench/report.ts).
//
// NOT a test: it asserts nothing about speed. It fails (exit 1) when the ledger does not balance after
// the runs, or a job was held or settled other than once.
//
// Knobs (environment): BENCH_LEDGER_CONCURRENCY (clients, default 32), BENCH_LEDGER_DURATION_S (8),
// BENCH_LEDGER_WARMUP_S (2), BENCH_LEDGER_NAMESPACES (the "many" case, 1000), BENCH_LEDGER_POOL (pool
// connections, 20: the production default), LEDGER_BATCH_MAX_ITEMS / _IN_FLIGHT / _LINGER_MS (the batched
// path's settings, production defaults otherwise), BENCH_OUTPUT (as for bench/e2e.ts; "-" writes none).
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { pino } from 'pino';
import { configSchema } from '../src/config.js';
import { withTransaction, type Db } from '../src/postgres/db.js';
import { migrate } from '../src/postgres/migrate.js';
import { ledgerAccountId, ledgerTotals, postTransactions } from '../src/postgres/ledger.repository.js';
import type { NewJob } from '../src/postgres/jobs.repository.js';
import type { JobTerms } from '../src/domain/job-ticket.js';
import { newJobId } from '../src/domain/job-ids.js';
import { SettlementService } from '../src/jobs/settlement.service.js';
import { settlementStore } from '../src/postgres/settlement.store.js';
import { rcpClockFrom } from '../src/domain/rcp.js';
import { closedLoop, labelProcesses, type LoadResult } from './load.js';
import { diffCounters, installCounters, readCounters, type DbCounts } from './instrument.js';
import { postgresSettings, postgresVersion } from './machine.js';
import { writeSection } from './report.js';
import { LEDGER_SECTION, renderLedgerMarkdown, renderLedgerTable, type LedgerReport, type LedgerRun, type PgbenchRun } from './ledger-report.js';
import { envNumber, runBench } from './run.js';

const CONCURRENCY = envNumber('BENCH_LEDGER_CONCURRENCY', 32, { integer: true });
const DURATION_S = envNumber('BENCH_LEDGER_DURATION_S', 8, { integer: true });
const WARMUP_S = envNumber('BENCH_LEDGER_WARMUP_S', 2, { integer: true });
const NAMESPACES = envNumber('BENCH_LEDGER_NAMESPACES', 1000, { integer: true });
const POOL = envNumber('BENCH_LEDGER_POOL', 20, { integer: true });
const NODES = 8;
const OUTPUT = process.env.BENCH_OUTPUT ?? fileURLToPath(new URL('../../BENCHMARKS.md', import.meta.url));
const SERVER = 'postgres://postgres@127.0.0.1:5432';

// A job as the cloud role prices it (test/sim prices: 10 and 20 micro-credits per token), and what its
// node reports: the hold is 100 * 10 + 16 * 20 = 1320, the charge 50 * 10 + 16 * 20 = 820.
const MODEL = 'bench/ledger';
const JOB = { maxTokens: 16, promptTokensBound: 100, inputPriceMicro: 10, outputPriceMicro: 20, minChargeMicro: 0 };
const HOLD_MICRO = JOB.promptTokensBound * JOB.inputPriceMicro + JOB.maxTokens * JOB.outputPriceMicro;
const USAGE = { prompt_tokens: 50, completion_tokens: 16 };
// Far more than any run can hold, and a monthly cap on every key far above it: the cap is checked (its
// row locked and updated in every hold), never reached.
const CREDITS_MICRO = 1e13;
const CAP_MICRO = 1e15;

const log = (msg: string) => process.stderr.write(`bench:ledger: ${msg}\n`);

interface Consumer {
  namespaceId: string;
  keyId: string;
}

async function main(): Promise<number> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const startedAt = new Date();
  installCounters();
  const suffix = `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const ledgerDb = `rt_bench_ledger_${suffix}`;
  const pgbenchDb = `rt_bench_pgbench_${suffix}`;
  const config = configSchema.parse(process.env);
  const batching = { maxItems: config.LEDGER_BATCH_MAX_ITEMS, maxInFlight: config.LEDGER_BATCH_IN_FLIGHT, lingerMs: config.LEDGER_BATCH_LINGER_MS };
  if (batching.maxItems <= 1) throw new Error('LEDGER_BATCH_MAX_ITEMS=1 turns batching off: nothing to compare');

  labelProcesses(processLabeler([ledgerDb, pgbenchDb]));
  log(`fresh database ${ledgerDb} with the project's migrations; pgbench scratch database ${pgbenchDb}`);
  await migrate(`${SERVER}/${ledgerDb}`, pino({ level: 'warn' }));
  // The backbone's pool settings, except that idle connections close within 100 ms: pgbench's clients
  // need the server's connection slots while this pool rests (max_connections is shared by everyone).
  const db = new pg.Pool({ connectionString: `${SERVER}/${ledgerDb}`, max: POOL, idleTimeoutMillis: 100, application_name: 'resultity-bench' });
  db.on('error', () => undefined);
  const problems: string[] = [];
  const runs: LedgerRun[] = [];
  const pgbench: PgbenchRun[] = [];
  let failed = false;
  let report: LedgerReport | null = null;
  try {
    await adminQuery(`CREATE DATABASE "${pgbenchDb}"`);
    log(`seeding: ${NAMESPACES + 1} namespaces with keys and credits, ${NODES} nodes; pgbench -i`);
    const { hot, many, nodes } = await seed(db);
    await pgbenchRun(['-i', '-q', '-s', '1', pgbenchDb]);

    const rcp = rcpClockFrom(config);
    const services = {
      naive: new SettlementService(settlementStore(db), config.OPERATOR_SHARE_BPS, rcp, null),
      batched: new SettlementService(settlementStore(db), config.OPERATOR_SHARE_BPS, rcp, batching),
    };
    const newJob = (c: Consumer): NewJob => ({
      id: newJobId(),
      namespaceId: c.namespaceId,
      apiKeyId: c.keyId,
      model: MODEL,
      maxAttempts: 1,
      ...JOB,
      holdMicro: HOLD_MICRO,
      deadlineAt: new Date(Date.now() + 3_600_000),
    });
    const consumerFor = (scope: 'hot' | 'many', i: number) => (scope === 'hot' ? hot : many[i % many.length]!);

    const pgbenchOnce = async (label: string) => {
      await poolEmptied(db);
      log(`pgbench -b simple-update -M prepared -c ${CONCURRENCY}: ${WARMUP_S} s warm-up + ${DURATION_S} s (${label})`);
      const r = await pgbenchSimpleUpdate(pgbenchDb, label);
      pgbench.push(r);
      log(`  ${r.tps.toFixed(0)} tps, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms`);
    };

    await pgbenchOnce('before');
    for (const operation of ['hold', 'settlement'] as const) {
      for (const scope of ['hot', 'many'] as const) {
        for (const path of ['naive', 'batched'] as const) {
          if (stop.signal.aborted) break;
          const service = services[path];
          log(`${operation} ${path}, ${scope === 'hot' ? 'one hot namespace' : `${NAMESPACES} namespaces`}, C=${CONCURRENCY}: ${WARMUP_S} s warm-up + ${DURATION_S} s`);
          const op =
            operation === 'hold'
              ? async (i: number) => {
                  await service.acceptWithHold(newJob(consumerFor(scope, i)), CAP_MICRO);
                }
              : async (i: number) => {
                  // The job's whole credit life in PostgreSQL: its hold (accept) and its settlement (the
                  // node's result: capture and release). The attempt's start lives in Redis, not here.
                  const job = newJob(consumerFor(scope, i));
                  const node = nodes[i % nodes.length]!;
                  await service.acceptWithHold(job, CAP_MICRO);
                  const settled = await service.complete({ jobId: job.id, attempt: 1, nodeId: node, usage: USAGE, outputEmpty: false, terms: termsOf(job) });
                  if (settled.outcome !== 'completed') throw new Error(`job ${job.id} was not settled (${settled.outcome})`);
                };
          let atStart = readCounters();
          let work = diffCounters(atStart, atStart);
          const result = await closedLoop(
            {
              concurrency: CONCURRENCY,
              warmupMs: WARMUP_S * 1000,
              durationMs: DURATION_S * 1000,
              maxOps: 10_000_000,
              signal: stop.signal,
              onWindow: (edge) => {
                if (edge === 'start') atStart = readCounters();
                else work = diffCounters(atStart, readCounters());
              },
            },
            (i) => op(i),
          );
          await services[path].drained();
          runs.push(summarize(operation, scope, path, result, work));
          log(`  ${line(runs.at(-1)!)}`);
        }
      }
    }
    if (!stop.signal.aborted) await pgbenchOnce('after');

    problems.push(...(await ledgerProblems(db)));
    report = {
      startedAt,
      finishedAt: new Date(),
      machine: {
        cpu: /^model name\s*:\s*(.+)$/m.exec(safeRead('/proc/cpuinfo'))?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown',
        cores: os.availableParallelism(),
        node: process.version,
        postgres: `${await postgresVersion(db)} (${await postgresSettings(db)})`,
      },
      params: { concurrency: CONCURRENCY, durationS: DURATION_S, warmupS: WARMUP_S, namespaces: NAMESPACES, pool: POOL, batching, holdMicro: HOLD_MICRO },
      runs,
      pgbench,
      problems,
      interrupted: stop.signal.aborted,
    };
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    await db.end();
    if (failed && process.env.KEEP_TEST_DATA !== '0') {
      log(`kept for inspection: databases ${ledgerDb} and ${pgbenchDb}`);
    } else {
      await adminQuery(`DROP DATABASE IF EXISTS "${ledgerDb}" WITH (FORCE)`);
      await adminQuery(`DROP DATABASE IF EXISTS "${pgbenchDb}" WITH (FORCE)`);
    }
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }

  process.stdout.write(`\n${renderLedgerTable(report)}\n`);
  if (problems.length > 0) process.stdout.write(`\nPROBLEMS:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
  if (OUTPUT !== '-') {
    writeSection(OUTPUT, LEDGER_SECTION, renderLedgerMarkdown(report));
    log(`wrote its section of ${OUTPUT}`);
  }
  return problems.length > 0 ? 1 : 0;
}

/** Consumers (account, namespace, key with a monthly cap, credits), nodes of one operator, the model. */
async function seed(db: Db): Promise<{ hot: Consumer; many: Consumer[]; nodes: string[] }> {
  await db.query(`INSERT INTO models (name, input_price_micro, output_price_micro) VALUES ($1, $2, $3)`, [MODEL, JOB.inputPriceMicro, JOB.outputPriceMicro]);
  const consumers = await withTransaction(db, async (tx) => {
    const account = (await tx.query<{ id: string }>(`INSERT INTO accounts (name) VALUES ('bench consumers') RETURNING id`)).rows[0]!.id;
    const r = await tx.query<{ namespace_id: string; key_id: string }>(
      `WITH ns AS (INSERT INTO namespaces (account_id, name) SELECT $1, 'ns-' || g FROM generate_series(0, $2 - 1) g RETURNING id)
       INSERT INTO api_keys (namespace_id, key_hash, key_prefix, monthly_cap_micro)
       SELECT id, sha256(convert_to(id::text, 'UTF8')), 'rk_bench', $3 FROM ns RETURNING namespace_id, id AS key_id`,
      [account, NAMESPACES + 1, CAP_MICRO],
    );
    return r.rows.map((row) => ({ namespaceId: row.namespace_id, keyId: row.key_id }));
  });
  await withTransaction(db, async (tx) => {
    const funding = await ledgerAccountId(tx, 'funding', null);
    const postings = [];
    for (const c of consumers) {
      const available = await ledgerAccountId(tx, 'ns_available', c.namespaceId);
      await ledgerAccountId(tx, 'ns_held', c.namespaceId);
      postings.push({
        kind: 'topup' as const,
        jobId: null,
        memo: 'bench',
        entries: [
          { accountId: funding, amount: -CREDITS_MICRO },
          { accountId: available, amount: CREDITS_MICRO },
        ],
      });
    }
    await postTransactions(tx, postings);
  });
  const operator = (await db.query<{ id: string }>(`INSERT INTO accounts (name) VALUES ('bench operator') RETURNING id`)).rows[0]!.id;
  const nodes = Array.from({ length: NODES }, () => `0x${randomBytes(20).toString('hex')}`);
  await db.query(`INSERT INTO nodes (id, operator_account_id) SELECT unnest($1::text[]), $2`, [nodes, operator]);
  // Resolve the operator's earnings account and the platform's once, as a running backbone has.
  await withTransaction(db, async (tx) => {
    await ledgerAccountId(tx, 'operator_earnings', operator);
    await ledgerAccountId(tx, 'platform_revenue', null);
  });
  const [hot, ...many] = consumers;
  return { hot: hot!, many, nodes };
}

/**
 * Every way the runs could have broken the ledger: unbalanced, a job held or settled other than once, a
 * settled job whose charge differs from what left its hold.
 */
async function ledgerProblems(db: Db): Promise<string[]> {
  const problems: string[] = [];
  const t = await ledgerTotals(db);
  if (t.entriesTotal !== 0 || t.balancesTotal !== 0 || t.mismatchedAccounts !== 0) problems.push(`the ledger does not balance: ${JSON.stringify(t)}`);
  const r = await db.query<{ bad_holds: number; bad_settlements: number; held_left: string; expected_held: string }>(
    `SELECT (SELECT count(*)::int FROM jobs j WHERE (SELECT count(*) FROM ledger_transactions t WHERE t.job_id = j.id AND t.kind = 'hold') <> 1) AS bad_holds,
            (SELECT count(*)::int FROM jobs j
              WHERE (SELECT count(*) FROM ledger_transactions t WHERE t.job_id = j.id AND t.kind IN ('capture', 'release'))
                    <> CASE WHEN j.status = 'completed' THEN 2 ELSE 0 END) AS bad_settlements,
            (SELECT coalesce(sum(balance), 0) FROM ledger_accounts WHERE kind = 'ns_held')::text AS held_left,
            (SELECT coalesce(sum(hold_micro), 0) FROM jobs WHERE status <> 'completed')::text AS expected_held`,
  );
  const row = r.rows[0]!;
  if (row.bad_holds > 0) problems.push(`${row.bad_holds} jobs not held exactly once`);
  if (row.bad_settlements > 0) problems.push(`${row.bad_settlements} jobs settled other than once (or settled without completing)`);
  if (row.held_left !== row.expected_held) problems.push(`held balances ${row.held_left} differ from the holds of unsettled jobs ${row.expected_held}`);
  return problems;
}

function summarize(operation: 'hold' | 'settlement', scope: 'hot' | 'many', path: 'naive' | 'batched', r: LoadResult, work: DbCounts): LedgerRun {
  const ops = Math.max(r.completed, 1);
  return {
    operation,
    scope,
    path,
    concurrency: r.concurrency,
    windowS: r.windowMs / 1000,
    completed: r.completed,
    errors: r.errors,
    errorSamples: r.errorSamples,
    opsPerSecond: r.completed / (r.windowMs / 1000),
    latencies: r.latencies,
    statementsPerOp: work.pgStatements / ops,
    commitsPerOp: work.pgCommits / ops,
    processCores: r.usage.processCores,
    machineCores: r.usage.machineCores,
    foreignCores: r.usage.foreignCores,
    cores: r.usage.cores,
  };
}

function line(r: LedgerRun): string {
  const q = (p: number) => (r.latencies[Math.min(r.latencies.length - 1, Math.max(0, Math.ceil(p * r.latencies.length) - 1))] ?? NaN).toFixed(2);
  return `${r.opsPerSecond.toFixed(0)} ops/s, p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, ${r.errors} errors, ${r.commitsPerOp.toFixed(2)} commits and ${r.statementsPerOp.toFixed(1)} statements per op; CPU: this process ${r.processCores.toFixed(2)} cores, machine ${r.machineCores.toFixed(2)}/${r.cores} (other work ${r.foreignCores.toFixed(2)})`;
}

/** pgbench's built-in simple-update script on its own scratch database, same clients and durations. */
async function pgbenchSimpleUpdate(database: string, label: string): Promise<PgbenchRun> {
  const common = ['-b', 'simple-update', '-M', 'prepared', '-c', String(CONCURRENCY), '-j', String(Math.min(CONCURRENCY, os.availableParallelism()))];
  await pgbenchRun([...common, '-n', '-T', String(WARMUP_S), database]);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rt-pgbench-'));
  try {
    const out = await pgbenchRun([...common, '-n', '-T', String(DURATION_S), '-l', `--log-prefix=${path.join(dir, 'tx')}`, database]);
    const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(out)?.[1] ?? NaN);
    // Per-transaction log lines: client_id transaction_no time_us script_no time_epoch time_us_part.
    const latencies = readdirSync(dir)
      .flatMap((f) => readFileSync(path.join(dir, f), 'utf8').split('\n'))
      .filter((l) => l.length > 0)
      .map((l) => Number(l.split(' ')[2]) / 1000);
    const sorted = Float64Array.from(latencies).sort();
    const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? NaN;
    return { label, tps, transactions: sorted.length, p50Ms: q(0.5), p99Ms: q(0.99), maxMs: q(1) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Groups processes for the CPU figures: this process and PostgreSQL's backends serving the two bench
 * databases (and its server processes) are this benchmark; everything else (other databases' backends,
 * other processes: the machine is shared) is foreign.
 */
function processLabeler(databases: string[]): Parameters<typeof labelProcesses>[0] {
  return (pid, command, cmdline) => {
    if (pid === process.pid) return { label: 'bench process', foreign: false };
    if (command === 'pgbench') return { label: 'pgbench', foreign: false };
    if (command === 'postgres') {
      // Backends are titled "postgres: <cluster>: <user> <database> <client> <state>".
      const title = safeCall(cmdline);
      if (databases.some((d) => title.includes(` ${d} `))) return { label: 'postgres (bench dbs)', foreign: false };
      if (/^postgres: \S+: \S+ \S+ \d/.test(title)) return { label: 'postgres (other dbs)', foreign: true };
      return { label: 'postgres (server processes)', foreign: false };
    }
    if (command.startsWith('kworker') || command === 'kdamond.0') return { label: command, foreign: false };
    return { label: 'other processes', foreign: true };
  };
}

function safeCall(fn: () => string): string {
  try {
    return fn();
  } catch {
    return '';
  }
}

/** Runs pgbench; tries again (up to 5 times, 3 s apart) when the shared server has no connection slot left for its clients. */
async function pgbenchRun(args: string[]): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      const { stdout, stderr } = await promisify(execFile)(process.env.PGBENCH ?? 'pgbench', ['-h', '127.0.0.1', '-U', 'postgres', ...args], {
        maxBuffer: 16 * 1024 * 1024,
      });
      return `${stdout}\n${stderr}`;
    } catch (err) {
      const text = `${(err as { stderr?: string }).stderr ?? ''}`;
      if (attempt >= 5 || !/too many clients/.test(text)) throw err;
      log(`pgbench: the server has no connection slot for ${CONCURRENCY} clients right now (other users); trying again in 3 s`);
      await new Promise((resolve) => setTimeout(resolve, 3_000));
    }
  }
}

/** Waits (at most 5 s) until the pool has closed its idle connections. */
async function poolEmptied(db: pg.Pool): Promise<void> {
  const end = Date.now() + 5_000;
  while (db.totalCount > 0 && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 50));
}

async function adminQuery(sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: `${SERVER}/postgres` });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

function safeRead(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

await runBench('bench:ledger', main);

/** The terms a job is accepted under (its ticket's): what its settlement charges from. */
function termsOf(job: NewJob): JobTerms {
  return { holdMicro: job.holdMicro, inputPriceMicro: job.inputPriceMicro, outputPriceMicro: job.outputPriceMicro, minChargeMicro: job.minChargeMicro, surchargeBps: job.surchargeBps ?? 0 };
}
