// `resultity snapshot ...`: snapshots from the command line. `verify`, `export` and `proof` need no
// database: they read a CAR file, or fetch one by CID from the configured store (SNAPSHOT_STORE,
// SNAPSHOT_DIR, KUBO_API_URL). `create`, `list` and `show` use the database's snapshot index; `restore`
// writes into DATABASE_URL, which must be empty. Long work shows a progress bar on a terminal; --json
// prints one JSON document instead.
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { pino } from 'pino';
import { loadConfig, type Config } from '../config.js';
import { rcpClockFrom } from '../domain/rcp.js';
import { createPool, type Db } from '../postgres/db.js';
import { migrate } from '../postgres/migrate.js';
import { LedgerChainService } from '../maintenance/ledger-chain.service.js';
import { ledgerChainStore } from '../postgres/ledger-chain.store.js';
import { readCar, type CarContents } from '../snapshots/car-file.js';
import { epochTree, proofFor } from '../snapshots/epoch-merkle.js';
import { restoreChain } from '../snapshots/snapshot-restore.js';
import { existingFile, SnapshotService } from '../snapshots/snapshot.service.js';
import { storeFromConfig } from '../snapshots/snapshot-store.js';
import { epochRecords, partRows, rootManifest, verifySnapshot, type VerifyReport } from '../snapshots/snapshot.verify.js';

type Json = { json?: boolean };

function out(opts: Json, value: unknown, text: string): void {
  process.stdout.write(opts.json ? `${JSON.stringify(value)}\n` : `${text}\n`);
}

