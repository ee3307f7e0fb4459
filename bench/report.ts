// Rendering the end-to-end benchmark (e2e.ts): a plain-text summary for the terminal and the top part of
// BENCHMARKS.md (the other benchmarks own marked sections below it; see writeSection). The figures are
// computed by the pure functions here (figures(), cpuPerJob()), unit-tested apart from the rendering.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { quantile, type LoadResult, type Usage } from './load.js';
import type { Machine } from './machine.js';
import { budgetLines, CHAT_REQUEST, type BackboneCounts, type BudgetLine, type EngineCounts, type PerJob, type StageMean } from './engine-stats.js';

export type RunKind = 'backbone' | 'backbone-stream' | 'backbone-stored' | 'floor' | 'bullmq';

export interface E2eRun {
  kind: RunKind;
  concurrency: number;
  result: LoadResult;
  /** Streaming runs: each measured request's time to first token, ms, ascending. */
  ttft: Float64Array | null;
  /** CPU over the measured window, by process group (this process's /proc readings at the window's edges). */
  usage: Usage;
  /** Backbone runs: its /metrics counters and the engines' own counters, per completed job. */
  backbone: PerJob<BackboneCounts> | null;
  engines: PerJob<EngineCounts> | null;
  /** Backbone runs: the mean time of each stage of a job, as the backbone measured it (src/metrics/job-stages.ts). */
  stages: StageMean[] | null;
  /** Mean time a node's runtime spent per job (the node's own work), NaN when not measured. */
  runtimeMeanMs: number;
}

export interface E2eReport {
  startedAt: Date;
  finishedAt: Date;
  machine: Machine;
  params: { concurrencies: number[]; durationS: number; warmupS: number; nodes: number; nodeCapacity: number; maxTokens: number; stored: number; collection: string };
  runs: E2eRun[];
  problems: string[];
  interrupted: boolean;
}

const KIND_LABEL: Record<RunKind, string> = {
  backbone: 'backbone, sync',
  'backbone-stream': 'backbone, streaming',
  'backbone-stored': 'backbone, sync, payloads stored',
  floor: 'naive floor',
  bullmq: 'BullMQ bare',
};

/** Process groups of the CPU table, in order; the labels are bench/e2e.ts's processLabeler's. */
export const CPU_GROUPS: ReadonlyArray<{ column: string; labels: readonly string[]; backboneSide: boolean }> = [
  { column: 'backbone', labels: ['backbone process'], backboneSide: true },
  { column: 'pg (backbone db)', labels: ['postgres: backbone db'], backboneSide: true },
  { column: 'FerretDB + its pg', labels: ['ferretdb', 'postgres: FerretDB db'], backboneSide: true },
  { column: 'redis', labels: ['redis-server'], backboneSide: true },
  { column: 'rabbitmq', labels: ['beam.smp'], backboneSide: true },
  { column: 'pg server procs', labels: ['postgres: server processes'], backboneSide: true },
  { column: 'nodes', labels: ['nodes process'], backboneSide: false },
  { column: 'load', labels: ['load process'], backboneSide: false },
  { column: 'pg (floor db)', labels: ['postgres: floor db'], backboneSide: false },
  { column: 'bench own (+pg)', labels: ['bench (this process)', "postgres: bench's own"], backboneSide: false },
];

export interface Figures {
  jobsPerSecond: number;
  p50: number;
  p99: number;
  /** Latency minus the node runtime's mean time per job (the latency itself when that was not measured). */
  addedP50: number;
  addedP99: number;
  ttftP50: number;
  ttftP99: number;
}

export function figures(r: E2eRun): Figures {
  const lat = r.result.latencies;
  const runtime = Number.isFinite(r.runtimeMeanMs) ? r.runtimeMeanMs : 0;
  const p50 = quantile(lat, 0.5);
  const p99 = quantile(lat, 0.99);
  return {
    jobsPerSecond: r.result.windowMs > 0 ? r.result.completed / (r.result.windowMs / 1000) : NaN,
    p50,
    p99,
    addedP50: p50 - runtime,
    addedP99: p99 - runtime,
    ttftP50: r.ttft ? quantile(r.ttft, 0.5) : NaN,
    ttftP99: r.ttft ? quantile(r.ttft, 0.99) : NaN,
  };
}

