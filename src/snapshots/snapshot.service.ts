// Taking snapshots, keeping their index, and the offload gate: a day's raw partitions may be dropped only
// once its snapshot has been written to the store, read back from it by CID and verified.
//
// A day is snapshotted once it is closed for both halves of its history: its jobs rolled up (or it has no
// job partition) and its ledger day chained (or the ledger had not started). Days go oldest first, and a
// day that is not ready holds back every later one (as rollups do); each snapshot links to the one taken
// before it, so the chain is the order they were taken in. Snapshots are taken one at a time across
// instances (an advisory lock), since each names the one before.
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { addressOf } from '../domain/signatures.js';
import { isoDay } from '../domain/day-range.js';
import { addDays, dayStart, isJobDayClosed } from '../domain/job-history.js';
import type { RcpClock } from '../domain/rcp.js';
import type { Db, Queryable } from '../postgres/db.js';
import { readSnapshotOnce, withExportSession, type ExportReader, type SharedReader } from '../postgres/snapshot-copy.js';
import {
  epochPoints,
  findSnapshot,
  hasJobPartition,
  insertSealedEpochs,
  insertSnapshot,
  latestSnapshot,
  ledgerDayLink,
  schemaVersion,
  unsealedEpochsWithRecords,
  type HistoryExtent,
  type SealedEpochRow,
  type SnapshotRow,
} from '../postgres/snapshots.repository.js';
import { snapshotRecords } from '../postgres/snapshot-records.store.js';
import { CarFileWriter, readCar, type CarContents } from './car-file.js';
import { epochTree, proofFor, type EpochProof } from './epoch-merkle.js';
import { CHUNK_MAX_BYTES, encodeBlock, signManifest, SNAPSHOT_FORMAT, SNAPSHOT_FORMAT_2, type EpochSeal, type Manifest, type PartEntry, type SnapshotKind, type UnsignedManifest } from './snapshot.format.js';
import { countRows } from './copy-text.js';
import { copySource, DAY_PARTS, FORMAT_2_ORDER, STATE_SNAPSHOT_PARTS, type PartParams, type PartSpec } from './snapshot-parts.js';
import { SnapshotNotFoundError, StoreUnavailableError, type SnapshotStore } from './snapshot-store.js';
import { rootManifest, verifySnapshot, type VerifyReport } from './snapshot.verify.js';

export type { SnapshotRow } from '../postgres/snapshots.repository.js';

/** The parts that hold most of a day's bytes, largest first as a day usually has them: copied out first. */
const BULK_PARTS = ['jobs', 'ledger_entries', 'ledger_transactions', 'job_attempts'];

/** The advisory lock that makes snapshots one at a time across instances ("RESS"). */
const SNAPSHOT_LOCK = 0x5245_5353;

export interface SnapshotProgress {
  /** What is being done: a part's name while writing, 'store' while storing. */
  phase: string;
  rows: number;
}

/**
 * The snapshot records and history facts the service reads and marks outside an export
 * (postgres/snapshot-records.store.ts; in memory: test/fakes/snapshot-records.store.ts): what the offload
 * gate, the choice of the next day and the epoch proofs decide on. An export itself (the lock, the
 * REPEATABLE READ snapshot, COPY out of the parts) is the engine's work and runs on `db`.
 */
export interface SnapshotRecords {
  historyExtent(): Promise<HistoryExtent>;
  /** The oldest day from `from` to `to` (inclusive) without a snapshot, or null. */
  firstDayWithoutSnapshot(from: string, to: string): Promise<string | null>;
  isRolledUp(day: string): Promise<boolean>;
  hasJobPartition(day: string): Promise<boolean>;
  /** By CID, or by day (the day's snapshot). */
  find(ref: string): Promise<SnapshotRow | null>;
  /** Raw job rows the day's partition still holds. */
  countJobsOnDay(day: string): Promise<number>;
  markVerified(cid: string): Promise<void>;
  list(limit: number): Promise<SnapshotRow[]>;
  latest(): Promise<SnapshotRow | null>;
  /** Sealed epochs, newest first (`epochs`: those only). */
  sealedEpochs(epochs: readonly number[] | null, limit: number): Promise<SealedEpochRow[]>;
  epochPoints(epochs: readonly number[]): Promise<Array<{ epoch: number; node_id: string; points: number }>>;
}