/** A progress bar on stderr, on a terminal and without --json; otherwise silent. */
function progressBar(opts: Json): { update(label: string, value: number, total?: number): void; stop(): void } {
  if (opts.json || !process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar({ stream: process.stderr, format: ' {label} [{bar}] {value}{totalText}', hideCursor: true }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update(label, value, total) {
      const payload = { label: label.padEnd(20).slice(0, 20), totalText: total === undefined ? ' rows' : ` / ${total}` };
      if (!started) {
        bar.start(total ?? 0, value, payload);
        started = true;
      }
      if (total !== undefined) bar.setTotal(total);
      bar.update(value, payload);
    },
    stop: () => bar.stop(),
  };
}

function cliConfig(): { config: Config; logger: pino.Logger } {
  const config = loadConfig(process.env);
  return { config, logger: pino({ level: config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL }) };
}

async function withSnapshots<T>(fn: (snapshots: SnapshotService, db: Db, config: Config) => Promise<T>): Promise<T> {
  const { config, logger } = cliConfig();
  await migrate(config.DATABASE_URL, logger);
  // A snapshot holds its lock on one connection while it reads on a second and records on a third.
  const db = createPool(config.DATABASE_URL, 4);
  try {
    const snapshots = new SnapshotService({ db, store: storeFromConfig(config), networkKey: config.NETWORK_SIGNING_KEY ?? null, rcpClock: rcpClockFrom(config), jobDeadlineMs: config.JOB_DEADLINE_MS, logger });
    return await fn(snapshots, db, config);
  } finally {
    await db.end();
  }
}

/** A CAR from a file path, or by CID from the configured store. */
async function loadCar(fileOrCid: string): Promise<CarContents> {
  const file = await existingFile(fileOrCid);
  if (file) return readCar(createReadStream(file));
  return readCar(await storeFromConfig(cliConfig().config).get(fileOrCid));
}

function reportText(r: VerifyReport): string {
  const mark = (ok: boolean | null) => (ok === null ? '-' : ok ? 'ok' : 'FAILED');
  const lines = [`snapshot ${r.cid ?? '(no root)'}: ${r.ok ? 'verified' : 'DOES NOT VERIFY'}${r.kind ? ` (${r.kind}${r.day ? ` ${r.day}` : ''}, signer ${r.signer})` : ''}`];
  for (const c of r.checks) lines.push(`  ${c.check.padEnd(9)} ${mark(c.ok).padEnd(6)} ${c.detail}`);
  return lines.join('\n');
}

export function registerSnapshotCommand(program: Command): void {
  const snapshot = program.command('snapshot').description('versioned, signed snapshots of the network history (CAR files for IPFS and Filecoin)');

  snapshot
    .command('create')
    .description('take a snapshot now: the frozen state of the network (default), or --due: every closed day not snapshotted yet')
    .option('--due', 'snapshot the closed days instead (what the maintenance role does)')
    .option('--json')
    .action(async (opts: Json & { due?: boolean }) =>
      withSnapshots(async (snapshots) => {
        const bar = progressBar(opts);
        const progress = (p: { phase: string; rows: number }) => bar.update(p.phase, p.rows);
        try {
          if (opts.due) {
            const days = await snapshots.createDue(new Date(), progress);
            bar.stop();
            out(opts, { days }, days.length ? `snapshotted: ${days.join(', ')}` : 'no closed day is due a snapshot');
            return;
          }
          const row = await snapshots.createState(progress);
          bar.stop();
          out(opts, row, `snapshot ${row.cid} (${row.kind}, ${row.bytes} bytes) stored in ${row.store}`);
        } finally {
          bar.stop();
        }
      }),
    );

  snapshot
    .command('list')
    .description('the snapshots taken, newest first')
    .option('--limit <n>', 'how many', '30')
    .option('--json')
    .action(async (opts: Json & { limit: string }) =>
      withSnapshots(async (snapshots) => {
        const rows = await snapshots.list(Number(opts.limit));
        const text = rows.map((r) => `${String(r.seq).padStart(5)}  ${r.cid}  ${(r.day ?? r.kind).padEnd(10)}  ${String(r.bytes).padStart(10)} B  ${r.verified_at ? 'verified' : ''}`).join('\n');
        out(opts, rows, rows.length ? text : 'no snapshot yet');
      }),
    );

  snapshot
    .command('show <ref>')
    .description('a snapshot (root CID or day) and its manifest')
    .option('--json')
    .action(async (ref: string, opts: Json) =>
      withSnapshots(async (snapshots) => {
        const row = await snapshots.find(ref);
        if (!row) throw new Error(`no snapshot ${ref}`);
        const m = await snapshots.manifest(row.cid);
        const parts = m.parts.map((p) => `  ${p.name.padEnd(20)} ${String(p.rows).padStart(9)} rows  ${String(p.bytes).padStart(10)} B  sha256 ${p.sha256}`);
        const text = [
          `${row.cid}  ${m.kind}${m.day ? ` ${m.day}` : ''}  seq ${row.seq}  schema ${m.schema_version}`,
          `  previous ${m.previous ?? '(none: first of the chain)'}`,
          `  signer   ${m.signer}`,
          ...(m.ledger ? [`  ledger   ${m.ledger.day} hash ${m.ledger.hash}`] : []),
          ...m.epochs.map((e) => `  epoch ${e.epoch} merkle root ${e.merkle_root} (${e.nodes} nodes, ${e.points} points)`),
          ...parts,
        ].join('\n');
        out(opts, { ...row, manifest: { ...m, parts: m.parts.map((p) => ({ ...p, chunks: p.chunks.map(String) })) } }, text);
      }),
    );

  snapshot
    .command('verify <fileOrCid>')
    .description('verify a snapshot with no database: blocks, manifest, signature, parts, ledger chain hash, epochs, chain link')
    .option('--network-address <address>', 'the network address the signature must be from (else the signer is reported, not trusted)')
    .option('--previous <fileOrCid>', 'the previous snapshot, to check the chain link (default: fetched from the store when there)')
    .option('--against-db', 'also compare the day with the live database (DATABASE_URL)')
    .option('--json')
    .action(async (target: string, opts: Json & { networkAddress?: string; previous?: string; againstDb?: boolean }) => {
      const car = await loadCar(target);
      let previous: { cid: string; manifest: ReturnType<typeof rootManifest>['manifest'] } | undefined;
      const named = opts.previous ?? (() => {
        try {
          return rootManifest(car).manifest.previous ?? undefined;
        } catch {
          return undefined;
        }
      })();
      if (named) previous = await loadCar(named).then(rootManifest, () => undefined);
      const report: VerifyReport & { against_db?: { ok: boolean; problems: string[] } } = verifySnapshot(car, {
        ...(opts.networkAddress ? { networkAddress: opts.networkAddress } : {}),
        ...(previous ? { previous } : {}),
      });
      if (opts.againstDb && report.cid) {
        const stored = await withSnapshots((snapshots) => snapshots.verifyStored(report.cid!, { againstDb: true }).then((r) => r.against_db));
        if (stored) {
          report.against_db = stored;
          report.ok &&= stored.ok;
        }
      }
      const dbText = report.against_db ? `\n  against-db ${report.against_db.ok ? 'ok' : `FAILED ${report.against_db.problems.join('; ')}`}` : '';
      out(opts, report, reportText(report) + dbText);
      if (!report.ok) process.exitCode = 1;
    });

  snapshot
    .command('restore <headCid>')
    .description('rebuild history from the chain ending at <headCid> into the empty database DATABASE_URL')
    .option('--network-address <address>', 'every snapshot must be signed by this address (default: the head\'s signer, reported)')
    .option('--json')
    .action(async (head: string, opts: Json & { networkAddress?: string }) => {
      const { config, logger } = cliConfig();
      await migrate(config.DATABASE_URL, logger);
      const db = createPool(config.DATABASE_URL, 2);
      const store = storeFromConfig(config);
      const bar = progressBar(opts);
      try {
        const report = await restoreChain(head, {
          db,
          fetch: async (cid) => readCar(await store.get(cid)),
          networkAddress: opts.networkAddress ?? null,
          onProgress: (p) => bar.update(p.phase === 'fetch' ? 'reading the chain' : 'restoring', p.done, p.total),
        });
        bar.stop();
        const ledger = await new LedgerChainService(ledgerChainStore(db)).verify();
        out(
          opts,
          { ...report, ledger_verify: ledger },
          `restored ${report.snapshots} snapshot(s), ${report.rows} rows, days ${report.days.first ?? '-'} to ${report.days.last ?? '-'}; ledger chain ${ledger.ok ? `verified, head ${ledger.head_hash}` : `BROKEN at ${ledger.broken?.day}: ${ledger.broken?.reason}`}`,
        );
        if (!ledger.ok) process.exitCode = 1;
      } finally {
        bar.stop();
        await db.end();
      }
    });

  snapshot
    .command('export <ref>')
    .description('write a snapshot\'s CAR file (by CID with no database, or by day through the index), or one part\'s rows as NDJSON')
    .option('--out <path>', 'where to write (default: <cid>.car, or stdout for --part)')
    .option('--part <name>', 'write this part\'s rows as NDJSON (one object per row) instead of the CAR')
    .option('--json')
    .action(async (ref: string, opts: Json & { out?: string; part?: string }) => {
      const cid = /^\d{4}-\d{2}-\d{2}$/.test(ref) ? await withSnapshots(async (s) => (await s.find(ref))?.cid) : ref;
      if (!cid) throw new Error(`no snapshot of ${ref}`);
      const store = storeFromConfig(cliConfig().config);
      if (opts.part) {
        const car = await readCar(await store.get(cid));
        const part = rootManifest(car).manifest.parts.find((p) => p.name === opts.part);
        if (!part) throw new Error(`snapshot ${cid} has no part ${opts.part}`);
        const lines = partRows(car, part).map((row) => `${JSON.stringify(Object.fromEntries(part.columns.map((c, i) => [c, row[i]])))}\n`);
        await pipeline(Readable.from(lines), opts.out ? createWriteStream(opts.out) : process.stdout);
        return;
      }
      const path = opts.out ?? `${cid}.car`;
      await pipeline(Readable.from(await store.get(cid)), createWriteStream(path));
      out(opts, { cid, path }, `wrote ${path}`);
    });

  snapshot
    .command('proof <nodeId>')
    .description('a node\'s Merkle proof of its points in a contribution epoch, computed from the epoch\'s snapshot alone')
    .requiredOption('--snapshot <fileOrCid>', 'the snapshot that seals the epoch')
    .option('--epoch <n>', 'the epoch (default: every epoch the snapshot seals)')
    .option('--json')
    .action(async (nodeId: string, opts: Json & { snapshot: string; epoch?: string }) => {
      const car = await loadCar(opts.snapshot);
      const report = verifySnapshot(car);
      if (!report.ok) throw new Error(`the snapshot does not verify: ${report.problems.join('; ')}`);
      const m = rootManifest(car).manifest;
      const records = m.parts.find((p) => p.name === 'rcp_records');
      if (!records) throw new Error('the snapshot holds no contribution records');
      const byEpoch = epochRecords(records, partRows(car, records));
      const proofs = m.epochs
        .filter((e) => opts.epoch === undefined || e.epoch === Number(opts.epoch))
        .map((seal) => {
          const proof = proofFor(epochTree(byEpoch.get(seal.epoch) ?? []), nodeId);
          return proof && { epoch: seal.epoch, snapshot_cid: report.cid, ...proof };
        })
        .filter((p) => p !== null);
      out(opts, proofs, proofs.length ? proofs.map((p) => `epoch ${p.epoch}: ${p.points} points, root ${p.merkle_root}\n  leaf  ${p.leaf}\n  proof ${p.proof.join(' ')}`).join('\n') : `no points of ${nodeId} in the epochs this snapshot seals`);
    });
}
