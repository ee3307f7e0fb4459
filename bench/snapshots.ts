// `npm run bench:snapshots`: snapshot export throughput (MB/s of CAR written, from the database to the
// local store) beside `sha256sum` over the same CAR bytes and PostgreSQL's COPY TO of the same parts, and restore throughput (rows/s into an empty
// database, every snapshot verified first) beside PostgreSQL COPY (psql \copy) of the same rows into
// another empty database, in one run. Writes its section of BENCHMARKS.md.
//
// NOT a test: it asserts nothing about speed. It fails (exit 1) when the snapshot does not verify or the
// restored ledger chain does not.
//
// Knobs (environment): BENCH_SNAPSHOT_JOBS (jobs on the snapshotted day, default 100000; each job also
// has a ledger transaction of two entries and a contribution record), BENCH_SNAPSHOT_RUNS (export, sha256sum
// and COPY TO timed this many times, medians reported; default 3), BENCH_OUTPUT ("-" writes no section).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { createPool, type Db } from '../src/postgres/db.js';
import { migrate } from '../src/postgres/migrate.js';
import { rollUpJobDay } from '../src/postgres/job-history.repository.js';
import { withTransaction } from '../src/postgres/db.js';
import { withRestoreTransaction } from '../src/postgres/snapshot-copy.js';
import { LedgerChainService } from '../src/maintenance/ledger-chain.service.js';
import { ledgerChainStore } from '../src/postgres/ledger-chain.store.js';
import { addDays } from '../src/domain/job-history.js';
import { isoDay } from '../src/domain/day-range.js';
import { generatePrivateKey } from '../src/domain/signatures.js';
import { SnapshotService } from '../src/snapshots/snapshot.service.js';
import { LocalDirectoryStore } from '../src/snapshots/stores/local.store.js';
import { readCarFile } from '../src/snapshots/car-file.js';
import { verifySnapshot, rootManifest, partChunks } from '../src/snapshots/snapshot.verify.js';
import { restoreChain, restorePart } from '../src/snapshots/snapshot-restore.js';
import { copySource, PART_SETTINGS, partSpec } from '../src/snapshots/snapshot-parts.js';
import { describeHost } from './machine.js';
import { writeSection } from './report.js';
import { envNumber, runBench } from './run.js';

const JOBS = envNumber('BENCH_SNAPSHOT_JOBS', 100_000, { integer: true });
const exec = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BASE_URL = process.env.BENCH_DATABASE_BASE ?? 'postgres://postgres@127.0.0.1:5432';

const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/** Export, sha256sum and COPY TO are each timed this many times; the median is reported. */
const RUNS = envNumber('BENCH_SNAPSHOT_RUNS', 3, { integer: true });

/** One past day of history: jobs, their ledger transactions (hold-like: two entries each), contribution records; rolled up and chained. */
async function fill(db: Db, day: string): Promise<void> {
  await db.query(`SELECT create_job_partitions($1::date)`, [day]);
  await db.query(`
    WITH a AS (INSERT INTO accounts (name) VALUES ('bench') RETURNING id),
         n AS (INSERT INTO namespaces (account_id, name) SELECT id, 'bench' FROM a RETURNING id),
         k AS (INSERT INTO api_keys (namespace_id, key_hash, key_prefix) SELECT id, decode(md5('k') || md5('k'), 'hex'), 'rk_bench' FROM n RETURNING id),
         m AS (INSERT INTO models (name, input_price_micro, output_price_micro) VALUES ('bench/model', 10, 20) RETURNING name),
         o AS (INSERT INTO nodes (id, operator_account_id) SELECT '0x' || lpad(to_hex(g), 40, '0'), (SELECT id FROM a) FROM generate_series(1, 16) g RETURNING id)
    SELECT 1`);
  const start = `${day}T00:00:00Z`;
  await db.query(
    `INSERT INTO jobs (id, namespace_id, api_key_id, model, status, attempt, max_attempts, node_id, max_tokens, prompt_tokens_bound, hold_micro,
                       charged_micro, input_price_micro, output_price_micro, prompt_tokens, completion_tokens, created_at, deadline_at, published_at, started_at, finished_at)
     SELECT gen_random_uuid(), n.id, k.id, 'bench/model', 'completed', 1, 3, '0x' || lpad(to_hex(1 + g % 16), 40, '0'), 64, 64, 2000,
            1000 + g % 500, 10, 20, 30, 40, t, t + interval '30 seconds', t, t, t + interval '1 second'
       FROM generate_series(1, $1::int) g, namespaces n, api_keys k,
            LATERAL (SELECT $2::timestamptz + (g * (86000.0 / $1)) * interval '1 second' AS t) ts`,
    [JOBS, start],
  );
  await db.query(`INSERT INTO ledger_accounts (kind, owner_id) SELECT 'ns_available', id FROM namespaces`);
  await withTransaction(db, async (tx) => {
    await tx.query(
      `WITH t AS (INSERT INTO ledger_transactions (kind, memo, created_at)
                  SELECT 'topup', 'bench', $2::timestamptz + (g * (86000.0 / $1)) * interval '1 second' FROM generate_series(1, $1::int) g RETURNING id)
       INSERT INTO ledger_entries (txn_id, account_id, amount)
       SELECT t.id, a.id, CASE WHEN a.kind = 'funding' THEN -1000 ELSE 1000 END FROM t, ledger_accounts a WHERE a.kind IN ('funding', 'ns_available')`,
      [JOBS, start],
    );
  });
  await db.query(`UPDATE ledger_accounts a SET balance = (SELECT coalesce(sum(amount), 0) FROM ledger_entries e WHERE e.account_id = a.id) WHERE kind IN ('funding', 'ns_available')`);
  const epoch = Math.floor(Date.parse(start) / 86_400_000);
  await db.query(`INSERT INTO rcp_records (node_id, epoch, kind, points) SELECT id, $1, 'uptime', 1000 + length(id) FROM nodes`, [epoch]);
  await withTransaction(db, (tx) => rollUpJobDay(tx, day), { isolation: 'snapshot' });
  await new LedgerChainService(ledgerChainStore(db)).rollUpClosedDays(new Date());
  // The planner's statistics, as autovacuum would have them a minute after such a day's writes: without
  // them it takes a day's 100,000 rows for a few hundred and picks other plans.
  await db.query('ANALYZE');
}