/**
 * CPU milliseconds per completed job, by the groups of CPU_GROUPS, plus `backbone+engines` (the groups on
 * the backbone's side: what issue 8's "CPU per job" target counts; the shared engine servers also serve
 * other work on a shared machine, so it is an upper bound) and `foreign` (other work on the machine, in
 * cores, not per job).
 */
export function cpuPerJob(r: E2eRun): { byGroup: Map<string, number>; backboneSide: number; foreignCores: number } {
  const seconds = r.result.windowMs / 1000;
  const per = r.result.completed > 0 ? (seconds * 1000) / r.result.completed : NaN;
  const byGroup = new Map<string, number>();
  let backboneSide = 0;
  for (const g of CPU_GROUPS) {
    const cores = r.usage.byCommand.filter((c) => g.labels.includes(c.command)).reduce((s, c) => s + c.cores, 0);
    byGroup.set(g.column, cores * per);
    if (g.backboneSide) backboneSide += cores * per;
  }
  return { byGroup, backboneSide, foreignCores: r.usage.foreignCores };
}

const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '-');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');
const ms = (n: number) => (!Number.isFinite(n) ? '-' : Math.abs(n) < 10 ? n.toFixed(2) : Math.abs(n) < 100 ? n.toFixed(1) : n.toFixed(0));
const rt = (n: number) => (!Number.isFinite(n) ? '-' : n.toFixed(2));
const ratio = (a: number, b: number) => (b > 0 && Number.isFinite(a) ? (a / b >= 0.1 ? (a / b).toFixed(2) : (a / b).toFixed(3)) : '-');

function find(report: E2eReport, kind: RunKind, c: number): E2eRun | undefined {
  return report.runs.find((r) => r.kind === kind && r.concurrency === c);
}

export interface Headline {
  figure: string;
  value: string;
  detail: string;
  target: string;
  /** False when this run missed the target; then `holds` says which engine or step holds it, with its numbers. */
  met: boolean;
  holds: string;
}

