// Rendering the ledger benchmark (bench/ledger.ts): a terminal table and its section of BENCHMARKS.md.
import { quantile } from './load.js';

/** Its section's name in BENCHMARKS.md (see writeSection in report.ts). */
export const LEDGER_SECTION = 'ledger';

export type LedgerOperation = 'hold' | 'settlement';
export type LedgerScope = 'hot' | 'many';
export type LedgerPath = 'naive' | 'batched';

export interface LedgerRun {
  operation: LedgerOperation;
  scope: LedgerScope;
  path: LedgerPath;
  concurrency: number;
  windowS: number;
  completed: number;
  errors: number;
  errorSamples: string[];
  opsPerSecond: number;
  /** Sorted ascending, ms. */
  latencies: Float64Array;
  /** PostgreSQL statements and COMMITs sent per completed operation (client-side counts). */
  statementsPerOp: number;
  commitsPerOp: number;
  /** CPU used by this process (the settlement code and the load generator), and by the whole machine, in cores. */
  processCores: number;
  machineCores: number;
  /** CPU used by work that is no part of this benchmark (a shared machine), in cores. */
  foreignCores: number;
  cores: number;
}

export interface PgbenchRun {
  label: string;
  tps: number;
  transactions: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface LedgerReport {
  startedAt: Date;
  finishedAt: Date;
  machine: { cpu: string; cores: number; node: string; postgres: string };
  params: {
    concurrency: number;
    durationS: number;
    warmupS: number;
    namespaces: number;
    pool: number;
    batching: { maxItems: number; maxInFlight: number; lingerMs: number };
    holdMicro: number;
  };
  runs: LedgerRun[];
  /** pgbench before and after the ledger runs. */
  pgbench: PgbenchRun[];
  problems: string[];
  interrupted: boolean;
}

const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '-');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');
const ms = (n: number) => (!Number.isFinite(n) ? '-' : n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0));
const ratio = (a: number, b: number) => (b > 0 && Number.isFinite(a) ? (a / b >= 0.1 ? (a / b).toFixed(2) : (a / b).toFixed(3)) : '-');

const OPERATION: Record<LedgerOperation, string> = { hold: 'hold', settlement: 'settlement (hold + attempt + capture/release)' };
const scopeLabel = (r: LedgerReport, s: LedgerScope) => (s === 'hot' ? 'one hot namespace' : `${r.params.namespaces} namespaces`);

/** The pgbench rate the ratios divide by: the mean of the runs before and after (both are shown). */
function pgbenchTps(r: LedgerReport): number {
  const tps = r.pgbench.map((p) => p.tps).filter(Number.isFinite);
  return tps.length === 0 ? NaN : tps.reduce((a, b) => a + b, 0) / tps.length;
}

interface Comparison {
  operation: LedgerOperation;
  scope: LedgerScope;
  naive: LedgerRun;
  batched: LedgerRun;
}

function comparisons(r: LedgerReport): Comparison[] {
  const out: Comparison[] = [];
  for (const operation of ['hold', 'settlement'] as const) {
    for (const scope of ['hot', 'many'] as const) {
      const naive = r.runs.find((x) => x.operation === operation && x.scope === scope && x.path === 'naive');
      const batched = r.runs.find((x) => x.operation === operation && x.scope === scope && x.path === 'batched');
      if (naive && batched) out.push({ operation, scope, naive, batched });
    }
  }
  return out;
}

