// The benchmark's pure arithmetic (bench/engine-stats.ts, bench/report.ts): round trips per job from
// counter snapshots, the budget verdicts, Redis commandstats, latency and CPU figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backboneCounts, budgetLines, parseCommandstats, perJob, stageMeans, stageTotals, type BackboneCounts, type EngineCounts } from '../../bench/engine-stats.js';
import { cpuPerJob, figures, headline, type E2eReport, type E2eRun } from '../../bench/report.js';
import { summarise, type CpuProfile } from '../../bench/cpu-profile.js';
import { parseExposition } from '../../src/metrics/exposition.js';
import type { LoadResult, Usage } from '../../bench/load.js';

test('backboneCounts reads the /metrics counters the budget needs', () => {
  const c = backboneCounts(
    parseExposition(
      [
        'resultity_pg_statements_total{kind="begin"} 2',
        'resultity_pg_statements_total{kind="insert"} 3',
        'resultity_pg_statements_total{kind="commit"} 2',
        'resultity_pg_transactions_total{kind="explicit"} 2',
        'resultity_pg_transactions_total{kind="implicit"} 1',
        'resultity_redis_commands_total{client="main",command="evalsha"} 4',
        'resultity_redis_commands_total{client="sub",command="subscribe"} 1',
        'resultity_mongo_commands_total{command="find"} 1',
        'resultity_mongo_commands_total{command="insert"} 2',
        'resultity_mongo_commands_total{command="ping"} 5',
        'resultity_rabbitmq_publishes_total{confirm="true",outcome="ok"} 1',
        'resultity_rabbitmq_publishes_total{confirm="true",outcome="error"} 1',
        'resultity_rabbitmq_deliveries_total{outcome="ack"} 1',
      ].join('\n'),
    ),
  );
  assert.equal(c.pgStatements, 7);
  assert.equal(c.pgControl, 4);
  assert.equal(c.pgTransactions, 3);
  assert.equal(c.redisCommands, 5);
  assert.deepEqual([c.mongoReads, c.mongoWrites, c.mongoOther], [1, 2, 5]);
  assert.equal(c.publishes, 1);
  assert.equal(c.deliveries, 1);
});

test('parseCommandstats sums nothing it should not', () => {
  const m = parseCommandstats('# Commandstats\r\ncmdstat_get:calls=12,usec=30,usec_per_call=2.5\r\ncmdstat_evalsha:calls=3,usec=9\r\nnoise\r\n');
  assert.deepEqual([...m.entries()], [['get', 12], ['evalsha', 3]]);
});

const zeroEngines: EngineCounts = { backboneXacts: 0, ferretXacts: 0, walSyncs: 0, ferretWalSyncs: 0, walRecords: 0, redisCalls: 0 };

test('perJob divides deltas by jobs; budgetLines passes at the budget and fails above it', () => {
  const a = backboneCounts([]);
  const b: BackboneCounts = { ...a, pgStatements: 60, pgTransactions: 20, redisCommands: 51, mongoReads: 0, publishes: 10 };
  const pb = perJob(a, b, 10);
  assert.equal(pb.pgStatements, 6);
  assert.equal(pb.redisCommands, 5.1);
  assert.ok(Number.isNaN(perJob(a, b, 0).pgStatements));
  const lines = budgetLines(pb, perJob(zeroEngines, { ...zeroEngines, backboneXacts: 20, walSyncs: 30 }, 10));
  const verdict = Object.fromEntries(lines.map((l) => [l.what, l.pass]));
  assert.equal(verdict['PostgreSQL statements'], true);
  assert.equal(verdict['PostgreSQL transactions'], true);
  assert.equal(verdict['WAL flushes'], false);
  assert.equal(verdict['Redis commands'], false); // 5.1 > 5 + tolerance
  assert.equal(verdict['MongoDB reads'], true);
  assert.equal(verdict['confirmed publishes'], true);
});

function run(latencies: number[], opts: Partial<E2eRun> = {}, byCommand: Usage['byCommand'] = []): E2eRun {
  const result: LoadResult = {
    concurrency: 1,
    windowMs: 2_000,
    completed: latencies.length,
    errors: 0,
    errorSamples: [],
    latencies: Float64Array.from(latencies).sort(),
    warmupOps: 0,
    usage: { elu: 0, processCores: 0, machineCores: 0, cores: 2, byCommand: [], foreignCores: 0, unattributedCores: 0 },
    windowStart: 0,
    windowEnd: 2_000,
  };
  return {
    kind: 'backbone',
    concurrency: 1,
    result,
    ttft: null,
    usage: { ...result.usage, byCommand, foreignCores: 0.25 },
    backbone: null,
    engines: null,
    stages: null,
    runtimeMeanMs: NaN,
    ...opts,
  };
}

test('figures: rate, quantiles, and latency added over the node runtime', () => {
  const lat = Array.from({ length: 100 }, (_, i) => i + 1);
  const x = figures(run(lat, { runtimeMeanMs: 0.5 }));
  assert.equal(x.jobsPerSecond, 50);
  assert.equal(x.p50, 50);
  assert.equal(x.p99, 99);
  assert.equal(x.addedP50, 49.5);
  const y = figures(run(lat));
  assert.equal(y.addedP50, 50, 'without a runtime measure the latency itself is the added latency');
  assert.ok(Number.isNaN(y.ttftP50));
  assert.equal(figures(run(lat, { ttft: Float64Array.from([3, 1, 2]).sort() })).ttftP50, 2);
});

