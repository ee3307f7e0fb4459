// `npm run bench:space`: the payload store (src/mongo/payloads.repository.ts) on the MongoDB server of
// TEST_MONGODB_URL (scripts/bench.sh starts a FerretDB of its own when unset), built as the backbone builds
// it: every document sealed per namespace (space/payload-keys.service.ts, envelope encryption, its keys and
// salts in a fresh PostgreSQL database of the project's migrations on 127.0.0.1:5432, dropped at the end).
// In one run:
//   - writes: results per second through the backbone's batched path (saveResult: sealed, grouped by
//     common/group-commit.ts into one insertMany per bucket, the salts grouped into one INSERT), beside bare
//     insertMany of the same documents in clear in batches of the same size with as many in flight, into a
//     fresh collection of the same server;
//   - export: one namespace's results streamed as NDJSON lines (streamResults, cursor batches, each batch
//     opened with one key lookup), beside a bare cursor read of the same documents without opening or
//     serialising them;
//   - expiry: sweepExpired passes, each dropping one expired day of a fixed size, while the store holds S
//     and then 10 S unexpired documents (the median of BENCH_SPACE_PASSES passes at each size), beside the
//     layout it replaced (one collection, deleteMany on an indexed expireAt) at the same sizes (one pass).
// NOT a test: it asserts nothing about speed. Writes its section of BENCHMARKS.md.
//
// Knobs (environment): BENCH_SPACE_WRITES (results written, default 20000), BENCH_SPACE_STORE (S, default
// 10000; the second size is ten times it), BENCH_SPACE_EXPIRED (documents in the expired day, default
// 1000), BENCH_SPACE_PASSES (expiry passes per size, default 5), BENCH_OUTPUT ("-" writes no section).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import type { Db, Document } from 'mongodb';
import pg from 'pg';
import { connectMongo } from '../src/mongo/client.js';
import { migrate } from '../src/postgres/migrate.js';
import { createAccount, createNamespace } from '../src/postgres/accounts.repository.js';
import { payloadKeysStore } from '../src/postgres/payload-keys.store.js';
import { PayloadKeys } from '../src/space/payload-keys.service.js';
import { PayloadsRepository, type ResultToSave } from '../src/mongo/payloads.repository.js';
import { bucketName } from '../src/mongo/payload-buckets.js';
import { newJobId } from '../src/domain/job-ids.js';
import { describeHost } from './machine.js';
import { writeSection } from './report.js';
import { envNumber, runBench } from './run.js';

const WRITES = envNumber('BENCH_SPACE_WRITES', 20_000, { integer: true });
const STORE = envNumber('BENCH_SPACE_STORE', 10_000, { integer: true });
const EXPIRED = envNumber('BENCH_SPACE_EXPIRED', 1_000, { integer: true });
const PASSES = envNumber('BENCH_SPACE_PASSES', 5, { integer: true });
const PG_SERVER = 'postgres://postgres@127.0.0.1:5432';
const CLEAR_NS = '00000000-0000-4000-8000-00000000c1ea';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DAY = 86_400_000;
const BATCH = 256;
const IN_FLIGHT = 2;

function result(i: number, namespaceId: string, createdMs: number): ResultToSave {
  return {
    jobId: newJobId(createdMs),
    namespaceId,
    model: 'bench/model',
    attempt: 1,
    output: { content: `simulated answer ${i.toString(16).padStart(8, '0')}: node token credit ledger epoch model queue route`, finish_reason: 'stop' },
    usage: { prompt_tokens: 9, completion_tokens: 16 },
    nodeId: '0x0000000000000000000000000000000000000000',
    retentionHours: 72,
  };
}

function asDoc(r: ResultToSave, now: number): Document {
  const { retentionHours, ...rest } = r;
  return { _id: `${r.jobId}#${r.attempt}`, ...rest, expireAt: new Date(now + retentionHours * 3_600_000), at: new Date(now) };
}

/** insertMany in batches of BATCH, IN_FLIGHT at a time. */
async function insertBare(db: Db, name: string, docs: Document[]): Promise<void> {
  const col = db.collection(name);
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < docs.length) {
        const start = next;
        next += BATCH;
        await col.insertMany(docs.slice(start, start + BATCH), { ordered: false });
      }
    }),
  );
}

const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function adminQuery(sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: `${PG_SERVER}/postgres` });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