/** The headline figures of issue 8, each beside its target and, when missed, what holds it. */
export function headline(report: E2eReport): Headline[] {
  const out: Headline[] = [];
  const b1 = find(report, 'backbone', 1);
  const f1 = find(report, 'floor', 1);
  if (b1) {
    const x = figures(b1);
    const fl = f1 ? figures(f1) : null;
    out.push({
      figure: 'added latency at C=1, p50 / p99',
      value: `${ms(x.addedP50)} / ${ms(x.addedP99)} ms`,
      detail: fl ? `floor's whole pipeline: ${ms(fl.p50)} / ${ms(fl.p99)} ms (backbone ÷ floor ${ratio(x.addedP50, fl.p50)} / ${ratio(x.addedP99, fl.p99)})` : 'no floor run',
      target: '≤ 8 / ≤ 20 ms',
      met: x.addedP50 <= 8 && x.addedP99 <= 20,
      holds: `the path's stages, longest first: ${longestStages(b1, CRITICAL_PATH)}; the backbone process is busy ${f2(cpuPerJob(b1).byGroup.get('backbone') ?? NaN)} ms of each job`,
    });
  }
  const st = find(report, 'backbone-stream', 1);
  if (st) {
    const x = figures(st);
    out.push({
      figure: 'time to first token, streaming, C=1, p50 / p99',
      value: `${ms(x.ttftP50)} / ${ms(x.ttftP99)} ms`,
      detail: `nodes at 0 ms: all of it is the backbone's (whole stream ${ms(x.p50)} ms p50)`,
      target: '≤ 5 ms p50',
      met: x.ttftP50 <= 5,
      holds: `the stages before the first token, longest first: ${longestStages(st, FIRST_TOKEN_PATH)}`,
    });
  }
  for (const c of report.params.concurrencies.filter((c) => c > 1)) {
    const b = find(report, 'backbone', c);
    const fl = find(report, 'floor', c);
    if (!b) continue;
    const x = figures(b);
    const y = fl ? figures(fl) : null;
    out.push({
      figure: `jobs/s at C=${c}, backbone ÷ naive floor`,
      value: y ? ratio(x.jobsPerSecond, y.jobsPerSecond) : '-',
      detail: `${f0(x.jobsPerSecond)} ÷ ${y ? f0(y.jobsPerSecond) : '-'} jobs/s`,
      target: '≥ 1.0 (aim 1.5)',
      met: y !== null && x.jobsPerSecond >= y.jobsPerSecond,
      holds: cpuBound(report, b, fl),
    });
  }
  for (const c of report.params.concurrencies) {
    const b = find(report, 'backbone', c);
    if (!b) continue;
    const cpu = cpuPerJob(b);
    out.push({
      figure: `CPU per job at C=${c}, backbone + its engines`,
      value: `${f2(cpu.backboneSide)} ms`,
      detail: 'see the CPU table',
      target: '≤ 4 ms',
      met: cpu.backboneSide <= 4,
      holds: `largest groups: ${largestGroups(cpu.byGroup, true)}`,
    });
  }
  const stored = report.runs.find((r) => r.kind === 'backbone-stored');
  if (b1 && stored) {
    const x = figures(b1);
    const y = figures(stored);
    out.push({
      figure: `added latency at C=1 with ${report.params.stored.toLocaleString('en')} payloads stored ÷ with none, p50 / p99`,
      value: `${ratio(y.addedP50, x.addedP50)} / ${ratio(y.addedP99, x.addedP99)}`,
      detail: `${ms(y.addedP50)} / ${ms(y.addedP99)} ms against ${ms(x.addedP50)} / ${ms(x.addedP99)} ms`,
      target: '≤ 1.1',
      met: y.addedP50 <= 1.1 * x.addedP50 && y.addedP99 <= 1.1 * x.addedP99,
      holds: `stages that grew, most first: ${grownStages(b1, stored)}; backbone-side CPU ${f2(cpuPerJob(stored).backboneSide)} against ${f2(cpuPerJob(b1).backboneSide)} ms per job`,
    });
  }
  return out;
}

/** The stages a synchronous job waits on one after the other (queued contains accept_commit and publish). */
const CRITICAL_PATH = ['accept_checks', 'queued', 'place', 'dispatch', 'node', 'settle', 'complete'];
/** Those a streamed job passes before its first token reaches the relay. */
const FIRST_TOKEN_PATH = ['accept_checks', 'queued', 'place', 'dispatch', 'stream_commit'];

/** "settle 3.19 ms, queued 2.82 ms, ..." for the named stages of a run, longest first. */
function longestStages(r: E2eRun, names: readonly string[]): string {
  const stages = (r.stages ?? []).filter((m) => names.includes(m.stage) && Number.isFinite(m.meanMs));
  if (stages.length === 0) return 'no stage figures';
  return stages
    .sort((a, b) => b.meanMs - a.meanMs)
    .slice(0, 4)
    .map((m) => `${m.stage} ${f2(m.meanMs)} ms`)
    .join(', ');
}

/** The stages whose mean grew from run `a` to run `b`, most first. */
function grownStages(a: E2eRun, b: E2eRun): string {
  const grown = (b.stages ?? [])
    .filter((m) => m.stage !== CHAT_REQUEST)
    .map((m) => ({ stage: m.stage, delta: m.meanMs - (a.stages?.find((x) => x.stage === m.stage)?.meanMs ?? NaN) }))
    .filter((g) => Number.isFinite(g.delta) && g.delta > 0.05)
    .sort((x, y) => y.delta - x.delta)
    .slice(0, 3);
  return grown.length === 0 ? 'none' : grown.map((g) => `${g.stage} +${f2(g.delta)} ms`).join(', ');
}

/** "backbone 5.16, pg (backbone db) 3.13, ..." ms per job: the largest CPU groups of one side. */
function largestGroups(byGroup: Map<string, number>, backboneSide: boolean): string {
  return CPU_GROUPS.filter((g) => g.backboneSide === backboneSide)
    .map((g) => ({ column: g.column, value: byGroup.get(g.column) ?? NaN }))
    .filter((g) => Number.isFinite(g.value) && g.value > 0.005)
    .sort((a, b) => b.value - a.value)
    .slice(0, 4)
    .map((g) => `${g.column} ${f2(g.value)} ms`)
    .join(', ');
}