export function renderLedgerTable(r: LedgerReport): string {
  const head = ['operation', 'namespaces', 'path', 'ops/s', 'p50 ms', 'p99 ms', 'errors', 'commits/op', 'stmts/op'];
  const rows = r.runs.map((x) => [
    x.operation,
    x.scope,
    x.path,
    f0(x.opsPerSecond),
    ms(quantile(x.latencies, 0.5)),
    ms(quantile(x.latencies, 0.99)),
    String(x.errors),
    f2(x.commitsPerOp),
    x.statementsPerOp.toFixed(1),
  ]);
  for (const p of r.pgbench) rows.push(['pgbench simple-update', p.label, '-', f0(p.tps), ms(p.p50Ms), ms(p.p99Ms), '0', '1.00', '5.0']);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const lines = [fmt(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(fmt)];
  const base = pgbenchTps(r);
  for (const c of comparisons(r)) {
    lines.push(
      `${c.operation}, ${c.scope}: batched/naive ${ratio(c.batched.opsPerSecond, c.naive.opsPerSecond)}, naive/pgbench ${ratio(c.naive.opsPerSecond, base)}, batched/pgbench ${ratio(c.batched.opsPerSecond, base)}`,
    );
  }
  return lines.join('\n');
}

/** The ledger section of BENCHMARKS.md. */
export function renderLedgerMarkdown(r: LedgerReport): string {
  const p = r.params;
  const out: string[] = [];
  const w = (s = '') => out.push(s);
  const base = pgbenchTps(r);
  const maxForeign = Math.max(0, ...r.runs.map((x) => x.foreignCores));

  w('## Ledger: credit holds and settlements per second, beside pgbench');
  w();
  w(`Generated by \`npm run bench\` (or \`npm run bench:ledger\`; bench/ledger.ts) on ${r.finishedAt.toISOString()} (run started ${r.startedAt.toISOString()}); this section is rewritten by every run of it.`);
  if (r.interrupted) w('\n**This run was interrupted (Ctrl-C): the last window is partial.**');
  if (r.problems.length > 0) w(`\n**Problems detected during this run:** ${r.problems.join('; ')}.`);
  w();
  w(
    `Machine: ${r.machine.cpu}, **${r.machine.cores} cores, shared**: other engineers' test runs used the same cores and the same PostgreSQL server during this run ` +
      `(up to ${f2(maxForeign)} cores of other work measured during a window), so every figure here is noisy. Only the side-by-side ratios of one run mean much, and even they only as far as the other load was even. ` +
      `Node.js ${r.machine.node}; ${r.machine.postgres}.`,
  );
  w();
  w('### Method');
  w();
  w(
    `- **Operations**, through the real settlement code (src/jobs/settlement.service.ts) in this process: a **hold** is \`acceptWithHold\` (job row, ledger hold of ${p.holdMicro} micro-credits, ` +
      'the key\'s monthly-cap row checked and updated); a **settlement** is a job\'s whole credit life: its hold, its attempt start (the scheduler\'s own small transaction, the same on both paths), ' +
      'then `complete` (job completed, capture with the operator\'s share and the platform\'s, release of the rest, monthly spend, contribution points). Latency is per operation as its caller sees it (for a settlement, all three steps).',
  );
  w(
    `- **Paths**: **naive**: one transaction per operation (\`LEDGER_BATCH_MAX_ITEMS=1\`); **batched**: group commit (src/postgres/group-commit.ts) with the production settings ` +
      `(at most ${p.batching.maxItems} operations per transaction, ${p.batching.maxInFlight} such transactions at once per kind, linger ${p.batching.lingerMs} ms): concurrent holds (and completions) share one transaction, one round of row locks, set-based ledger writes and one COMMIT.`,
  );
  w(
    `- **Namespaces**: **one hot namespace** (every operation locks the same two ledger rows and the same key's monthly row) and **${p.namespaces} namespaces** (round robin, one key each). ` +
      'Every key has a monthly cap far above what the run spends, so the cap is checked and its row updated in every hold.',
  );
  w(
    `- **Load**: a closed loop of ${p.concurrency} clients, ${p.warmupS} s warm-up then ${p.durationS} s measured, per run; a pool of ${p.pool} PostgreSQL connections (the production default). ` +
      'A fresh database with the project\'s migrations; dropped afterwards.',
  );
  w(
    `- **pgbench**: \`pgbench -b simple-update -M prepared -c ${p.concurrency}\` (its own scratch database, \`pgbench -i -s 1\`) on the same server, same clients, same warm-up and duration, ` +
      'once before and once after the ledger runs; one pgbench transaction = BEGIN, UPDATE of a random account, SELECT, INSERT into history, END. Ratios use the mean of the two.',
  );
  w('- **Correctness**: after the runs the ledger must balance, every job must be held once and settled at most once (captured and released exactly once if completed); the run fails otherwise.');
  w();
  w('### Results');
  w();
  w('| Operation | Namespaces | Path | ops/s | p50 ms | p99 ms | max ms | ops in window | errors | COMMITs / op | statements / op |');
  w('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const x of r.runs) {
    w(
      `| ${OPERATION[x.operation]} | ${scopeLabel(r, x.scope)} | ${x.path} | **${f0(x.opsPerSecond)}** | ${ms(quantile(x.latencies, 0.5))} | ${ms(quantile(x.latencies, 0.99))} | ${ms(quantile(x.latencies, 1))} ` +
        `| ${x.completed} | ${x.errors} | ${f2(x.commitsPerOp)} | ${x.statementsPerOp.toFixed(1)} |`,
    );
  }
  for (const b of r.pgbench) w(`| pgbench simple-update (${b.label}) | 100,000 accounts | - | **${f0(b.tps)}** | ${ms(b.p50Ms)} | ${ms(b.p99Ms)} | ${ms(b.maxMs)} | ${b.transactions} | 0 | 1.00 | 5 |`);
  const errored = r.runs.filter((x) => x.errorSamples.length > 0);
  if (errored.length > 0) {
    w();
    for (const x of errored) w(`Errors (${x.operation}, ${x.scope}, ${x.path}), first ones: ${x.errorSamples.map((s) => `\`${s.replace(/`/g, "'")}\``).join('; ')}`);
  }
  w();
  w('### Ratios');
  w();
  w(`pgbench simple-update: ${r.pgbench.map((b) => `${f0(b.tps)} tps (${b.label})`).join(', ')}; mean ${f0(base)} tps.`);
  w();
  w('| Operation | Namespaces | naive ops/s | batched ops/s | **batched ÷ naive** | naive ÷ pgbench | batched ÷ pgbench | p50 ms naive / batched | p99 ms naive / batched |');
  w('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const c of comparisons(r)) {
    w(
      `| ${c.operation} | ${scopeLabel(r, c.scope)} | ${f0(c.naive.opsPerSecond)} | ${f0(c.batched.opsPerSecond)} | **${ratio(c.batched.opsPerSecond, c.naive.opsPerSecond)}** ` +
        `| ${ratio(c.naive.opsPerSecond, base)} | ${ratio(c.batched.opsPerSecond, base)} ` +
        `| ${ms(quantile(c.naive.latencies, 0.5))} / ${ms(quantile(c.batched.latencies, 0.5))} | ${ms(quantile(c.naive.latencies, 0.99))} / ${ms(quantile(c.batched.latencies, 0.99))} |`,
    );
  }
  w();
  w(
    'Reading it: a hold is heavier than a pgbench transaction (a job row with three indexes, a ledger transaction with two entries, checked by a deferred trigger at COMMIT, two balance rows and a monthly-spend row, all under row locks), ' +
      'and a settlement is three transactions\' worth of work; pgbench runs in C, this code in one Node.js process that shares the two cores with PostgreSQL. ' +
      'On one hot namespace every naive hold holds that namespace\'s row locks through its own COMMIT (a WAL flush), so holds there go one at a time; group commit takes the locks once per batch and flushes once for all of it. ' +
      'COMMITs per operation show how many operations shared a transaction.',
  );
  return out.join('\n');
}