/** Clock ticks per second of /proc/<pid>/stat's CPU times. */
const CLK_TCK = Number((await exec('getconf', ['CLK_TCK'])).stdout.trim());
const backendCpu = new Map<number, number>();

/** `/proc/<pid>/stat`'s user + system CPU, in seconds. */
function statCpu(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/**
 * CPU seconds used so far by this process and by the database's backends (/proc/<pid>/stat, user + system;
 * a backend's first reading counts from its start): the export's cost whatever else the shared cores run.
 */
async function cpuSeconds(db: Db): Promise<{ node: number; backends: number }> {
  const { rows } = await db.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = current_database()`);
  for (const { pid } of rows) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
    if (stat !== null) backendCpu.set(pid, statCpu(stat));
  }
  const own = process.cpuUsage();
  return { node: (own.user + own.system) / 1e6, backends: [...backendCpu.values()].reduce((a, b) => a + b, 0) };
}

/** `0m0.230s 0m0.016s` (bash's `times`) as seconds. */
function bashTimes(line: string): number {
  return line.split(' ').reduce((sum, t) => {
    const m = /^(\d+)m([\d.]+)s$/.exec(t);
    return sum + (m ? Number(m[1]) * 60 + Number(m[2]) : 0);
  }, 0);
}

async function freshDb(name: string, options: { parallelQuery?: false } = {}): Promise<{ url: string; db: Db }> {
  const url = `${BASE_URL}/${name}`;
  await migrate(url, pino({ level: 'warn' }));
  // No parallel query in the snapshotted database (set before the pool's first session): a parallel
  // worker's CPU is gone from /proc before it can be read, and the CPU rows count every process (on two
  // cores the export's own two connections already use both).
  if (options.parallelQuery === false) await exec('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-qc', `ALTER DATABASE "${name}" SET max_parallel_workers_per_gather = 0`]);
  return { url, db: createPool(url, 4) };
}

async function dropDb(name: string): Promise<void> {
  await exec('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-qc', `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`]);
}

async function main(): Promise<number> {
  const loadAtStart = os.loadavg().map((l) => l.toFixed(1)).join(', ');
  const tag = `rt_bench_snap_${randomBytes(3).toString('hex')}`;
  const names = { source: `${tag}_src`, restored: `${tag}_restore`, copied: `${tag}_copy` };
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-snapshots-'));
  const dbs: Db[] = [];
  try {
    const source = await freshDb(names.source, { parallelQuery: false });
    dbs.push(source.db);
    const day = addDays(isoDay(new Date()), -2);
    process.stderr.write(`bench:snapshots: filling ${day} with ${JOBS} jobs, ${JOBS} ledger transactions (${2 * JOBS} entries)...\n`);
    await fill(source.db, day);
    const networkKey = generatePrivateKey();
    const logger = pino({ level: 'warn' });
    const snapshots = new SnapshotService({ db: source.db, store: new LocalDirectoryStore(dir), networkKey, rcpClock: { epochSeconds: 86_400, uptimeSlotSeconds: 60 }, jobDeadlineMs: 300_000, logger });

    // Export: the day read from PostgreSQL, encoded, hashed, written as a CAR and stored. RUNS times (the
    // snapshot's rows deleted in between, so the day is due again), on a shared machine: the first (cold:
    // the day's rows read for the first time since they were written) and the median are reported.
    const exportRuns: number[] = [];
    const exportCpu: { node: number; backends: number }[] = [];
    const timedExport = async () => {
      const before = await cpuSeconds(source.db);
      const t = process.hrtime.bigint();
      const r = await snapshots.createDay(day);
      exportRuns.push(seconds(t));
      const after = await cpuSeconds(source.db);
      exportCpu.push({ node: after.node - before.node, backends: after.backends - before.backends });
      return r;
    };
    let row = await timedExport();
    while (exportRuns.length < RUNS) {
      await source.db.query(`DELETE FROM snapshot_epochs WHERE snapshot_cid = $1`, [row.cid]);
      await source.db.query(`DELETE FROM snapshots WHERE cid = $1`, [row.cid]);
      row = await timedExport();
    }
    const exportS = median(exportRuns);
    const carPath = path.join(dir, `${row.cid}.car`);
    const bytes = (await stat(carPath)).size;
    const shaRuns: number[] = [];
    const shaCpu: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t = process.hrtime.bigint();
      // bash's `times`: its children's user and system CPU, the second line.
      const { stdout } = await exec('bash', ['-c', 'sha256sum "$0" > /dev/null; times', carPath]);
      shaRuns.push(seconds(t));
      shaCpu.push(bashTimes(stdout.trim().split('\n')[1]!));
    }
    const shaS = median(shaRuns);
    let t0: bigint;
    const car = await readCarFile(carPath);
    const report = verifySnapshot(car);
    if (!report.ok) throw new Error(`the benchmark's snapshot does not verify: ${report.problems.join('; ')}`);

    // PostgreSQL's own COPY TO of the same parts (the same statements and settings as the export, one
    // connection, psql writing to /dev/null): the floor under export, which can do no less.
    const snapshotManifest = rootManifest(car).manifest;
    const partBytes = snapshotManifest.parts.reduce((n, p) => n + p.bytes, 0);
    const copyOut = [
      'BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;',
      `SELECT set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO, YMD', true), set_config('bytea_output', 'hex', true),
              set_config('extra_float_digits', '1', true), set_config('IntervalStyle', 'postgres', true), set_config('work_mem', '64MB', true),
              set_config('${PART_SETTINGS.day}', '${day}', true), set_config('${PART_SETTINGS.epochs}', '{${snapshotManifest.epochs.map((e) => e.epoch).join(',')}}', true);`,
      ...snapshotManifest.parts.map((part) => {
        // The export's statement and planner setting for the part (the raw job rows in key order, no sort).
        const { source, settings } = copySource(partSpec(part.name)!, { day, epochs: snapshotManifest.epochs.map((e) => e.epoch) });
        return `SELECT set_config('enable_sort', '${settings['enable_sort']}', true);
COPY (SELECT ${part.columns.map((c) => `"${c}"`).join(', ')} FROM ${source.table} WHERE ${source.where} ORDER BY ${source.orderBy}) TO STDOUT;`;
      }),
      'COMMIT;',
    ];
    await writeFile(path.join(dir, 'copy-out.sql'), copyOut.join('\n'));
    const copyOutRuns: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t = process.hrtime.bigint();
      await exec('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', names.source, '-v', 'ON_ERROR_STOP=1', '-q', '-o', '/dev/null', '-f', path.join(dir, 'copy-out.sql')]);
      copyOutRuns.push(seconds(t));
    }
    const copyOutS = median(copyOutRuns);

    // Restore: the chain verified and written into an empty database.
    const restored = await freshDb(names.restored);
    dbs.push(restored.db);
    t0 = process.hrtime.bigint();
    const restoredReport = await restoreChain(row.cid, { db: restored.db, fetch: (cid) => readCarFile(path.join(dir, `${cid}.car`)), networkAddress: null });
    const restoreS = seconds(t0);
    const ledger = await new LedgerChainService(ledgerChainStore(restored.db)).verify();
    if (!ledger.ok) throw new Error(`the restored ledger chain does not verify: ${ledger.broken?.reason}`);

    // COPY: the same day's rows (the parts restore appends: all but a few dozen state rows), from text
    // files, by psql \copy in one transaction, into another empty database that has the state already.
    const copied = await freshDb(names.copied);
    dbs.push(copied.db);
    const manifest = snapshotManifest;
    await withRestoreTransaction(copied.db, async (tx) => {
      for (const part of manifest.parts) if (partSpec(part.name)?.restore === 'merge') await restorePart(tx, car, part);
    });
    const script: string[] = ['BEGIN;'];
    let copyRows = 0;
    for (const part of manifest.parts) {
      if (partSpec(part.name)?.restore !== 'append' || part.rows === 0) continue;
      const file = path.join(dir, `${part.name}.copy`);
      await writeFile(file, Buffer.concat(partChunks(car, part)));
      copyRows += part.rows;
      script.push(`\\copy ${part.table} (${part.columns.map((c) => `"${c}"`).join(', ')}) FROM '${file}'`);
    }
    script.push('COMMIT;');
    await writeFile(path.join(dir, 'copy.sql'), script.join('\n'));
    t0 = process.hrtime.bigint();
    await exec('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', names.copied, '-v', 'ON_ERROR_STOP=1', '-q', '-f', path.join(dir, 'copy.sql')]);
    const copyS = seconds(t0);

    const mb = bytes / 1e6;
    const figures = {
      jobs: JOBS,
      carMB: mb,
      exportMBs: mb / exportS,
      exportFirstMBs: mb / exportRuns[0]!,
      exportRunsMBs: exportRuns.map((x) => mb / x),
      sha256sumMBs: mb / shaS,
      exportCpuS: median(exportCpu.map((c) => c.node + c.backends)),
      exportNodeCpuS: median(exportCpu.map((c) => c.node)),
      exportBackendCpuS: median(exportCpu.map((c) => c.backends)),
      sha256sumCpuS: median(shaCpu),
      partsMB: partBytes / 1e6,
      copyOutMBs: partBytes / 1e6 / copyOutS,
      // The export's PostgreSQL work alone, were it spread perfectly over the machine's cores and the client
      // cost nothing: the most any export of these statements can reach here.
      floorMBs: mb / (median(exportCpu.map((c) => c.backends)) / os.availableParallelism()),
      restoreRows: restoredReport.rows,
      restoreRowsS: restoredReport.rows / restoreS,
      copyRows,
      copyRowsS: copyRows / copyS,
    };
    const host = describeHost();
    const table = [
      `| measure | snapshots | beside it, same bytes / rows, same run | ratio |`,
      `| --- | ---: | ---: | ---: |`,
      `| export: PostgreSQL → CAR in the local store (${mb.toFixed(1)} MB, ${row.part_rows['jobs']} raw job rows, ${2 * JOBS} ledger entries) | ${figures.exportMBs.toFixed(1)} MB/s (median of ${RUNS}; first, cold: ${figures.exportFirstMBs.toFixed(1)}) | \`sha256sum\` of the CAR: ${figures.sha256sumMBs.toFixed(1)} MB/s | ${(figures.exportMBs / figures.sha256sumMBs).toFixed(2)} |`,
      `| CPU per export, every process (Node.js and the PostgreSQL backends; /proc), whatever else the cores run | ${figures.exportCpuS.toFixed(2)} s (median of ${RUNS}) | \`sha256sum\`'s CPU over the CAR: ${figures.sha256sumCpuS.toFixed(2)} s | ${(figures.sha256sumCpuS / figures.exportCpuS).toFixed(2)} |`,
      `| of which Node.js / the PostgreSQL backends | ${figures.exportNodeCpuS.toFixed(2)} s / ${figures.exportBackendCpuS.toFixed(2)} s | | |`,
      `| beside it: PostgreSQL \`COPY (SELECT ...) TO STDOUT\` of the same parts (${figures.partsMB.toFixed(1)} MB of COPY text; psql, one connection, to /dev/null) | | ${figures.copyOutMBs.toFixed(1)} MB/s | |`,
      `| the floor: the export's PostgreSQL CPU alone (${figures.exportBackendCpuS.toFixed(2)} s), spread perfectly over the ${os.availableParallelism()} cores, with a client that costs nothing | ${figures.floorMBs.toFixed(1)} MB/s at best | \`sha256sum\` at its CPU time (its speed on a core of its own): ${(mb / figures.sha256sumCpuS).toFixed(1)} MB/s | ${(figures.floorMBs / (mb / figures.sha256sumCpuS)).toFixed(2)} |`,
      `| restore: verify + write into an empty database (${figures.restoreRows} rows) | ${Math.round(figures.restoreRowsS).toLocaleString('en-US')} rows/s | psql \`\\copy\` of the same parts' rows (${copyRows}): ${Math.round(figures.copyRowsS).toLocaleString('en-US')} rows/s | ${(figures.restoreRowsS / figures.copyRowsS).toFixed(2)} |`,
    ].join('\n');
    const markdown = [
      '## Snapshots (`npm run bench:snapshots`)',
      '',
      `One closed day of ${JOBS.toLocaleString('en-US')} jobs, each with a ledger transaction of two entries, rolled up and chained, then`,
      'snapshotted (bench/snapshots.ts). Export is the whole `snapshot create` of the day (snapshot format 3): each part',
      'copied out by PostgreSQL `COPY (SELECT ...) TO STDOUT` in one REPEATABLE READ snapshot, on two connections sharing',
      'it (pg_export_snapshot), the raw job rows in primary-key order by an index scan (no sort; format 2 sorted them by',
      'time, about half of PostgreSQL\'s work on this day), read off the COPY protocol by the backbone\'s own reader (each row is a',
      'CopyData message: rows packed within each socket chunk and copied once into raw blocks of at most 1 MiB cut at rows\' ends;',
      'postgres/copy-out.ts; pg-copy-streams\' reader and the re-cutting of its output cost about a third more of Node.js\'s CPU), hashed with node:crypto (each part\'s',
      'sha256 over its bytes and each block\'s CID), written as a CAR and linked into the local store; `sha256sum` reads',
      'the same file once. The COPY TO row is the floor under export: the same statements in psql on one connection,',
      'to /dev/null. Restore is `snapshot restore`: the CAR read, every block, the signature, the parts and the ledger',
      'chain hash verified (the ledger parts\' COPY text parsed), then each part\'s blocks handed as they are to',
      '`COPY ... FROM STDIN` in an empty migrated database in one transaction (the deferred balance check of each ledger',
      'entry included); the COPY beside it loads the same parts\' bytes from files with psql in one transaction, with no',
      'verification. Export, `sha256sum` and the COPY TO are each timed ' + String(RUNS) + ' times (the snapshot deleted in between) and',
      'their medians compared (the two cores are shared, and one run can be far off); the first export of the run, the',
      'slowest so far in every run, is shown beside the median. Restore is timed once.',
      '',
      table,
      '',
      `The issue's target for export is at least half of \`sha256sum\`: ${figures.exportMBs / figures.sha256sumMBs >= 0.5 ? 'met' : 'not met'} in this run (${(figures.exportMBs / figures.sha256sumMBs).toFixed(2)}; the first export alone: ${(figures.exportFirstMBs / figures.sha256sumMBs).toFixed(2)}). ` +
        `Where the time goes: PostgreSQL reading the rows and printing each value as text (the COPY TO rows: the same statements, so the same plans), and beside it on the same cores the two sha256 passes (node:crypto with SHA-NI, about 1.4 GB/s, where \`sha256sum\` runs at the speed in the table), the copy protocol and the file write (the Node.js CPU row). ` +
        `The floor row bounds what any client of these statements can reach on this machine: PostgreSQL's own CPU for the export's COPYs, with a client that costs nothing and both cores shared perfectly, gives ${(figures.floorMBs / (mb / figures.sha256sumCpuS)).toFixed(2)} of \`sha256sum\` (both from CPU seconds, so whatever the load). ` +
        `Load average at the start of the run: ${loadAtStart}. On two cores shared with other work, a pipeline of three processes (Node.js and two PostgreSQL backends) gets a smaller share of them than \`sha256sum\` alone, so the CPU rows are the figures that do not depend on the load.`,
      '',
      `Machine: ${host.cpu}, ${host.cores} cores (shared), Node.js ${host.node}; run ${new Date().toISOString().slice(0, 16)}Z.`,
    ].join('\n');
    process.stdout.write(`${table}\n`);
    process.stdout.write(`${JSON.stringify(figures)}\n`);
    if (process.env.BENCH_OUTPUT !== '-') writeSection(path.join(ROOT, process.env.BENCH_OUTPUT ?? 'BENCHMARKS.md'), 'snapshots', markdown);
    return 0;
  } finally {
    for (const db of dbs) await db.end();
    for (const name of Object.values(names)) await dropDb(name);
    await rm(dir, { recursive: true, force: true });
  }
}

void runBench('bench:snapshots', main);
