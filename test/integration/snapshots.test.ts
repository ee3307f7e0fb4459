// Snapshots (src/snapshots/): a closed day becomes a signed CAR in the store; verify names every kind of
// tampering without a database; a raw partition is never dropped without a verified snapshot, store
// down included; restore into an empty database reproduces the ledger chain head, the usage reports and
// the snapshot chain, and the restored network boots with its config; operators get Merkle proofs of
// their epochs; the Kubo store round-trips a snapshot by CID.
//
// Past days are written with SQL, dated in those days (as history.test.ts does; see its head).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { CID } from 'multiformats/cid';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { pino } from 'pino';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';
import { requestJson } from '../helpers/http.js';
import { createBackbone } from '../../src/app.js';
import { newJobId } from '../../src/domain/job-ids.js';
import { addDays, dayStart } from '../../src/domain/job-history.js';
import { isoDay } from '../../src/domain/day-range.js';
import { epochOf, rcpClockFrom } from '../../src/domain/rcp.js';
import { addressOf, generatePrivateKey } from '../../src/domain/signatures.js';
import { createPool, withTransaction, type Db } from '../../src/postgres/db.js';
import { HistoryMaintenance } from '../../src/maintenance/history.service.js';
import { LedgerChainService } from '../../src/maintenance/ledger-chain.service.js';
import { ledgerChainStore } from '../../src/postgres/ledger-chain.store.js';
import { historyStore } from '../../src/postgres/history.store.js';
import { UsageService } from '../../src/space/usage.service.js';
import { usageStore } from '../../src/postgres/usage.store.js';
import { SnapshotService } from '../../src/snapshots/snapshot.service.js';
import { LocalDirectoryStore } from '../../src/snapshots/stores/local.store.js';
import { KuboStore } from '../../src/snapshots/stores/kubo.store.js';
import { CarFileWriter, readCar, readCarFile, type CarContents } from '../../src/snapshots/car-file.js';
import { encodeBlock, rawBlock, signManifest, type Manifest } from '../../src/snapshots/snapshot.format.js';
import { copyLines, parseCopyText } from '../../src/snapshots/copy-text.js';
import { partRows, rootManifest, verifySnapshot } from '../../src/snapshots/snapshot.verify.js';
import { verifyProof } from '../../src/snapshots/epoch-merkle.js';

const LIVE_WINDOW_DAYS = 3;
const run = promisify(execFile);

let stack: TestStack;
let tenant: Tenant;
let today: string;
let storeDir: string;
let networkKey: string;
const ago = (n: number) => addDays(today, -n);
const check = (fn: () => Promise<void>) => stack.check(fn);
const restoredDbs: string[] = [];

before(async () => {
  stack = await TestStack.start({ roles: ['cloud', 'io', 'scheduler', 'gate', 'status'], config: { JOBS_LIVE_WINDOW_DAYS: LIVE_WINDOW_DAYS } });
  await stack.model();
  tenant = await stack.tenant(10);
  today = isoDay((await stack.db.query<{ now: Date }>('SELECT now()')).rows[0]!.now);
  storeDir = stack.config.SNAPSHOT_DIR;
  networkKey = stack.config.NETWORK_SIGNING_KEY!;
});

after(async () => {
  const admin = new pg.Client({ connectionString: stack.config.DATABASE_URL.replace(/\/[^/]+$/, '/postgres') });
  await admin.connect();
  for (const name of restoredDbs) await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.end();
  await stack.close();
});

/** A logger whose lines the test reads. */
function capturedLogger(): { logger: pino.Logger; lines: () => string } {
  const lines: string[] = [];
  return { logger: pino({ level: 'info' }, { write: (s: string) => void lines.push(s) }), lines: () => lines.join('') };
}

function snapshotService(store: LocalDirectoryStore, logger: pino.Logger, db: Db = stack.db): SnapshotService {
  return new SnapshotService({ db, store, networkKey, rcpClock: rcpClockFrom(stack.config), jobDeadlineMs: stack.config.JOB_DEADLINE_MS, logger });
}

function history(snapshots: SnapshotService, logger: pino.Logger): HistoryMaintenance {
  return new HistoryMaintenance({ config: stack.config, store: historyStore(stack.db), ledgerChain: new LedgerChainService(ledgerChainStore(stack.db)), snapshots, logger });
}

