// Round trips per job, from both ends: what the backbone says it asked of each engine (its GET /metrics
// counters, scraped before and after a window) and what the engines say they did (PostgreSQL's
// pg_stat_database and pg_stat_wal, Redis's INFO commandstats). The pure parts (deltas, per-job figures,
// the budget verdicts) are unit-tested; the readers are thin.
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { parseExposition, sumSamples, type Sample } from '../src/metrics/exposition.js';
import { JOB_STAGE_METRIC, JOB_STAGES } from '../src/metrics/job-stages.js';

/** MongoDB commands that read (the budget allows none on the success path); findAndModify is counted a write. */
export const MONGO_READS = ['find', 'getMore', 'aggregate', 'count', 'distinct'] as const;
export const MONGO_WRITES = ['insert', 'update', 'delete', 'findAndModify', 'bulkWrite'] as const;

/** What GET /metrics said, reduced to the figures the budget needs. */
export interface BackboneCounts {
  pgStatements: number;
  /** Of pgStatements, BEGIN / COMMIT / ROLLBACK / SAVEPOINT-type round trips. */
  pgControl: number;
  pgTransactions: number;
  pgExplicit: number;
  pgImplicit: number;
  redisCommands: number;
  mongoReads: number;
  mongoWrites: number;
  mongoOther: number;
  publishes: number;
  deliveries: number;
  httpChat2xx: number;
}

export function backboneCounts(samples: readonly Sample[]): BackboneCounts {
  const pg = (kind: string | readonly string[]) => sumSamples(samples, 'resultity_pg_statements_total', { kind });
  const tx = (kind: string) => sumSamples(samples, 'resultity_pg_transactions_total', { kind });
  const mongoAll = sumSamples(samples, 'resultity_mongo_commands_total');
  const mongoReads = sumSamples(samples, 'resultity_mongo_commands_total', { command: MONGO_READS });
  const mongoWrites = sumSamples(samples, 'resultity_mongo_commands_total', { command: MONGO_WRITES });
  return {
    pgStatements: sumSamples(samples, 'resultity_pg_statements_total'),
    pgControl: pg(['begin', 'commit', 'rollback', 'savepoint', 'release']),
    pgTransactions: tx('explicit') + tx('implicit') + tx('rollback'),
    pgExplicit: tx('explicit'),
    pgImplicit: tx('implicit'),
    redisCommands: sumSamples(samples, 'resultity_redis_commands_total'),
    mongoReads,
    mongoWrites,
    mongoOther: mongoAll - mongoReads - mongoWrites,
    publishes: sumSamples(samples, 'resultity_rabbitmq_publishes_total', { outcome: 'ok' }),
    deliveries: sumSamples(samples, 'resultity_rabbitmq_deliveries_total'),
    httpChat2xx: sumSamples(samples, 'resultity_http_responses_total', { route: '/v1/chat/completions', status: '2xx' }),
  };
}

/** Seconds and observations so far, per job stage (src/metrics/job-stages.ts) and for the chat route's requests. */
export type StageTotals = Record<string, { seconds: number; count: number }>;

/** The route whose requests the load sends: its duration histogram is the backbone's own view of a job's latency. */
const CHAT_ROUTE = { route: '/v1/chat/completions', method: 'POST' };
export const CHAT_REQUEST = 'http request (whole)';

export function stageTotals(samples: readonly Sample[]): StageTotals {
  const out: StageTotals = {};
  for (const stage of JOB_STAGES) {
    out[stage] = {
      seconds: sumSamples(samples, `${JOB_STAGE_METRIC}_sum`, { stage }),
      count: sumSamples(samples, `${JOB_STAGE_METRIC}_count`, { stage }),
    };
  }
  out[CHAT_REQUEST] = {
    seconds: sumSamples(samples, 'resultity_http_request_seconds_sum', CHAT_ROUTE),
    count: sumSamples(samples, 'resultity_http_request_seconds_count', CHAT_ROUTE),
  };
  return out;
}

/** Per stage between two readings: the mean time of one observation (ms) and observations per job. */
export interface StageMean {
  stage: string;
  meanMs: number;
  perJob: number;
}

export function stageMeans(a: StageTotals, b: StageTotals, jobs: number): StageMean[] {
  return Object.keys(b).map((stage) => {
    const count = b[stage]!.count - (a[stage]?.count ?? 0);
    const seconds = b[stage]!.seconds - (a[stage]?.seconds ?? 0);
    return { stage, meanMs: count > 0 ? (seconds * 1000) / count : NaN, perJob: jobs > 0 ? count / jobs : NaN };
  });
}