export interface SnapshotDeps {
  /** The export session's pool (COPY out, the snapshot lock). */
  db: Db;
  /** Default: the records on `db`. */
  records?: SnapshotRecords;
  store: SnapshotStore;
  /** Signs snapshots; without it none can be taken, so no partition is dropped (and the log says so). */
  networkKey: string | null;
  rcpClock: RcpClock;
  /** The longest job deadline: when a day with no job partition counts as closed. */
  jobDeadlineMs: number;
  logger: Logger;
}

export class SnapshotService {
  readonly networkAddress: string | null;
  private readonly records: SnapshotRecords;

  constructor(private readonly d: SnapshotDeps) {
    this.networkAddress = d.networkKey ? addressOf(d.networkKey) : null;
    this.records = d.records ?? snapshotRecords(d.db);
  }

  get storeName(): string {
    return this.d.store.name;
  }

  /**
   * Snapshots every day that is closed and not snapshotted yet, oldest first; returns their days. A store
   * that is down stops the run (logged: the days wait for the next one).
   */
  async createDue(now: Date, onProgress?: (p: SnapshotProgress) => void): Promise<string[]> {
    if (!this.d.networkKey) {
      this.d.logger.error('NETWORK_SIGNING_KEY is not set: no snapshot can be signed, so raw job partitions are kept');
      return [];
    }
    const done: string[] = [];
    try {
      for (;;) {
        const day = await this.nextDueDay(now);
        if (day === null) return done;
        await this.createDay(day, onProgress);
        done.push(day);
      }
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
      this.d.logger.warn({ err: err.message, store: this.d.store.name }, 'snapshot store unreachable: snapshots (and the drops that wait for them) wait for the next run');
      return done;
    }
  }

  /** The oldest day due a snapshot, or null. */
  private async nextDueDay(now: Date): Promise<string | null> {
    const extent = await this.records.historyExtent();
    const yesterday = addDays(isoDay(now), -1);
    if (extent.first_day === null || extent.first_day > yesterday) return null;
    const day = await this.records.firstDayWithoutSnapshot(extent.first_day, yesterday);
    if (day === null) return null;
    const jobsReady = (await this.records.isRolledUp(day)) || (!(await this.records.hasJobPartition(day)) && isJobDayClosed(day, now, this.d.jobDeadlineMs));
    const ledgerReady = extent.first_ledger_day === null || extent.first_ledger_day > day || (extent.last_ledger_day !== null && extent.last_ledger_day >= day);
    return jobsReady && ledgerReady ? day : null;
  }

  /** Snapshots one closed day. */
  createDay(day: string, onProgress?: (p: SnapshotProgress) => void): Promise<SnapshotRow> {
    const startMs = dayStart(day).getTime();
    const lenMs = this.d.rcpClock.epochSeconds * 1000;
    // The epochs that closed during the day: their end falls in (start, end].
    const epochs = { first: Math.floor(startMs / lenMs), last: Math.floor(dayStart(addDays(day, 1)).getTime() / lenMs) - 1 };
    return this.create('day', day, DAY_PARTS, epochs, onProgress);
  }

  /** Snapshots the network's state now (on demand: before an upgrade). */
  createState(onProgress?: (p: SnapshotProgress) => void): Promise<SnapshotRow> {
    return this.create('state', null, STATE_SNAPSHOT_PARTS, null, onProgress);
  }