async function partitionExists(day: string): Promise<boolean> {
  return (await stack.db.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [`jobs_${day.replaceAll('-', '')}`])).rows[0]!.ok;
}

/** A completed job created on a past day, charged `micro`, with its ledger hold and capture dated then. */
async function pastJob(day: string, nodeId: string, micro: number): Promise<void> {
  const created = new Date(dayStart(day).getTime() + 3_600_000 + Math.floor(Math.random() * 60_000_000));
  const id = newJobId(created.getTime());
  await stack.db.query(
    `INSERT INTO jobs (id, namespace_id, api_key_id, model, status, attempt, max_attempts, node_id, max_tokens, prompt_tokens_bound, hold_micro,
                       charged_micro, input_price_micro, output_price_micro, prompt_tokens, completion_tokens, created_at, deadline_at, published_at, started_at, finished_at)
     VALUES ($1, $2, $3, $4, 'completed', 1, 3, $5, 64, 64, 100000, $6, 10, 20, 3, 4, $7, $7::timestamptz + interval '30 seconds', $7, $7, $7::timestamptz + interval '2 seconds')`,
    [id, tenant.namespaceId, tenant.keyId, TEST_MODEL, nodeId, micro, created],
  );
  await pastTransfer(created, 'ns_available', 'platform_revenue', micro);
  await stack.db.query(`INSERT INTO rcp_records (node_id, epoch, kind, points, job_id, created_at) VALUES ($1, $2, 'job', 1, $3, $4)`, [
    nodeId,
    epochOf(rcpClockFrom(stack.config), created.getTime()),
    id,
    created,
  ]);
}

/** A balanced ledger transaction dated `at` between two accounts, keeping the cached balances right. */
async function pastTransfer(at: Date, from: 'funding' | 'ns_available', to: 'ns_available' | 'platform_revenue', micro: number): Promise<void> {
  await withTransaction(stack.db, async (tx) => {
    const ids = await tx.query<{ id: number; kind: string }>(
      `SELECT id, kind FROM ledger_accounts WHERE kind IN ('funding', 'platform_revenue') OR (kind = 'ns_available' AND owner_id = $1)`,
      [tenant.namespaceId],
    );
    const id = (k: string) => ids.rows.find((a) => a.kind === k)!.id;
    await tx.query(
      `WITH t AS (INSERT INTO ledger_transactions (kind, memo, created_at) VALUES ('topup', 'dated in the past by the test', $1) RETURNING id)
       INSERT INTO ledger_entries (txn_id, account_id, amount) SELECT t.id, u.a, u.m FROM t, unnest($2::bigint[], $3::bigint[]) AS u(a, m)`,
      [at, [id(from), id(to)], [-micro, micro]],
    );
    await tx.query(`UPDATE ledger_accounts SET balance = balance + u.m FROM unnest($1::bigint[], $2::bigint[]) AS u(a, m) WHERE id = u.a AND kind <> 'platform_revenue'`, [
      [id(from), id(to)],
      [-micro, micro],
    ]);
  });
}

let operatorToken: string;
let nodeA: string;
let nodeB: string;