/**
 * Throughput against the floor: how much of the machine's cores the run kept busy (all its processes and
 * the other work seen), and the CPU per job of the backbone's side beside the floor's, which is what a
 * CPU-bound run's throughput divides.
 */
function cpuBound(report: E2eReport, b: E2eRun, fl: E2eRun | undefined): string {
  const cpu = cpuPerJob(b);
  const jobs = figures(b).jobsPerSecond;
  const everyProcess = (byGroup: Map<string, number>) => [...byGroup.values()].filter(Number.isFinite).reduce((s, v) => s + v, 0);
  const perJob = everyProcess(cpu.byGroup);
  const busy = (perJob * jobs) / 1000 + cpu.foreignCores;
  const floorPerJob = fl ? everyProcess(cpuPerJob(fl).byGroup) : NaN;
  return (
    `CPU: ${f2(busy)} of ${report.machine.cores} cores busy (this run's processes ${f2((perJob * jobs) / 1000)}, other work ${f2(cpu.foreignCores)}); ` +
    `every process together spends ${f2(perJob)} ms per job against the floor's ${f2(floorPerJob)} ms; backbone side: ${largestGroups(cpu.byGroup, true)}`
  );
}

function table(head: string[], rows: string[][], align?: Array<'l' | 'r'>): string[] {
  const a = align ?? head.map((_, i) => (i === 0 ? 'l' : 'r'));
  return [`| ${head.join(' | ')} |`, `| ${a.map((x) => (x === 'l' ? '---' : '---:')).join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}

function textTable(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [fmt(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(fmt)];
}

function mainRows(report: E2eReport): { head: string[]; rows: string[][] } {
  const head = ['run', 'C', 'jobs/s', 'p50 ms', 'p99 ms', 'added p50 / p99 ms', 'TTFT p50 / p99 ms', 'jobs', 'errors', 'CPU ms/job (backbone side)'];
  const rows = report.runs.map((r) => {
    const x = figures(r);
    const isBackbone = r.kind.startsWith('backbone');
    return [
      KIND_LABEL[r.kind],
      String(r.concurrency),
      f0(x.jobsPerSecond),
      ms(x.p50),
      ms(x.p99),
      isBackbone ? `${ms(x.addedP50)} / ${ms(x.addedP99)}` : '',
      r.ttft ? `${ms(x.ttftP50)} / ${ms(x.ttftP99)}` : '',
      String(r.result.completed),
      String(r.result.errors),
      isBackbone ? f2(cpuPerJob(r).backboneSide) : '',
    ];
  });
  return { head, rows };
}

function backboneRuns(report: E2eReport): E2eRun[] {
  return report.runs.filter((r) => r.kind.startsWith('backbone') && r.backbone && r.engines);
}

const runName = (r: E2eRun) => `${r.kind === 'backbone' ? '' : `${KIND_LABEL[r.kind].replace('backbone, ', '')} `}C=${r.concurrency}`;

function budgetRows(report: E2eReport): { head: string[]; rows: string[][] } | null {
  const runs = backboneRuns(report);
  if (runs.length === 0) return null;
  const lines = runs.map((r) => budgetLines(r.backbone!, r.engines!));
  const first = lines[0]!;
  const head = ['per successful job', 'budget', ...runs.map(runName), 'source'];
  const rows = first.map((l, i) => [
    l.what,
    `≤ ${l.budget}`,
    ...lines.map((ls) => {
      const x: BudgetLine = ls[i]!;
      return `${rt(x.measured)} ${x.pass ? 'PASS' : 'FAIL'}`;
    }),
    l.source,
  ]);
  return { head, rows };
}

function roundTripRows(report: E2eReport): { head: string[]; rows: string[][] } | null {
  const runs = backboneRuns(report);
  if (runs.length === 0) return null;
  const head = ['per job', ...runs.map(runName)];
  const row = (name: string, f: (b: PerJob<BackboneCounts>, e: PerJob<EngineCounts>) => number) => [name, ...runs.map((r) => rt(f(r.backbone!, r.engines!)))];
  return {
    head,
    rows: [
      row('PG statements sent (round trips)', (b) => b.pgStatements),
      row('  of which BEGIN/COMMIT/ROLLBACK/SAVEPOINT', (b) => b.pgControl),
      row('PG transactions, backbone pool (COMMIT + implicit + ROLLBACK)', (b) => b.pgTransactions),
      row('  explicit (COMMIT) / implicit', (b) => b.pgExplicit),
      row('  implicit (single statement)', (b) => b.pgImplicit),
      row('PG transactions, server: backbone db (pg_stat_database)', (_b, e) => e.backboneXacts),
      row('PG transactions, server: FerretDB\'s own cluster', (_b, e) => e.ferretXacts),
      row('WAL flushes, the backbone\'s cluster (pg_stat_wal.wal_sync)', (_b, e) => e.walSyncs),
      row('WAL flushes, FerretDB\'s own cluster', (_b, e) => e.ferretWalSyncs),
      row('WAL records, the backbone\'s cluster', (_b, e) => e.walRecords),
      row('Redis commands, backbone clients', (b) => b.redisCommands),
      row('Redis commands, whole server (INFO commandstats)', (_b, e) => e.redisCalls),
      row('MongoDB reads (find, getMore, aggregate, count, distinct)', (b) => b.mongoReads),
      row('MongoDB writes (insert, update, delete, findAndModify)', (b) => b.mongoWrites),
      row('MongoDB other commands', (b) => b.mongoOther),
      row('RabbitMQ publishes confirmed', (b) => b.publishes),
      row('RabbitMQ deliveries settled', (b) => b.deliveries),
    ],
  };
}

/** Where a job's time goes: each stage's mean, as the backbone measured it, per backbone run. */
function stageRows(report: E2eReport): { head: string[]; rows: string[][] } | null {
  const runs = backboneRuns(report).filter((r) => r.stages);
  if (runs.length === 0) return null;
  const names = runs[0]!.stages!.map((m) => m.stage);
  const cell = (m: StageMean | undefined) => {
    if (!m || !Number.isFinite(m.meanMs)) return '-';
    // A stage seen more or less than once per job says so (retries, a stage only some jobs have).
    return Math.abs(m.perJob - 1) > 0.05 ? `${f2(m.meanMs)} (×${f2(m.perJob)})` : f2(m.meanMs);
  };
  return {
    head: ['stage (mean ms)', ...runs.map(runName)],
    rows: names.map((stage) => [stage === CHAT_REQUEST ? 'HTTP request, arrival to reply (Fastify)' : stage, ...runs.map((r) => cell(r.stages!.find((m) => m.stage === stage)))]),
  };
}

function cpuRows(report: E2eReport): { head: string[]; rows: string[][] } {
  const head = ['run', 'C', ...CPU_GROUPS.map((g) => g.column), 'backbone side', 'not this bench (cores)'];
  const rows = report.runs.map((r) => {
    const c = cpuPerJob(r);
    return [KIND_LABEL[r.kind], String(r.concurrency), ...CPU_GROUPS.map((g) => f2(c.byGroup.get(g.column) ?? NaN)), f2(c.backboneSide), f2(c.foreignCores)];
  });
  return { head, rows };
}

/** The terminal summary. */
export function renderTable(report: E2eReport): string {
  const out: string[] = [];
  const m = mainRows(report);
  out.push(...textTable(m.head, m.rows), '');
  for (const h of headline(report)) out.push(`${h.figure}: ${h.value}  (${h.detail}; target ${h.target}${h.met ? ', met' : `, MISSED: ${h.holds}`})`);
  const b = budgetRows(report);
  if (b) out.push('', 'round-trip budget, per successful job:', ...textTable(b.head.slice(0, -1), b.rows.map((r) => r.slice(0, -1))));
  const st = stageRows(report);
  if (st) out.push('', "where a job's time goes (the backbone's own measurements):", ...textTable(st.head, st.rows));
  const c = cpuRows(report);
  out.push('', 'CPU ms per job by process group:', ...textTable(c.head, c.rows));
  return out.join('\n');
}

/** The top part of BENCHMARKS.md: the end-to-end benchmark, regenerated by every run. */
export function renderMarkdown(report: E2eReport): string {
  const { machine: mc, params: p } = report;
  const out: string[] = ['# Benchmarks', '', '## End to end: the backbone alone (`npm run bench`)', ''];
  out.push(
    `Run ${report.startedAt.toISOString()} to ${report.finishedAt.toISOString()}${report.interrupted ? ' (INTERRUPTED: partial)' : ''}, by \`bench/e2e.ts\`. ` +
      'The backbone runs as `resultity serve` (every role) in a process of its own, with a database, MongoDB database, Redis key prefix and RabbitMQ prefix of its own; ' +
      `${p.nodes} simulated nodes (capacity ${p.nodeCapacity} each, 0 ms, ${p.maxTokens} tokens) run by the real node agent in a second process; ` +
      'a closed loop of C clients (each its own API key and namespace) calls `POST /v1/chat/completions` from a third. ' +
      `Each run: ${p.warmupS} s warm-up, then ${p.durationS} s measured. References in the same run, on the same engines: the naive floor pipeline (\`bench/floor.ts\`) and BullMQ bare (\`bench/bullmq.ts\`).`,
    '',
    `Machine: ${mc.cpu}, ${mc.cores} cores, ${mc.ramGiB.toFixed(1)} GiB, ${mc.kernel}; Node ${mc.node}; ${mc.postgres} (${mc.postgresSettings}); ${mc.redis}; ${mc.rabbitmq}; ${mc.mongo}.`,
    '',
  );
  if (report.problems.length > 0) out.push('**PROBLEMS in this run** (the figures below are not to be trusted):', '', ...report.problems.map((x) => `- ${x}`), '');
  out.push('### Against the targets of issue 8', '');
  out.push(
    ...table(['figure', 'this run', 'absolute figures', 'target', 'met', 'what holds it (when missed)'], headline(report).map((h) => [h.figure, h.value, h.detail, h.target, h.met ? 'yes' : '**no**', h.met ? '' : h.holds]), ['l', 'r', 'l', 'l', 'l', 'l']),
    '',
  );
  const m = mainRows(report);
  out.push('### Throughput and latency', '', ...table(m.head, m.rows), '');
  out.push(
    '"Added" is the client\'s latency minus the mean time the node\'s runtime spent per job (measured in the nodes process; at 0 ms it is a few hundredths of a millisecond), so it is everything the backbone, the engines and the network between them add. ' +
      'TTFT is the time from sending the request to the first content token of the stream. CPU is per completed job, in milliseconds, over the measured window.',
    '',
  );
  const b = budgetRows(report);
  if (b) {
    out.push('### Round-trip budget (DESIGN.md, issue 8)', '', ...table(b.head, b.rows, b.head.map((_, i) => (i === 0 || i === b.head.length - 1 ? 'l' : 'r'))), '');
    out.push(
      'Counted, not estimated: the backbone\'s own clients are instrumented (`GET /metrics`, src/metrics), read before and after each window and divided by the jobs completed in it; background work (heartbeats, sweeps, the status cache) is spread over those jobs. ' +
        'A PostgreSQL statement is one round trip, BEGIN and COMMIT included; a transaction is a COMMIT or a statement outside BEGIN..COMMIT. ' +
        'The server-side figures are the engines\' own counters: `pg_stat_database` (flushed by each backend about once a second, so approximate over a window), and `pg_stat_wal.wal_sync`, which counts the WAL flushes of the WHOLE cluster: on a shared machine, other databases\' commits land in it too.',
      '',
    );
  }
  const rtr = roundTripRows(report);
  if (rtr) out.push('### Round trips per job, in detail', '', ...table(rtr.head, rtr.rows), '');
  const st = stageRows(report);
  if (st) {
    out.push("### Where a job's time goes", '', ...table(st.head, st.rows), '');
    out.push(
      'Each stage as the process that runs it measured it (`resultity_job_stage_seconds`, src/metrics/job-stages.ts, read from GET /metrics at the window\'s edges): the mean of one observation, in ms, and how many there were per job when not one. ' +
        '`queued` runs from the job\'s creation to the scheduler\'s receipt, so it contains `accept_commit` and `publish`; `node` runs from the dispatch to the result at the gateway, so it contains the node\'s work and both hops. ' +
        'What the stages leave out of the HTTP request is the request\'s parsing and authentication, the \'finished\' event\'s way to the waiting request and the reply.',
      '',
    );
  }
  const c = cpuRows(report);
  out.push('### CPU per job by process group (ms)', '', ...table(c.head, c.rows), '');
  out.push(
    'From /proc/<pid>/stat at the window\'s edges. PostgreSQL backends are grouped by the database they serve: the backbone\'s, FerretDB\'s, the floor\'s; this benchmark\'s own backend (statistics reads) is named apart. ' +
      '"Backbone side" sums the backbone process and the engines it uses (its PostgreSQL backends, FerretDB and its PostgreSQL, redis-server, beam.smp, the PostgreSQL server processes such as the WAL writer): the shared servers also serve other work, so it is an upper bound. ' +
      '"Not this bench" is other work seen on the machine during the window, in cores (the machine is shared).',
    '',
  );
  const stored = report.runs.find((r) => r.kind === 'backbone-stored');
  if (stored) {
    out.push(
      `The stored-payloads run put ${p.stored.toLocaleString('en')} documents shaped like the backbone's into its payload collection (\`${p.collection}\`) through the driver, then ran C=1 again; its reference is the first C=1 run, on a collection holding only that run's payloads.`,
      '',
    );
  }
  const errors = report.runs.filter((r) => r.result.errorSamples.length > 0);
  if (errors.length > 0) {
    out.push('Errors seen (samples):', '', ...errors.map((r) => `- ${KIND_LABEL[r.kind]} C=${r.concurrency}: ${r.result.errorSamples.map((e) => `\`${e.replace(/`/g, "'").slice(0, 160)}\``).join('; ')}`), '');
  }
  return out.join('\n');
}

/** The CPU breakdown of a window, busiest first: "redis-server 0.31, ...". */
export function cpuList(u: Usage): string {
  const list = u.byCommand.map((c) => ({ ...c }));
  if (u.unattributedCores >= 0.01) list.push({ command: 'short-lived processes', cores: u.unattributedCores });
  list.sort((a, b) => b.cores - a.cores);
  return list.map((c) => `${c.command} ${f2(c.cores)}`).join(', ') || '-';
}


// ---- BENCHMARKS.md, shared by several benchmarks --------------------------------------------------
// The end-to-end benchmark (e2e.ts) writes the document itself; any other benchmark (ledger.ts) owns a
// section of it between two marker comments. Each run rewrites only its own part and keeps the others.

const sectionMarkers = (name: string) => ({ open: `<!-- section:${name} -->`, close: `<!-- /section:${name} -->` });
const SECTION_PATTERN = /<!-- section:([a-z0-9-]+) -->[\s\S]*?<!-- \/section:\1 -->\n?/g;

function readIfExists(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

/** Writes the document's own part (the end-to-end report), keeping every benchmark section after it. */
export function writeDocument(file: string, markdown: string): void {
  const sections = readIfExists(file).match(SECTION_PATTERN) ?? [];
  writeFileSync(file, [markdown.trimEnd(), ...sections.map((x) => x.trimEnd())].join('\n\n') + '\n');
}

/** Replaces (or appends) the named section, keeping the rest of the document as it is. */
export function writeSection(file: string, name: string, markdown: string): void {
  const { open, close } = sectionMarkers(name);
  const block = `${open}\n${markdown.trimEnd()}\n${close}`;
  const current = readIfExists(file);
  const start = current.indexOf(open);
  const end = current.indexOf(close);
  const next =
    start >= 0 && end > start
      ? current.slice(0, start) + block + current.slice(end + close.length)
      : `${current.trimEnd() || '# Benchmarks'}\n\n${block}\n`;
  writeFileSync(file, next);
}