test('cpuPerJob: cores over the window turned into ms per job, grouped, backbone side summed', () => {
  // 100 jobs in 2 s; 0.5 core for the backbone = 1000 ms of CPU = 10 ms per job.
  const r = run(
    Array.from({ length: 100 }, () => 1),
    {},
    [
      { command: 'backbone process', cores: 0.5 },
      { command: 'ferretdb', cores: 0.1 },
      { command: 'postgres: FerretDB db', cores: 0.1 },
      { command: 'nodes process', cores: 0.2 },
    ],
  );
  const c = cpuPerJob(r);
  assert.equal(c.byGroup.get('backbone'), 10);
  assert.ok(Math.abs(c.byGroup.get('FerretDB + its pg')! - 4) < 1e-9);
  assert.ok(Math.abs(c.byGroup.get('nodes')! - 4) < 1e-9);
  assert.ok(Math.abs(c.backboneSide - 14) < 1e-9, 'the nodes are not on the backbone side');
  assert.equal(c.foreignCores, 0.25);
});

test('stage means: the mean time of one observation between two readings, and observations per job', () => {
  const sample = (stage: string, seconds: number, count: number) => [
    { name: 'resultity_job_stage_seconds_sum', labels: { stage }, value: seconds },
    { name: 'resultity_job_stage_seconds_count', labels: { stage }, value: count },
  ];
  const a = stageTotals([...sample('settle', 1, 100), ...sample('place', 0, 0)]);
  const b = stageTotals([...sample('settle', 1.3, 200), ...sample('place', 0.5, 200)]);
  const means = new Map(stageMeans(a, b, 100).map((m) => [m.stage, m]));
  assert.equal(means.get('settle')!.meanMs.toFixed(3), '3.000');
  assert.equal(means.get('settle')!.perJob, 1);
  assert.equal(means.get('place')!.meanMs.toFixed(3), '2.500');
  assert.equal(means.get('place')!.perJob, 2);
  assert.ok(Number.isNaN(means.get('verify')!.meanMs), 'a stage never observed has no mean');
});

test('headline: a missed target names what holds it, a met one is marked met', () => {
  const stage = (name: string, meanMs: number) => ({ stage: name, meanMs, perJob: 1 });
  // 100 jobs of 12 ms each in 2 s at C=1 (added latency 12 ms: over the 8 ms target).
  const slow = run(Array.from({ length: 100 }, () => 12), { stages: [stage('queued', 3), stage('settle', 5), stage('node', 1), stage('store_result', 9)] }, [
    { command: 'backbone process', cores: 0.2 },
    { command: 'postgres: backbone db', cores: 0.1 },
  ]);
  const report = (runs: E2eRun[]): E2eReport => ({
    startedAt: new Date(0),
    finishedAt: new Date(0),
    machine: { cores: 2 } as E2eReport['machine'],
    params: { concurrencies: [1], durationS: 2, warmupS: 0, nodes: 1, nodeCapacity: 1, maxTokens: 1, stored: 0, collection: 'x' },
    runs,
    problems: [],
    interrupted: false,
  });
  const latency = headline(report([slow])).find((h) => h.figure.startsWith('added latency'))!;
  assert.equal(latency.met, false);
  // store_result runs beside settle, off the path a job waits on: it is not named.
  assert.match(latency.holds, /^the path's stages, longest first: settle 5\.00 ms, queued 3\.00 ms, node 1\.00 ms/);
  const cpu = headline(report([slow])).find((h) => h.figure.startsWith('CPU per job'))!;
  assert.equal(cpu.value, '6.00 ms');
  assert.equal(cpu.met, false);
  assert.equal(cpu.holds, 'largest groups: backbone 4.00 ms, pg (backbone db) 2.00 ms');
  const fast = run(Array.from({ length: 100 }, () => 2), {}, [{ command: 'backbone process', cores: 0.05 }]);
  for (const h of headline(report([fast]))) assert.equal(h.met, true, h.figure);
});

test('cpu profile summary: idle and start-up left out, socket writes charged to the client that wrote', () => {
  const frame = (id: number, functionName: string, url: string, children: number[] = []) => ({ id, callFrame: { functionName, url }, children });
  const profile: CpuProfile = {
    nodes: [
      frame(1, '(root)', '', [2, 3, 4, 7]),
      frame(2, '(idle)', ''),
      frame(3, 'query', 'file:///x/node_modules/pg/lib/client.js', [5]),
      frame(4, 'compileSourceTextModule', 'node:internal/modules/esm/utils'),
      frame(5, 'submit', 'file:///x/node_modules/pg/lib/query.js', [6]),
      frame(6, 'writev', ''),
      frame(7, 'accept', 'file:///x/dist/src/cloud/inference.service.js'),
    ],
    samples: [2, 2, 6, 6, 6, 3, 4, 7],
    timeDeltas: [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
  };
  const s = summarise(profile);
  assert.equal(s.totalMs, 8);
  assert.equal(s.startupMs, 1);
  assert.equal(s.busyMs, 5);
  const groups = new Map(s.groups.map((g) => [g.group, g.ms]));
  assert.equal(groups.get('socket writes: PostgreSQL (pg)'), 3);
  assert.equal(groups.get('npm: pg'), 1);
  assert.equal(groups.get('backbone code: src/cloud/'), 1);
  assert.equal(s.groups[0]!.share, 0.6);
});