test('a closed day is snapshotted to the store; its partition is dropped only after its snapshot is read back and verified, never while the store is down or the copy is damaged', () =>
  check(async () => {
    // Operators sign up through the account API; their nodes earn points in the past days' epochs.
    const signup = await requestJson(stack.url, 'POST', '/account/signup', { email: `op-${randomBytes(4).toString('hex')}@example.com`, password: 'a long enough password' });
    operatorToken = signup.body.token as string;
    const operatorId = (signup.body.account as { id: string }).id;
    nodeA = addressOf(generatePrivateKey());
    nodeB = addressOf(generatePrivateKey());
    await stack.db.query(`INSERT INTO nodes (id, operator_account_id) VALUES ($1, $3), ($2, $3)`, [nodeA, nodeB, operatorId]);

    await pastTransfer(new Date(dayStart(ago(6)).getTime() + 60_000), 'funding', 'ns_available', 5_000_000);
    for (const day of [ago(6), ago(5), ago(4), ago(2)]) await stack.db.query(`SELECT create_job_partitions($1::date)`, [day]);
    for (let i = 0; i < 5; i++) await pastJob(ago(5), i % 2 === 0 ? nodeA : nodeB, 1_000 + i);
    for (let i = 0; i < 3; i++) await pastJob(ago(4), nodeA, 2_000 + i);
    await pastJob(ago(2), nodeB, 700);

    // The store is down (its directory cannot be made): nothing is snapshotted, nothing dropped, and the log says it waits.
    const blocked = path.join(await mkdtemp(path.join(tmpdir(), 'snap-down-')), 'a-file');
    await writeFile(blocked, 'not a directory');
    const down = new LocalDirectoryStore(path.join(blocked, 'snapshots'));
    const good = new LocalDirectoryStore(storeDir);
    const log1 = capturedLogger();
    const first = await history(snapshotService(down, log1.logger), log1.logger).run();
    assert.deepEqual(first?.snapshotted, []);
    assert.deepEqual(first?.dropped, []);
    assert.ok(first?.rolledUp.includes(ago(5)));
    assert.match(log1.lines(), /snapshot store unreachable/);
    assert.equal(await partitionExists(ago(5)), true);

    // Snapshots written to the good store; then the store is down when the drop comes: still kept.
    const days = await snapshotService(good, log1.logger).createDue(new Date());
    assert.deepEqual(days.slice(0, 5), [ago(6), ago(5), ago(4), ago(3), ago(2)]);
    const log2 = capturedLogger();
    const second = await history(snapshotService(down, log2.logger), log2.logger).run();
    assert.deepEqual(second?.dropped, []);
    assert.match(log2.lines(), /raw job partitions wait: the snapshot could not be read back from the store/);
    assert.equal(await partitionExists(ago(5)), true);

    // The stored copy is damaged (one byte of a block): the snapshot does not verify, the partition stays.
    const row = (await snapshotService(good, log2.logger).find(ago(6)))!;
    const file = path.join(storeDir, `${row.cid}.car`);
    const original = await readFile(file);
    const car = await readCarFile(file);
    const chunk = rootManifest(car).manifest.parts.find((p) => p.name === 'ledger_entries')!.chunks[0]!;
    const at = original.indexOf(Buffer.from(car.blocks.get(chunk.toString())!)) + 8;
    const damaged = Buffer.from(original);
    damaged[at] = damaged[at]! ^ 0xff;
    await writeFile(file, damaged);
    const log3 = capturedLogger();
    const third = await history(snapshotService(good, log3.logger), log3.logger).run();
    assert.deepEqual(third?.dropped, []);
    assert.match(log3.lines(), /raw job partitions kept: the stored snapshot does not verify/);
    assert.match(log3.lines(), new RegExp(`block ${chunk.toString()} does not match its CID`));
    assert.equal(await partitionExists(ago(6)), true);

    // Whole again: the days past the window go, each after its snapshot verified.
    await writeFile(file, original);
    const log4 = capturedLogger();
    const fourth = await history(snapshotService(good, log4.logger), log4.logger).run();
    assert.deepEqual(fourth?.dropped, [ago(6), ago(5), ago(4)]);
    assert.equal(await partitionExists(ago(5)), false);
    assert.equal(await partitionExists(ago(2)), true, 'inside the live window');
    const verified = await stack.db.query<{ day: string }>(`SELECT to_char(day, 'YYYY-MM-DD') AS day FROM snapshots WHERE verified_at IS NOT NULL ORDER BY day`);
    assert.deepEqual(verified.rows.map((r) => r.day), [ago(6), ago(5), ago(4)]);

    // The dropped rows live on in the archive: the day's jobs part has them all.
    const exported = await run(process.execPath, ['dist/src/cli/main.js', 'snapshot', 'export', ago(5), '--part', 'jobs'], { env: stack.cliEnv() });
    assert.equal(exported.stdout.trim().split('\n').length, 5);

    // The status page names the latest snapshot.
    const status = await requestJson(stack.url, 'GET', '/status');
    const latest = (await snapshotService(good, log4.logger).latest())!;
    assert.equal((status.body.latest_snapshot as { cid: string }).cid, latest.cid);
  }));

/** Writes `blocks` (CID string -> bytes) and `root` as a CAR file; returns its path. */
async function writeCar(blocks: Map<string, Uint8Array>, root: { cid: CID; bytes: Uint8Array }): Promise<string> {
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'snap-tamper-')), 'tampered.car');
  const w = CarFileWriter.create(file);
  for (const [cid, bytes] of blocks) if (cid !== root.cid.toString()) await w.put({ cid: CID.parse(cid), bytes });
  await w.finish(root);
  return file;
}