  /**
   * Takes one snapshot on a single connection (a pool of two, one of them holding the history lock, is
   * enough): the snapshot lock first, so that the REPEATABLE READ snapshot taken after it sees the latest
   * snapshot row; the parts read; the CAR stored; the row recorded; the lock released.
   */
  private async create(kind: SnapshotKind, day: string | null, specs: readonly PartSpec[], epochRange: { first: number; last: number } | null, onProgress?: (p: SnapshotProgress) => void): Promise<SnapshotRow> {
    const key = this.d.networkKey;
    if (!key) throw new Error('NETWORK_SIGNING_KEY is not set: snapshots are signed by the network key');
    const dir = await mkdtemp(path.join(tmpdir(), 'resultity-snapshot-'));
    try {
      return await withExportSession(this.d.db, SNAPSHOT_LOCK, async (session) => {
        const carPath = path.join(dir, `${randomUUID()}.car`);
        const { manifest, root, bytes, previous } = await session.read(async (tx, share) => {
          const latest = await latestSnapshot(tx);
          if (kind === 'day' && (await findSnapshot(tx, day!))) throw new Error(`${day} already has a snapshot`);
          return { ...(await this.writeCar(tx, share, carPath, kind, day, specs, epochRange, latest, key, onProgress)), previous: latest };
        });
        onProgress?.({ phase: 'store', rows: 0 });
        await this.d.store.put(carPath, root);
        const row = {
          cid: root,
          seq: (previous?.seq ?? 0) + 1,
          previous_cid: previous?.cid ?? null,
          kind,
          day,
          bytes,
          part_rows: Object.fromEntries(manifest.parts.map((p) => [p.name, p.rows])),
          store: this.d.store.name,
        };
        return session.write(async (q) => {
          await insertSnapshot(q, row);
          await insertSealedEpochs(q, manifest.epochs.map((e) => ({ ...e, snapshot_cid: root })));
          this.d.logger.info({ cid: root, kind, day, bytes, store: this.d.store.name }, 'snapshot stored');
          return (await findSnapshot(q, root))!;
        });
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Reads the parts in one snapshot of the database and writes the CAR; the manifest goes in last. */
  private async writeCar(
    tx: ExportReader,
    share: () => Promise<SharedReader | null>,
    carPath: string,
    kind: SnapshotKind,
    day: string | null,
    specs: readonly PartSpec[],
    epochRange: { first: number; last: number } | null,
    previous: SnapshotRow | null,
    key: string,
    onProgress?: (p: SnapshotProgress) => void,
  ): Promise<{ manifest: Manifest; root: string; bytes: number }> {
    const car = CarFileWriter.create(carPath);
    const epochs = epochRange ? await this.sealEpochs(tx, epochRange) : [];
    const params = { day, epochs: epochs.map((e) => e.epoch) };
    const parts = await this.copyParts(tx, share, car, specs, params, onProgress);
    const unsigned: UnsignedManifest = {
      format: SNAPSHOT_FORMAT,
      kind,
      day,
      created_at: new Date().toISOString(),
      schema_version: await schemaVersion(tx),
      previous: previous?.cid ?? null,
      parts,
      ledger: day === null ? null : await ledgerDayLink(tx, day),
      epochs,
      signer: addressOf(key),
    };
    const manifest = signManifest(key, unsigned);
    const root = encodeBlock(manifest);
    const bytes = await car.finish(root);
    return { manifest, root: root.cid.toString(), bytes };
  }

  /**
   * Copies the parts out into the CAR, on two connections when the pool has room for a second one: a
   * part's COPY is PostgreSQL's work (each value printed as text, most of an export's time), and one
   * backend runs on one core. The second connection shares this transaction's snapshot, so that both
   * read the same state of the database. Parts are taken largest first (BULK_PARTS: a day's raw job rows
   * and its ledger rows are nearly all of its bytes, and a small part left for last keeps both connections
   * busy to the end), each by whichever connection is free; their blocks interleave in the CAR (block
   * order in a CAR means nothing), and the manifest lists the parts in spec order.
   */
  private async copyParts(tx: ExportReader, share: () => Promise<SharedReader | null>, car: CarFileWriter, specs: readonly PartSpec[], params: PartParams, onProgress?: (p: SnapshotProgress) => void): Promise<PartEntry[]> {
    const rank = (name: string) => (BULK_PARTS.includes(name) ? BULK_PARTS.indexOf(name) : BULK_PARTS.length);
    const queue = [...specs.entries()].reverse().sort(([, a], [, b]) => rank(a.name) - rank(b.name));
    const parts: PartEntry[] = [];
    let failed = false;
    const lane = async (reader: ExportReader) => {
      for (let next = queue.shift(); next && !failed; next = queue.shift()) {
        const [i, spec] = next;
        let rows = 0;
        try {
          const columns = await reader.columns(spec.table, spec.omit);
          const { source, settings } = copySource(spec, params);
          parts[i] = await car.writePart(spec.name, spec.table, columns, await reader.copyOut(source, columns, settings, CHUNK_MAX_BYTES), (n) => onProgress?.({ phase: spec.name, rows: (rows += n) }));
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    };
    const helper = await share();
    let error: Error | null = null;
    try {
      // Both lanes run to their end (a failed one stops the other taking parts) before the connections go back.
      const results = await Promise.allSettled([lane(tx), ...(helper ? [lane(helper)] : [])]);
      const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (rejected) error = rejected.reason instanceof Error ? rejected.reason : new Error(String(rejected.reason));
    } finally {
      await helper?.end(error !== null);
    }
    if (error) throw error;
    return parts;
  }

  /** The Merkle seals of the epochs in the range that have records and are not sealed yet. */
  private async sealEpochs(tx: Queryable, range: { first: number; last: number }): Promise<EpochSeal[]> {
    if (range.last < range.first) return [];
    const epochs = await unsealedEpochsWithRecords(tx, range.first, range.last);
    const points = await epochPoints(tx, epochs);
    return epochs.map((epoch) => {
      const t = epochTree(points.filter((p) => p.epoch === epoch));
      return { epoch, merkle_root: t.root, nodes: t.nodes, points: t.points };
    });
  }

  /**
   * The offload gate: true only when the day's snapshot is in the store, read back by its CID, verified
   * (blocks, manifest, signature by the network key, parts, ledger, epochs), and holds every raw job row
   * the day's partition still has. Otherwise false, and the log says why the drop waits.
   */
  async readyToDrop(day: string): Promise<boolean> {
    const snap = await this.records.find(day);
    if (!snap) {
      this.d.logger.warn({ day }, 'raw job partitions wait: the day has no snapshot yet');
      return false;
    }
    const raw = await this.records.countJobsOnDay(day);
    if ((snap.part_rows['jobs'] ?? -1) !== raw) {
      this.d.logger.error({ day, cid: snap.cid, in_snapshot: snap.part_rows['jobs'], in_partition: raw }, 'raw job partitions kept: the day\'s snapshot does not hold every raw job row');
      return false;
    }
    let report: VerifyReport;
    try {
      report = verifySnapshot(await this.fetch(snap.cid), this.networkAddress ? { networkAddress: this.networkAddress } : {});
    } catch (err) {
      this.d.logger.warn({ day, cid: snap.cid, store: this.d.store.name, err: (err as Error).message }, 'raw job partitions wait: the snapshot could not be read back from the store');
      return false;
    }
    const failed = report.problems.length > 0 || report.cid !== snap.cid;
    if (failed) {
      this.d.logger.error({ day, cid: snap.cid, problems: report.problems }, 'raw job partitions kept: the stored snapshot does not verify');
      return false;
    }
    await this.records.markVerified(snap.cid);
    return true;
  }

  /** Reads a stored snapshot by CID, every block checked against its CID. */
  async fetch(cid: string): Promise<CarContents> {
    return readCar(await this.d.store.get(cid));
  }

  /** A stored snapshot's CAR as the store gives it. */
  open(cid: string): Promise<AsyncIterable<Uint8Array>> {
    return this.d.store.get(cid);
  }

  list(limit: number): Promise<SnapshotRow[]> {
    return this.records.list(limit);
  }

  latest(): Promise<SnapshotRow | null> {
    return this.records.latest();
  }

  find(ref: string): Promise<SnapshotRow | null> {
    return this.records.find(ref);
  }

  /** A stored snapshot's manifest. */
  async manifest(cid: string): Promise<Manifest> {
    return rootManifest(await this.fetch(cid)).manifest;
  }

  /**
   * Verifies a stored snapshot with the previous one fetched for the chain link; `againstDb` also
   * compares its day parts with the live database (same rows, same hash).
   */
  async verifyStored(cid: string, opts: { againstDb?: boolean } = {}): Promise<VerifyReport & { against_db?: { ok: boolean; problems: string[] } }> {
    const car = await this.fetch(cid);
    const { manifest } = rootManifest(car);
    let previous: { cid: string; manifest: Manifest } | undefined;
    if (manifest.previous) {
      const pcid = manifest.previous;
      previous = await this.manifest(pcid).then((m) => ({ cid: pcid, manifest: m }), (err: unknown) => {
        if (err instanceof SnapshotNotFoundError) return undefined;
        throw err;
      });
    }
    const report = verifySnapshot(car, { ...(this.networkAddress ? { networkAddress: this.networkAddress } : {}), ...(previous ? { previous } : {}) });
    if (!opts.againstDb) return report;
    const against = await this.compareWithDb(manifest);
    return { ...report, ok: report.ok && against.ok, against_db: against };
  }

  /**
   * Copies the snapshot's day parts out of the live database again and compares their bytes' sha256 (the
   * COPY text is the part's encoding, so nothing is parsed). Format-2 snapshots had the raw job rows by
   * time: they are copied out in that order. Format-1 snapshots hold DAG-CBOR rows, which this version no
   * longer writes: they are not compared, and the report says so.
   */
  private async compareWithDb(m: Manifest): Promise<{ ok: boolean; problems: string[] }> {
    if (m.kind !== 'day' || m.day === null) return { ok: true, problems: [] };
    if (m.format !== SNAPSHOT_FORMAT && m.format !== SNAPSHOT_FORMAT_2) {
      return { ok: false, problems: [`against-db: snapshot format ${m.format} cannot be compared with the live database by this version (it compares ${SNAPSHOT_FORMAT_2} and ${SNAPSHOT_FORMAT})`] };
    }
    const day = m.day;
    const problems = await readSnapshotOnce(this.d.db, async (tx) => {
      const found: string[] = [];
      const rawThere = await hasJobPartition(tx, day);
      for (const part of m.parts) {
        const spec = DAY_PARTS.find((s) => s.name === part.name);
        // The state changes after its day (new accounts, keys): only the day's own history must match.
        if (!spec || spec.restore === 'merge' || (spec.restore === 'archive' && !rawThere)) continue;
        const hash = createHash('sha256');
        let rows = 0;
        const { source, settings } = copySource(spec, { day, epochs: m.epochs.map((e) => e.epoch) }, m.format === SNAPSHOT_FORMAT_2 ? FORMAT_2_ORDER[spec.name] : undefined);
        for await (const piece of await tx.copyOut(source, part.columns, settings, CHUNK_MAX_BYTES)) {
          hash.update(piece);
          rows += countRows(piece);
        }
        const sha256 = hash.digest('hex');
        if (sha256 !== part.sha256) found.push(`part ${part.name}: the live database has ${rows} rows hashing to ${sha256}, the snapshot ${part.rows} hashing to ${part.sha256}`);
      }
      return found;
    });
    return { ok: problems.length === 0, problems };
  }

  /**
   * The node's proofs in the sealed epochs (newest first, `limit` at most, or the epochs named): each
   * rebuilt from the epoch's records and checked against the root sealed in its snapshot.
   */
  async epochProofs(nodeId: string, epochs: readonly number[] | null, limit = 30): Promise<Array<EpochProof & { epoch: number; snapshot_cid: string }>> {
    const sealed = await this.records.sealedEpochs(epochs, limit);
    const points = await this.records.epochPoints(sealed.map((s) => s.epoch));
    const proofs: Array<EpochProof & { epoch: number; snapshot_cid: string }> = [];
    for (const s of sealed) {
      const t = epochTree(points.filter((p) => p.epoch === s.epoch));
      if (t.root !== s.merkle_root) throw new Error(`epoch ${s.epoch}: its records no longer give the sealed root ${s.merkle_root}`);
      const proof = proofFor(t, nodeId);
      if (proof) proofs.push({ epoch: s.epoch, snapshot_cid: s.snapshot_cid, ...proof });
    }
    return proofs;
  }
}

/** A file path that exists, or null (the CLI takes a file or a CID). */
export async function existingFile(p: string): Promise<string | null> {
  return stat(p).then((s) => (s.isFile() ? p : null), () => null);
}