async function main(): Promise<number> {
  const base = process.env.TEST_MONGODB_URL ?? 'mongodb://127.0.0.1:27017/';
  const dbName = `rt_bench_space_${randomBytes(3).toString('hex')}`;
  const mongo = await connectMongo(new URL(dbName, base).toString());
  const db = mongo.db;
  // The keys' side of the backbone's cipher: a database of the project's migrations, one namespace in it.
  await migrate(`${PG_SERVER}/${dbName}`, pino({ level: 'warn' }));
  const pool = new pg.Pool({ connectionString: `${PG_SERVER}/${dbName}`, max: 10, application_name: 'resultity-bench' });
  pool.on('error', () => undefined);
  try {
    const build = await db.admin().command({ buildInfo: 1 });
    const ferret = 'ferretdbVersion' in build || 'ferretdb' in build;
    const ferretInfo = build.ferretdb as { version?: string } | undefined;
    const server = ferret ? `FerretDB ${String(build.ferretdbVersion ?? ferretInfo?.version ?? '')} (PostgreSQL backend; MongoDB ${String(build.version)} wire)` : `MongoDB ${String(build.version)}`;
    const keys = new PayloadKeys({ store: payloadKeysStore(pool), masterKeys: new Map([[1, randomBytes(32)]]), logger: pino({ level: 'silent' }) });
    const repo = new PayloadsRepository(db, keys);
    await repo.ensureIndexes(pino({ level: 'silent' }));
    const now = Date.now();
    const ns = (await createNamespace(pool, (await createAccount(pool, 'bench space')).id, 'bench')).id;

    // Writes: the batched path, then bare insertMany of equal documents.
    const toSave = Array.from({ length: WRITES }, (_, i) => result(i, ns, now));
    let t0 = process.hrtime.bigint();
    await Promise.all(toSave.map((r) => repo.saveResult(r)));
    const batchedS = seconds(t0);
    // The same path without a cipher (content in clear, no salts): what the sealing itself costs. Another
    // namespace's documents, in their own collection's day as the sealed ones (dropped before the expiry part).
    const clearRepo = new PayloadsRepository(db);
    await clearRepo.ensureIndexes(pino({ level: 'silent' }));
    const inClear = Array.from({ length: WRITES }, (_, i) => ({ ...result(i, ns, now), namespaceId: CLEAR_NS, retentionHours: 48 }));
    t0 = process.hrtime.bigint();
    await Promise.all(inClear.map((r) => clearRepo.saveResult(r)));
    const clearS = seconds(t0);
    const bare = Array.from({ length: WRITES }, (_, i) => asDoc(result(i, ns, now), now));
    await db.collection('bare_results').createIndex({ jobId: 1 });
    t0 = process.hrtime.bigint();
    await insertBare(db, 'bare_results', bare);
    const bareS = seconds(t0);

    // Export: NDJSON lines of the namespace's results, then a bare cursor over the same bucket.
    let bytes = 0;
    let exported = 0;
    t0 = process.hrtime.bigint();
    for await (const r of repo.streamResults(ns)) {
      bytes += Buffer.byteLength(JSON.stringify(r)) + 1;
      exported++;
    }
    const exportS = seconds(t0);
    let cursorRead = 0;
    t0 = process.hrtime.bigint();
    for await (const doc of db.collection(bucketName('job_results', 72, now)).find({ namespaceId: ns }, { batchSize: 500 })) if (doc) cursorRead++;
    const cursorS = seconds(t0);
    if (exported !== WRITES || cursorRead !== WRITES) throw new Error(`export read ${exported}, cursor ${cursorRead}, written ${WRITES}`);

    // Expiry: the store grows from S to 10 S unexpired documents (the writes' and the bare copies' are
    // dropped first, so that the sizes are S and 10 S exactly); each pass drops one expired day of EXPIRED.
    await db.collection(bucketName('job_results', 72, now)).drop();
    await db.collection(bucketName('job_results', 48, now)).drop();
    await db.collection('bare_results').drop();
    const expiry: Array<{ stored: number; sweepMs: number[]; flatMs: number }> = [];
    let stored = 0;
    let day = 10;
    /** A day long past, of EXPIRED documents of a one-hour class: all expired. */
    const expiredDay = () => {
      const oldDay = now - day++ * DAY;
      return { oldDay, docs: Array.from({ length: EXPIRED }, (_, i): Document => ({ ...asDoc(result(i, ns, oldDay), oldDay), expireAt: new Date(oldDay + 3_600_000) })) };
    };
    await db.collection('flat_results').createIndex({ expireAt: 1 });
    for (const size of [STORE, 10 * STORE]) {
      const add = Array.from({ length: size - stored }, (_, i) => asDoc(result(stored + i, ns, now), now));
      await insertBare(db, bucketName('job_results', 72, now - DAY), add);
      await insertBare(db, 'flat_results', add);
      stored = size;
      const sweepMs: number[] = [];
      for (let pass = 0; pass < PASSES; pass++) {
        const expired = expiredDay();
        await insertBare(db, bucketName('job_results', 1, expired.oldDay), expired.docs);
        t0 = process.hrtime.bigint();
        const swept = await repo.sweepExpired(new Date(now));
        sweepMs.push(seconds(t0) * 1e3);
        if (swept.buckets !== 1) throw new Error(`expected one bucket dropped, got ${JSON.stringify(swept)}`);
      }
      await insertBare(db, 'flat_results', expiredDay().docs);
      t0 = process.hrtime.bigint();
      const flat = await db.collection('flat_results').deleteMany({ expireAt: { $lte: new Date(now) } });
      const flatMs = seconds(t0) * 1e3;
      if (flat.deletedCount !== EXPIRED) throw new Error(`flat deleteMany removed ${flat.deletedCount}, expected ${EXPIRED}`);
      expiry.push({ stored: size, sweepMs, flatMs });
    }

    const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
    const mb = bytes / 1e6;
    const table = [
      `| measure | payload store | beside it, same server, same run | ratio |`,
      `| --- | ---: | ---: | ---: |`,
      `| writes: ${fmt(WRITES)} results through saveResult, sealed (grouped, ${BATCH} per insertMany, ${IN_FLIGHT} in flight) | ${fmt(WRITES / batchedS)} docs/s | bare insertMany, same batches: ${fmt(WRITES / bareS)} docs/s | ${(bareS / batchedS).toFixed(2)} |`,
      `| writes: the same through saveResult without a cipher (in clear, no salts) | ${fmt(WRITES / clearS)} docs/s | bare insertMany, same batches: ${fmt(WRITES / bareS)} docs/s | ${(bareS / clearS).toFixed(2)} |`,
      `| export: ${fmt(exported)} results as NDJSON (${mb.toFixed(1)} MB) through streamResults | ${fmt(exported / exportS)} rows/s (${(mb / exportS).toFixed(1)} MB/s) | bare cursor read: ${fmt(cursorRead / cursorS)} docs/s | ${(cursorS / exportS).toFixed(2)} |`,
      ...expiry.map(
        (e) =>
          `| expiry: one pass dropping one expired day (${fmt(EXPIRED)} docs) with ${fmt(e.stored)} unexpired stored | ${median(e.sweepMs).toFixed(1)} ms (median of ${e.sweepMs.length}; ${Math.min(...e.sweepMs).toFixed(1)}–${Math.max(...e.sweepMs).toFixed(1)}) | old layout, deleteMany on indexed expireAt: ${e.flatMs.toFixed(1)} ms | ${(e.flatMs / median(e.sweepMs)).toFixed(2)} |`,
      ),
    ].join('\n');
    const host = describeHost();
    const markdown = [
      '## Space: the payload store (`npm run bench:space`)',
      '',
      `bench/space.ts on ${server}, the store built as the backbone builds it: every document sealed per namespace`,
      '(envelope encryption, space/payload-keys.service.ts; its salts in PostgreSQL). Writes: results saved through the',
      "backbone's path (PayloadsRepository.saveResult: sealed, grouped into one insertMany per bucket, the salts into one",
      'INSERT per batch), beside bare insertMany of equal documents in clear in batches of the same size with as many in',
      "flight. Export: one namespace's results streamed from its buckets as NDJSON lines (each cursor batch opened with",
      'one key lookup), beside a bare cursor over the same bucket. Expiry: sweepExpired passes (listCollections, then one',
      'drop per expired bucket) while the store grows tenfold, beside the layout it replaced (one collection, deleteMany',
      'on an indexed `expireAt`) holding the same documents: the pass must stay flat as the store grows.',
      '',
      table,
      '',
      `Machine: ${host.cpu}, ${host.cores} cores (shared), Node.js ${host.node}; run ${new Date().toISOString().slice(0, 16)}Z.`,
    ].join('\n');
    process.stdout.write(`${table}\n`);
    if (process.env.BENCH_OUTPUT !== '-') writeSection(path.join(ROOT, process.env.BENCH_OUTPUT ?? 'BENCHMARKS.md'), 'space', markdown);
    return 0;
  } finally {
    await db.dropDatabase().catch(() => undefined);
    await mongo.client.close();
    await pool.end();
    await adminQuery(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`).catch(() => undefined);
  }
}

void runBench('bench:space', main);