async function verifyFile(file: string, extra: string[] = []): Promise<{ code: number; report: { ok: boolean; problems: string[] } }> {
  const env = { PATH: process.env.PATH ?? '', SNAPSHOT_DIR: storeDir };
  try {
    const r = await run(process.execPath, ['dist/src/cli/main.js', 'snapshot', 'verify', file, '--network-address', addressOf(networkKey), '--json', ...extra], { env });
    return { code: 0, report: JSON.parse(r.stdout) as { ok: boolean; problems: string[] } };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, report: JSON.parse(e.stdout) as { ok: boolean; problems: string[] } };
  }
}

test('verify needs no database and names a tampered block, part, manifest, signature, ledger entry or chain link', () =>
  check(async () => {
    const snapshots = snapshotService(new LocalDirectoryStore(storeDir), pino({ level: 'silent' }));
    const row = (await snapshots.find(ago(5)))!;
    const file = path.join(storeDir, `${row.cid}.car`);
    const clean = await verifyFile(file);
    assert.equal(clean.code, 0, JSON.stringify(clean.report));
    assert.equal(clean.report.ok, true);

    const car: CarContents = await readCarFile(file);
    const { manifest } = rootManifest(car);
    const blocks = new Map(car.blocks);
    const resign = resignedRoot;
    const expectProblem = async (label: string, f: string, pattern: RegExp, extra: string[] = []) => {
      const r = await verifyFile(f, extra);
      assert.equal(r.code, 1, `${label}: verify fails`);
      assert.ok(r.report.problems.some((p) => pattern.test(p)), `${label}: ${JSON.stringify(r.report.problems)}`);
    };

    // A block whose bytes changed under its CID.
    const entries = manifest.parts.find((p) => p.name === 'ledger_entries')!;
    const chunkCid = entries.chunks[0]!.toString();
    const flipped = new Map(blocks);
    const bytes = Uint8Array.from(blocks.get(chunkCid)!);
    bytes[bytes.length - 2] = bytes[bytes.length - 2]! ^ 0x01;
    flipped.set(chunkCid, bytes);
    await expectProblem('block', await writeCar(flipped, { cid: car.roots[0]!, bytes: blocks.get(car.roots[0]!.toString())! }), new RegExp(`block ${chunkCid} does not match its CID`));

    // A part whose chunk was swapped for another valid block (manifest re-signed, hash left as it was).
    const rollups = manifest.parts.find((p) => p.name === 'job_rollups')!;
    assert.equal(rollups.encoding, 'postgresql-copy-text');
    const rows = parseCopyText(blocks.get(rollups.chunks[0]!.toString())!, rollups.columns.length);
    const other = rawBlock(Buffer.from(copyLines(rows.slice(1))));
    const swapped = new Map(blocks).set(other.cid.toString(), other.bytes);
    const swappedManifest = { ...manifest, parts: manifest.parts.map((p) => (p.name === 'job_rollups' ? { ...p, chunks: [other.cid] } : p)) };
    await expectProblem('part', await writeCar(swapped, resign(swappedManifest)), /part job_rollups: \d+ rows, the manifest says \d+/);

    // The manifest changed without its signature.
    const edited = encodeBlock({ ...manifest, schema_version: 'forged' });
    await expectProblem('manifest', await writeCar(blocks, edited), /the manifest or its signature was changed/);

    // Signed by another key.
    await expectProblem('signature', await writeCar(blocks, resign(manifest, generatePrivateKey())), /signature: signed by 0x[0-9a-f]{40}, not by the network address/);

    // A ledger entry changed, its part re-hashed and the manifest re-signed: the chain hash gives it away.
    const entryRows = parseCopyText(blocks.get(chunkCid)!, entries.columns.length);
    const amount = entries.columns.indexOf('amount');
    entryRows[0]![amount] = String(Number(entryRows[0]![amount]) - 1);
    entryRows[1]![amount] = String(Number(entryRows[1]![amount]) + 1);
    const forgedChunk = rawBlock(Buffer.from(copyLines(entryRows)));
    const forgedPart = { ...entries, chunks: [forgedChunk.cid], sha256: createHash('sha256').update(forgedChunk.bytes).digest('hex'), bytes: forgedChunk.bytes.length };
    const forgedLedger = { ...manifest, parts: manifest.parts.map((p) => (p.name === 'ledger_entries' ? forgedPart : p)) };
    await expectProblem('ledger', await writeCar(new Map(blocks).set(forgedChunk.cid.toString(), forgedChunk.bytes), resign(forgedLedger)), /ledger: the day's \d+ entries hash to/);

    // A chain link to another snapshot than the one before (re-signed): named given the previous one.
    const previous = (await snapshots.find(ago(6)))!;
    const before = (await snapshots.find(ago(7)))?.cid ?? (await snapshots.find(ago(4)))!.cid;
      await expectProblem('chain', await writeCar(blocks, resign({ ...manifest, previous: before })), /chain: .* links to .*, not to the previous snapshot/, [
      '--previous',
      path.join(storeDir, `${previous.cid}.car`),
    ]);

    // --against-db: the archived day still matches the live rollups and ledger.
    const against = await run(process.execPath, ['dist/src/cli/main.js', 'snapshot', 'verify', row.cid, '--against-db', '--json'], { env: stack.cliEnv() });
    const report = JSON.parse(against.stdout) as { ok: boolean; against_db: { ok: boolean } };
    assert.equal(report.ok, true, against.stdout);
    assert.equal(report.against_db.ok, true);
  }));

/** The manifest re-signed by `key` (after a change), as its root block. */
function resignedRoot(m: Manifest, key = networkKey): { cid: CID; bytes: Uint8Array } {
  const { signature: _s, ...unsigned } = m;
  return encodeBlock(signManifest(key, { ...unsigned, signer: addressOf(key) }));
}

/** The snapshot rewritten as format 1 (before COPY text): each part one DAG-CBOR chunk of rows of text, no encoding named. */
function asFormat1(car: CarContents): { blocks: Map<string, Uint8Array>; root: { cid: CID; bytes: Uint8Array } } {
  const { manifest } = rootManifest(car);
  const blocks = new Map<string, Uint8Array>();
  const parts = manifest.parts.map(({ encoding: _e, ...p }) => {
    const rows = partRows(car, manifest.parts.find((x) => x.name === p.name)!);
    if (rows.length === 0) return p;
    const chunk = encodeBlock(rows);
    blocks.set(chunk.cid.toString(), chunk.bytes);
    return { ...p, chunks: [chunk.cid], bytes: chunk.bytes.length, sha256: createHash('sha256').update(chunk.bytes).digest('hex') };
  });
  const root = resignedRoot({ ...manifest, format: 'resultity-snapshot/1', parts });
  blocks.set(root.cid.toString(), root.bytes);
  return { blocks, root };
}

test('a format-1 snapshot (DAG-CBOR rows, before COPY text) still verifies and restores, a format-2 one (COPY text, raw job rows by time) verifies; a format this version does not know is refused, named', () =>
  check(async () => {
    const first = (await stack.db.query<{ cid: string; day: string }>(`SELECT cid, to_char(day, 'YYYY-MM-DD') AS day FROM snapshots WHERE seq = 1`)).rows[0]!;
    const car = await readCarFile(path.join(storeDir, `${first.cid}.car`));
    assert.equal(rootManifest(car).manifest.format, 'resultity-snapshot/3');
    const old = asFormat1(car);
    const file = await writeCar(old.blocks, old.root);
    const verified = await verifyFile(file);
    assert.equal(verified.code, 0, JSON.stringify(verified.report));

    // Restored alone (the first of its chain) into an empty database: the ledger chain verifies, with the day's hash.
    const dir = await mkdtemp(path.join(tmpdir(), 'snap-format1-'));
    await writeFile(path.join(dir, `${old.root.cid.toString()}.car`), await readFile(file));
    const name = `${stack.id}_format1`;
    restoredDbs.push(name);
    const url = stack.config.DATABASE_URL.replace(/\/[^/]+$/, `/${name}`);
    const restore = await run(process.execPath, ['dist/src/cli/main.js', 'snapshot', 'restore', old.root.cid.toString(), '--network-address', addressOf(networkKey), '--json'], {
      env: stack.cliEnv({ DATABASE_URL: url, SNAPSHOT_DIR: dir }),
    });
    const report = JSON.parse(restore.stdout) as { snapshots: number; rows: number; ledger_verify: { ok: boolean; head_hash: string } };
    assert.equal(report.ledger_verify.ok, true, restore.stdout);
    const day = (await stack.db.query<{ hash: string }>(`SELECT encode(hash, 'hex') AS hash FROM ledger_days WHERE day = $1::date`, [first.day])).rows[0];
    if (day) assert.equal(report.ledger_verify.head_hash, day.hash);

    // Format 2: the same COPY-text parts, the raw job rows by time (format 3 has them in primary-key order).
    const manifest3 = rootManifest(car).manifest;
    const jobsPart = manifest3.parts.find((p) => p.name === 'jobs')!;
    const ids = partRows(car, jobsPart).map((r) => r[jobsPart.columns.indexOf('id')]!);
    assert.deepEqual(ids, [...ids].sort(), 'format 3: raw job rows in primary-key order');
    const byTime = new Map(car.blocks);
    const parts2 = manifest3.parts.map((p) => {
      if (p.name !== 'jobs' || p.rows === 0) return p;
      const rows = partRows(car, p);
      const [at, id] = [p.columns.indexOf('created_at'), p.columns.indexOf('id')];
      rows.sort((a, b) => (a[at]! < b[at]! ? -1 : a[at]! > b[at]! ? 1 : a[id]! < b[id]! ? -1 : a[id]! > b[id]! ? 1 : 0));
      const chunk = rawBlock(Buffer.from(copyLines(rows)));
      byTime.set(chunk.cid.toString(), chunk.bytes);
      return { ...p, chunks: [chunk.cid], bytes: chunk.bytes.length, sha256: createHash('sha256').update(chunk.bytes).digest('hex') };
    });
    const format2 = await verifyFile(await writeCar(byTime, resignedRoot({ ...manifest3, format: 'resultity-snapshot/2', parts: parts2 })));
    assert.equal(format2.code, 0, JSON.stringify(format2.report));

    // A format from the future: refused, the format named.
    const future = resignedRoot({ ...rootManifest(car).manifest, format: 'resultity-snapshot/9' as Manifest['format'] });
    const r = await verifyFile(await writeCar(new Map(car.blocks), future));
    assert.equal(r.code, 1);
    assert.ok(r.report.problems.some((p) => /snapshot format "resultity-snapshot\/9" is not one this version reads \(resultity-snapshot\/1, resultity-snapshot\/2, resultity-snapshot\/3\)/.test(p)), JSON.stringify(r.report.problems));
  }));

test('operators get a Merkle proof of each node\'s points per sealed epoch, from the account API and from the snapshot alone', () =>
  check(async () => {
    const epoch = epochOf(rcpClockFrom(stack.config), dayStart(ago(5)).getTime());
    const api = await requestJson(stack.url, 'GET', `/account/nodes/${nodeA}/rcp-proofs`, undefined, operatorToken);
    assert.equal(api.status, 200, api.text);
    const proofs = api.body.data as Array<{ epoch: number; points: number; proof: string[]; merkle_root: string; node_id: string; snapshot_cid: string }>;
    const p5 = proofs.find((p) => p.epoch === epoch)!;
    assert.equal(p5.points, 3, 'nodeA ran jobs 0, 2 and 4 of that day');
    assert.equal(verifyProof(p5), true);
    assert.equal(verifyProof({ ...p5, points: 4 }), false);

    // The same proof from the archive, with no database: what an operator does with the CAR from IPFS.
    const cli = await run(process.execPath, ['dist/src/cli/main.js', 'snapshot', 'proof', nodeA, '--snapshot', path.join(storeDir, `${p5.snapshot_cid}.car`), '--epoch', String(epoch), '--json'], {
      env: { PATH: process.env.PATH ?? '', SNAPSHOT_DIR: storeDir },
    });
    const fromArchive = (JSON.parse(cli.stdout) as Array<{ proof: string[]; merkle_root: string }>)[0]!;
    assert.deepEqual([fromArchive.merkle_root, fromArchive.proof], [p5.merkle_root, p5.proof]);

    // Another account's node is a 404.
    const stranger = await requestJson(stack.url, 'POST', '/account/signup', { email: `x-${randomBytes(4).toString('hex')}@example.com`, password: 'a long enough password' });
    const denied = await requestJson(stack.url, 'GET', `/account/nodes/${nodeA}/rcp-proofs`, undefined, stranger.body.token as string);
    assert.equal(denied.status, 404);
  }));

test('export gives the same parts on one connection (a pool of two) as on two sharing a database snapshot', () =>
  check(async () => {
    const small = createPool(stack.config.DATABASE_URL, 2);
    try {
      const two = await snapshotService(new LocalDirectoryStore(storeDir), pino({ level: 'silent' })).createState();
      const one = await snapshotService(new LocalDirectoryStore(storeDir), pino({ level: 'silent' }), small).createState();
      const parts = async (cid: string) => rootManifest(await readCarFile(path.join(storeDir, `${cid}.car`))).manifest.parts;
      const [a, b] = [await parts(two.cid), await parts(one.cid)];
      assert.deepEqual(b.map((p) => p.name), a.map((p) => p.name));
      // Node rows may change between the two (presence): every other part is the same bytes.
      const same = (ps: typeof a) => ps.filter((p) => p.name !== 'nodes').map((p) => [p.name, p.rows, p.sha256, p.chunks.map(String)]);
      assert.deepEqual(same(b), same(a));
      assert.ok(a.some((p) => p.rows > 0));
    } finally {
      await small.end();
    }
  }));

test('restore rebuilds the chain into an empty database: ledger-verify passes with the same head, usage reports and snapshot chain are equal, and the restored network boots with its config', () =>
  check(async () => {
    const snapshots = snapshotService(new LocalDirectoryStore(storeDir), pino({ level: 'silent' }));
    // A frozen state before an "upgrade", through the admin API: it carries every config version.
    const created = await requestJson(stack.url, 'POST', '/admin/snapshots', { kind: 'state' }, stack.config.ADMIN_TOKEN);
    assert.equal(created.status, 201, created.text);
    const head = created.body.cid as string;

    const name = `${stack.id}_restored`;
    restoredDbs.push(name);
    const url = stack.config.DATABASE_URL.replace(/\/[^/]+$/, `/${name}`);
    const restore = await run(process.execPath, ['dist/src/cli/main.js', 'snapshot', 'restore', head, '--network-address', addressOf(networkKey), '--json'], {
      env: { ...stack.cliEnv(), DATABASE_URL: url },
    });
    const report = JSON.parse(restore.stdout) as { snapshots: number; ledger_verify: { ok: boolean; head_hash: string } };
    assert.equal(report.ledger_verify.ok, true, restore.stdout);

    const restored = createPool(url, 4);
    try {
      // The head is the original chain's hash of the newest ledger day snapshotted (the live ledger may have
      // chained a later day since, when the run crosses midnight UTC).
      const lastDay = (await stack.db.query<{ day: string }>(`SELECT to_char(max(day), 'YYYY-MM-DD') AS day FROM snapshots WHERE kind = 'day' AND part_rows->>'ledger_days' = '1'`)).rows[0]!.day;
      const restoredHead = (await restored.query<{ day: string }>(`SELECT to_char(max(day), 'YYYY-MM-DD') AS day FROM ledger_days`)).rows[0]!.day;
      assert.equal(restoredHead, lastDay);
      const originalHash = (await stack.db.query<{ hash: string }>(`SELECT encode(hash, 'hex') AS hash FROM ledger_days WHERE day = $1::date`, [lastDay])).rows[0]!.hash;
      assert.equal(report.ledger_verify.head_hash, originalHash);
      assert.equal((await new LedgerChainService(ledgerChainStore(restored)).verify()).ok, true);
      const range = { from: ago(7), to: ago(1) };
      const before = await new UsageService(usageStore(stack.db)).report(tenant.namespaceId, range);
      const after = await new UsageService(usageStore(restored)).report(tenant.namespaceId, range);
      assert.ok(before.data.length >= 3);
      assert.deepEqual(after, before);
      const chain = (await restored.query<{ cid: string; seq: number }>(`SELECT cid, seq FROM snapshots ORDER BY seq`)).rows;
      const originalChain = (await stack.db.query<{ cid: string; seq: number }>(`SELECT cid, seq FROM snapshots ORDER BY seq`)).rows;
      assert.deepEqual(chain, originalChain);
      const epochs = (await restored.query(`SELECT epoch, merkle_root FROM snapshot_epochs ORDER BY epoch`)).rows;
      assert.deepEqual(epochs, (await stack.db.query(`SELECT epoch, merkle_root FROM snapshot_epochs ORDER BY epoch`)).rows);
      // The restore refuses to write over history.
      await assert.rejects(run(process.execPath, ['dist/src/cli/main.js', 'snapshot', 'restore', head], { env: { ...stack.cliEnv(), DATABASE_URL: url } }), /not empty/);
      assert.equal((await snapshots.latest())!.cid, head);
    } finally {
      await restored.end();
    }

    // The restored network boots with its restored config (no new genesis) and serves.
    const backbone = await createBackbone({
      config: { ...stack.config, DATABASE_URL: url, REDIS_KEY_PREFIX: `${stack.id}r:`, RABBITMQ_PREFIX: `${stack.id}r` },
      roles: ['gate', 'io', 'status'],
      logger: pino({ level: 'silent' }),
      mongoUrl: stack.mongoUrl,
    });
    try {
      const base = await backbone.listen();
      const served = await requestJson(base, 'GET', '/io/config');
      const live = await requestJson(stack.url, 'GET', '/io/config');
      assert.equal(served.status, 200);
      assert.equal(served.body.digest, live.body.digest);
      const status = await requestJson(base, 'GET', '/status');
      assert.equal((status.body.latest_snapshot as { cid: string }).cid, head);
    } finally {
      await backbone.close();
    }
  }));

test('the Kubo store round-trips a snapshot by CID (a real Kubo daemon, offline, started by the test command)', () =>
  check(async () => {
    const api = process.env.TEST_KUBO_API_URL;
    assert.ok(api, 'TEST_KUBO_API_URL is not set: run the suite with `npm test` (it starts an offline Kubo daemon), or point it at a Kubo RPC API');
    const kubo = new KuboStore(api);
    const log = capturedLogger();
    const snapshots = new SnapshotService({ db: stack.db, store: kubo, networkKey, rcpClock: rcpClockFrom(stack.config), jobDeadlineMs: stack.config.JOB_DEADLINE_MS, logger: log.logger });
    const row = await snapshots.createState();
    assert.equal(row.store, `kubo:${api}`);
    // Back by CID from Kubo (its own block order): every block, the signature and the parts verify.
    const car = await readCar(await kubo.get(row.cid));
    const report = verifySnapshot(car, { networkAddress: addressOf(networkKey) });
    assert.equal(report.ok, true, JSON.stringify(report.problems));
    assert.equal(report.cid, row.cid);
    // And with the CLI, by CID alone, against the same daemon.
    const cli = await run(process.execPath, ['dist/src/cli/main.js', 'snapshot', 'verify', row.cid, '--network-address', addressOf(networkKey), '--json'], {
      env: { PATH: process.env.PATH ?? '', SNAPSHOT_STORE: 'kubo', KUBO_API_URL: api },
    });
    assert.equal((JSON.parse(cli.stdout) as { ok: boolean }).ok, true, cli.stdout);
    // A CID the node does not hold is "not found", not a verified snapshot.
    await assert.rejects(kubo.get(encodeBlock({ absent: true }).cid.toString()).then((s) => readCar(s)));
  }));

test('snapshot create shows a progress bar on a terminal and prints one JSON document with --json', () =>
  check(async () => {
    const env = stack.cliEnv({ NETWORK_SIGNING_KEY: networkKey, SNAPSHOT_DIR: storeDir });
    // A pseudo-terminal for the CLI (util-linux `script`), as an operator's shell gives it: the bar is drawn on stderr.
    const tty = await run('script', ['-qec', `'${process.execPath}' dist/src/cli/main.js snapshot create`, '/dev/null'], { env });
    assert.match(tty.stdout, /[░█]{5,}/, tty.stdout);
    assert.match(tty.stdout, /snapshot b[a-z2-7]+ \(state, \d+ bytes\) stored in local:/);
    // Not a terminal, --json: one JSON document on stdout, no bar anywhere.
    const json = await run(process.execPath, ['dist/src/cli/main.js', 'snapshot', 'create', '--json'], { env });
    const row = JSON.parse(json.stdout) as { kind: string; cid: string; part_rows: Record<string, number> };
    assert.equal(row.kind, 'state');
    assert.ok(row.part_rows['accounts']! > 0);
    assert.doesNotMatch(json.stderr, /[░█]/);
  }));