/** Commands by name since boot, from the body of Redis's `INFO commandstats`. */
export function parseCommandstats(info: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of info.split(/\r?\n/)) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** What the engines said, at one moment. */
export interface EngineCounts {
  /** xact_commit + xact_rollback of the backbone's database. */
  backboneXacts: number;
  /** Of FerretDB's backing PostgreSQL cluster, every database (NaN when the bench did not start it). */
  ferretXacts: number;
  /** pg_stat_wal.wal_sync: WAL flushes of the backbone's cluster (every database on it, every client). */
  walSyncs: number;
  /** The same, of FerretDB's own cluster (NaN when the bench did not start it). */
  ferretWalSyncs: number;
  walRecords: number;
  /** Every Redis command the server ran (every client: the whole server). */
  redisCalls: number;
}

export type Snapshot = { backbone: BackboneCounts; engines: EngineCounts; at: number };

export type PerJob<T> = { [K in keyof T]: number };

/** (b - a) / jobs for every field; NaN when there were no jobs. */
export function perJob<T extends object>(a: T, b: T, jobs: number): PerJob<T> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(a) as Array<keyof T & string>) {
    const x = a[k] as unknown as number;
    const y = b[k] as unknown as number;
    out[k] = jobs > 0 ? (y - x) / jobs : NaN;
  }
  return out as PerJob<T>;
}

export interface BudgetLine {
  what: string;
  measured: number;
  budget: number;
  /** Where the figure comes from (the backbone's counters, or the engine). */
  source: string;
  pass: boolean;
}

/** The round-trip budget of issue 8 (DESIGN.md "Cost budget of one successful job"), checked against a run's per-job figures. */
export function budgetLines(b: PerJob<BackboneCounts>, e: PerJob<EngineCounts>): BudgetLine[] {
  const line = (what: string, measured: number, budget: number, source: string): BudgetLine => ({
    what,
    measured,
    budget,
    source,
    // A small tolerance: background work (heartbeats, sweeps) spread over the window's jobs.
    pass: Number.isFinite(measured) && measured <= budget + 0.05,
  });
  return [
    line('PostgreSQL transactions', b.pgTransactions, 2, 'backbone pool (COMMITs + single statements)'),
    line('PostgreSQL transactions (server)', e.backboneXacts, 2, 'pg_stat_database, backbone db'),
    line('WAL flushes', e.walSyncs, 2, "pg_stat_wal.wal_sync, the backbone's cluster (all of it)"),
    line('PostgreSQL statements', b.pgStatements, 6, 'backbone pool (every round trip, BEGIN/COMMIT included)'),
    line('Redis commands', b.redisCommands, 5, 'backbone clients'),
    line('MongoDB reads', b.mongoReads, 0, 'backbone driver (find, getMore, aggregate, count, distinct)'),
    line('confirmed publishes', b.publishes, 1, 'backbone publishers'),
  ];
}

// ---- readers --------------------------------------------------------------------------------------

export async function scrapeBackbone(baseUrl: string): Promise<{ counts: BackboneCounts; stages: StageTotals }> {
  const res = await fetch(`${baseUrl}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
  const samples = parseExposition(await res.text());
  return { counts: backboneCounts(samples), stages: stageTotals(samples) };
}

/**
 * The engines' own counters. `ferret`: a connection to the PostgreSQL cluster FerretDB stores on, when
 * it is a cluster of its own (scripts/bench.sh makes one); null when FerretDB shares the backbone's.
 */
export async function readEngines(db: pg.Pool, redis: Redis, backboneDb: string, ferret: pg.Pool | null): Promise<EngineCounts> {
  const wal = (q: pg.Pool) => q.query<{ wal_sync: number; wal_records: number }>(`SELECT wal_sync::float8 AS wal_sync, wal_records::float8 AS wal_records FROM pg_stat_wal`);
  const [stats, own, info, ferretStats, ferretWal] = await Promise.all([
    db.query<{ x: number }>(`SELECT (xact_commit + xact_rollback)::float8 AS x FROM pg_stat_database WHERE datname = $1`, [backboneDb]),
    wal(db),
    redis.info('commandstats'),
    ferret?.query<{ x: number }>(`SELECT sum(xact_commit + xact_rollback)::float8 AS x FROM pg_stat_database`),
    ferret ? wal(ferret) : undefined,
  ]);
  let redisCalls = 0;
  for (const n of parseCommandstats(info).values()) redisCalls += n;
  return {
    backboneXacts: stats.rows[0]?.x ?? NaN,
    ferretXacts: ferretStats?.rows[0]?.x ?? NaN,
    walSyncs: own.rows[0]?.wal_sync ?? NaN,
    ferretWalSyncs: ferretWal?.rows[0]?.wal_sync ?? NaN,
    walRecords: own.rows[0]?.wal_records ?? NaN,
    redisCalls,
  };
}
