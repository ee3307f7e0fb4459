// Job payloads in MongoDB, for reads after the fact (GET /v1/jobs/{id}, quarantine resubmission, blind-job
// verdicts): never read on a job's way through the backbone. The input travels with the job itself (its
// ticket, domain/job-ticket.ts) and the output with its completion event.
//
// Writes are inserts only, grouped: concurrent writes of one kind share one insertMany
// (common/group-commit.ts; batches form under load, none waits when idle). Nothing is ever updated in
// place, because on FerretDB v1 a filter on `_id` is a scan of the collection, whose cost grows with
// what is stored; an insert costs the same however much is stored.
//   job_payloads  { _id: jobId, namespaceId, model, input, createdAt, expireAt }    the input, written
//                 behind the accept
//   job_results   { _id: "<jobId>#<attempt>", jobId, attempt, output, usage, ... } written beside the
//                 settlement: the job is reported completed once it is written (io/results.service.ts);
//                 it carries the job's input too (`input`, `inputCreatedAt`) when that was still held back
//   job_trace     { jobId, attempt, nodeId, at, outcome, reason, expireAt }        routing hops (failures)
// The input is held back for INPUT_HOLD_MS after the accept: a job that finishes on this instance within
// that time (most synchronous ones) has its input travel in its result's insert, so it costs MongoDB one
// insert, not two; the others' inputs are written together when the time is up. A crash before then
// loses the stored copy of the input only (the job still runs from its ticket); `find` then answers with
// the output alone.
//
// Where they live: one collection per kind, retention class and day of the job's creation
// (mongo/payload-buckets.ts), so that a read by job id visits one day's buckets and expiry drops whole
// collections (sweepExpired) instead of deleting documents one by one. Each document still carries
// `expireAt` (the job's creation plus its class's retention) and every read filters on it, so an expired
// document is never returned, whether or not its bucket was dropped yet. On MongoDB each bucket also has a
// TTL index on `expireAt`; on FerretDB v1 (no TTL indexes: createIndexes answers code 238) the drop is all
// there is, which ensureIndexes detects (buildInfo) and logs once.
//
// Collections from before the buckets (`job_payloads`, `job_results`, `job_trace` themselves) are read and
// swept the old way while they exist, and dropped once empty.
import type { Collection, Db, Document, MongoBulkWriteError, OptionalUnlessRequiredId, WriteError } from 'mongodb';
import type { Logger } from 'pino';
import type { JobOutput, JobRequest, Usage } from '../domain/protocol.js';
import { GroupCommit, type ItemOutcome } from '../common/group-commit.js';
import { fromStored, jsonBytes, toStored, type StoredOutput } from './payload-codec.js';
import { reveal, revealInBatches, sealedWrite, type PayloadCipher, type Sealed } from './payload-cipher.js';
import { PinnedPayloads, type PinnedDoc } from './pinned-payloads.js';
import { bucketExpiresAtMs, bucketName, bucketsOfJob, expiryOf, jobCreatedMs, parseBucketName, PAYLOAD_KINDS, type PayloadKind } from './payload-buckets.js';

export interface RoutingHop {
  attempt: number;
  nodeId: string;
  at: Date;
  outcome: string;
  reason?: string;
}

/** A job's payload as reads after the fact see it. */
export interface PayloadDoc {
  _id: string; // the job id
  namespaceId: string;
  model: string;
  /** Absent when its write-behind batch was lost (a crash right after accept). */
  input?: JobRequest;
  /** Results by attempt number: the job row's `attempt` says which one is the job's output. */
  results?: Record<string, { output: JobOutput; usage: Usage }>;
  trace: RoutingHop[];
  createdAt: Date;
  expireAt: Date;
}

interface InputDoc {
  _id: string;
  /** Bytes of the input as JSON: what extended retention meters (storedBytes). */
  bytes: number;
  namespaceId: string;
  model: string;
  /** In clear only without a cipher (and in documents from before encryption); else inside `sealed`. */
  input?: JobRequest;
  sealed?: Sealed;
  createdAt: Date;
  expireAt: Date;
}

/** How long an input is held back, waiting to ride in its job's result document (see the head of this file). */
export const INPUT_HOLD_MS = 1_000;

/** An attempt's result as saveResult takes it. */
export interface ResultToSave {
  jobId: string;
  namespaceId: string;
  model: string;
  attempt: number;
  output: JobOutput;
  usage: Usage;
  nodeId: string;
  /** The job's retention class (whole hours): names its bucket, and its documents' expireAt. */
  retentionHours: number;
}

/** As stored: keyed by job and attempt, with when it was written, and the job's input when it came along. */
interface ResultDoc extends Omit<ResultToSave, 'output' | 'retentionHours'> {
  /** In clear only without a cipher (and in documents from before encryption); else inside `sealed` with the input. */
  output?: StoredOutput;
  sealed?: Sealed;
  /** Whether the job's input rode along (in clear or sealed). */
  hasInput?: boolean;
  _id: string;
  /** Bytes of the output (and of the input riding along) as JSON: what extended retention meters. */
  bytes: number;
  expireAt: Date;
  at: Date;
  input?: JobRequest;
  inputCreatedAt?: Date;
}

/** An input held back: the document, and the caller of insertInput waiting to hear it was written. */
interface HeldInput {
  bucket: string;
  doc: InputDoc & { input: JobRequest };
  written: (outcome: Promise<void>) => void;
}

interface TraceDoc extends RoutingHop {
  jobId: string;
  expireAt: Date;
}


const DUPLICATE_KEY = 11000;
/** Batches in flight per kind, and the largest batch. */
const BATCHING = { maxItems: 256, maxInFlight: 2, lingerMs: 0 };

/** The collections of the layout before buckets: read and swept while they exist. */
export const PAYLOAD_COLLECTIONS = { inputs: 'job_payloads', results: 'job_results', trace: 'job_trace' } as const;

/** A document on its way to a bucket. */
interface BucketWrite<T> {
  bucket: string;
  doc: T;
}

/** One result as an export reads it (no node identity: consumers never learn which node served them). */
export interface ExportedResult {
  jobId: string;
  attempt: number;
  model: string;
  output: JobOutput;
  usage: Usage;
  at: Date;
  input?: JobRequest;
}

/** What one expiry pass removed. */
export interface SweepOutcome {
  /** Buckets dropped whole. */
  buckets: number;
  /** Documents deleted one by one (collections of the layout before buckets only). */
  documents: number;
}

export class PayloadsRepository {
  private readonly inputWrites: GroupCommit<BucketWrite<InputDoc>, void>;
  private readonly resultWrites: GroupCommit<BucketWrite<ResultDoc>, void>;
  private readonly traceWrites: GroupCommit<BucketWrite<TraceDoc>, void>;
  /** Inputs held back (INPUT_HOLD_MS), by job id, and the timer that writes them. */
  private readonly heldInputs = new Map<string, HeldInput>();
  private holdTimer: NodeJS.Timeout | null = null;
  /** Buckets this process has made ready (indexes asked for), so that only a bucket's first write waits. */
  private readonly readyBuckets = new Map<string, Promise<void>>();
  /** True on a server with TTL indexes (MongoDB), false on FerretDB v1, decided by ensureIndexes. */
  ttlIndex = false;

  /** Jobs their owner pinned past their plan (a namespace's own collection, never dropped by expiry). */
  readonly pinned: PinnedPayloads;

  /** `cipher`: seals every document's content (payloads at rest, issue 10); without one it is stored in clear. */
  constructor(
    private readonly db: Db,
    private readonly cipher: PayloadCipher | null = null,
  ) {
    this.pinned = new PinnedPayloads(db);
    this.inputWrites = new GroupCommit((w) => this.insertGrouped('job_payloads', w), BATCHING);
    this.resultWrites = new GroupCommit((w) => this.insertGrouped('job_results', w), BATCHING);
    this.traceWrites = new GroupCommit((w) => this.insertGrouped('job_trace', w), BATCHING);
  }

  /**
   * Asks the server what it is: MongoDB gets a TTL index in each bucket; FerretDB v1 has none, and expiry
   * there is the sweeper's bucket drops alone (said once, here).
   */
  async ensureIndexes(logger: Logger): Promise<void> {
    const build = await this.db.admin().command({ buildInfo: 1 });
    this.ttlIndex = !('ferretdbVersion' in build || 'ferretdb' in build);
    if (!this.ttlIndex) logger.warn('MongoDB server is FerretDB (no TTL indexes): expired payloads go when the sweeper drops their day\'s collections');
  }

  /**
   * Stores a job's input: held back up to INPUT_HOLD_MS to ride in the job's result document, else written
   * with the others held meanwhile. Resolves once it is written, either way.
   */
  insertInput(doc: { jobId: string; namespaceId: string; model: string; input: JobRequest; retentionHours: number }): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const now = Date.now();
      const held: HeldInput = {
        bucket: bucketName('job_payloads', doc.retentionHours, jobCreatedMs(doc.jobId, now)),
        doc: { _id: doc.jobId, bytes: jsonBytes(doc.input), namespaceId: doc.namespaceId, model: doc.model, input: doc.input, createdAt: new Date(now), expireAt: expiryOf(doc.jobId, doc.retentionHours, now) },
        written: (outcome) => void outcome.then(resolve, reject),
      };
      this.heldInputs.set(doc.jobId, held);
      this.holdTimer ??= setTimeout(() => this.writeHeldInputs(), INPUT_HOLD_MS);
    });
  }

  /** Writes a job's input now if it is held back (its publish failed: the outbox will need it). */
  writeInputNow(jobId: string): void {
    const held = this.heldInputs.get(jobId);
    if (!held) return;
    this.heldInputs.delete(jobId);
    held.written(this.writeInput(held));
  }

  /** Writes every input held back now, in one grouped insert (the hold's timer, shutdown). */
  writeHeldInputs(): void {
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = null;
    const held = [...this.heldInputs.values()];
    this.heldInputs.clear();
    for (const h of held) h.written(this.writeInput(h));
  }

  /** An input's own document, sealed (with a cipher), in the grouped insert. */
  private writeInput(h: HeldInput): Promise<void> {
    const { input, ...rest } = h.doc;
    return sealedWrite<InputDoc>(this.cipher, { namespaceId: rest.namespaceId, jobId: rest._id }, rest, { input }, (doc) => this.inputWrites.submit({ bucket: h.bucket, doc }));
  }

  /**
   * Stores an attempt's result (grouped with concurrent ones), with its job's input when that is still held
   * back here; resolves once it is written. Keyed by job and attempt: a replay writes nothing new, and a
   * superseded attempt never overwrites the winner's.
   */
  async saveResult(r: ResultToSave): Promise<void> {
    const held = this.heldInputs.get(r.jobId);
    this.heldInputs.delete(r.jobId);
    const now = Date.now();
    const { retentionHours, output: given, ...fields } = r;
    const output = toStored(given);
    const base = { _id: `${r.jobId}#${r.attempt}`, ...fields, bytes: jsonBytes(r.output) + (held ? held.doc.bytes : 0), expireAt: expiryOf(r.jobId, retentionHours, now), at: new Date(now), hasInput: held !== undefined, ...(held ? { inputCreatedAt: held.doc.createdAt } : {}) };
    const bucket = bucketName('job_results', retentionHours, jobCreatedMs(r.jobId, now));
    const content = { output, ...(held ? { input: held.doc.input } : {}) };
    const written = sealedWrite<ResultDoc>(this.cipher, r, base, content, (doc) => this.resultWrites.submit({ bucket, doc }));
    // Should the result's write fail, its input is written alone.
    held?.written(written.catch(() => this.writeInput(held)));
    await written;
  }

  /** Records a routing hop (grouped), kept as long as the job's class keeps its payloads; resolves once written. */
  async appendTrace(jobId: string, hop: RoutingHop, retentionHours: number): Promise<void> {
    const now = Date.now();
    await this.traceWrites.submit({ bucket: bucketName('job_trace', retentionHours, jobCreatedMs(jobId, now)), doc: { jobId, ...hop, expireAt: expiryOf(jobId, retentionHours, now) } });
  }

  /** Writes what is held back and resolves once every write submitted so far is done (shutdown). */
  async drained(): Promise<void> {
    this.writeHeldInputs();
    await Promise.all([this.inputWrites.drained(), this.resultWrites.drained(), this.traceWrites.drained()]);
  }

  /**
   * The unexpired payload of a job in a namespace; null when absent, expired or another namespace's.
   * Reads after the fact only: one listCollections, then the job's day's buckets of each kind (on
   * FerretDB each read scans the bucket it names: one day of one class, never the store).
   */
  async find(jobId: string, namespaceId: string, now = new Date()): Promise<PayloadDoc | null> {
    const names = await this.collectionNames();
    const [storedInputs, storedResults, hops, pinned] = await Promise.all([
      this.findIn<InputDoc>(names, 'job_payloads', jobId, { _id: jobId, namespaceId, expireAt: { $gt: now } }),
      this.findIn<ResultDoc>(names, 'job_results', jobId, { jobId, namespaceId, expireAt: { $gt: now } }),
      this.findIn<TraceDoc>(names, 'job_trace', jobId, { jobId, expireAt: { $gt: now } }),
      this.pinned.has(names, namespaceId) ? this.pinned.docsOf(namespaceId, jobId) : Promise.resolve([]),
    ]);
    // A pinned copy stands in for a document its plan has let go (or whose day was dropped).
    const inputs = storedInputs.length > 0 ? storedInputs : pinned.filter((p) => p.from === 'job_payloads').map((p) => p.doc as unknown as InputDoc);
    const own = new Set(storedResults.map((r) => r._id));
    const results = [...storedResults, ...pinned.filter((p) => p.from === 'job_results' && !own.has(String(p.doc._id))).map((p) => p.doc as unknown as ResultDoc)];
    const [input] = await reveal(this.cipher, inputs.slice(0, 1));
    const opened = await reveal(this.cipher, results);
    if (!input && opened.length === 0) return null;
    const first = opened[0];
    const carried = opened.find((r) => r.input !== undefined);
    const storedInput = input?.input ?? carried?.input;
    return {
      _id: jobId,
      namespaceId,
      model: input?.model ?? first!.model,
      ...(storedInput ? { input: storedInput } : {}),
      results: Object.fromEntries(opened.filter((r) => r.output).map((r) => [String(r.attempt), { output: fromStored(r.output!), usage: r.usage }])),
      trace: [
        ...hops.map(({ attempt, nodeId, at, outcome, reason }) => ({ attempt, nodeId, at, outcome, ...(reason === undefined ? {} : { reason }) })),
        ...opened.map((r) => ({ attempt: r.attempt, nodeId: r.nodeId, at: r.at, outcome: 'completed' })),
      ].sort((a, b) => a.at.getTime() - b.at.getTime()),
      createdAt: input?.createdAt ?? carried?.inputCreatedAt ?? first!.at,
      expireAt: input?.expireAt ?? first!.expireAt,
    };
  }

  /**
   * The unexpired input of a job (outbox republish, quarantine resubmission; no namespace filter: trusted
   * callers): still held here, in its own document, or carried by its result's.
   */
  async findInput(jobId: string, now = new Date()): Promise<JobRequest | null> {
    const held = this.heldInputs.get(jobId);
    if (held) return held.doc.input;
    const names = await this.collectionNames();
    const [doc] = await reveal(this.cipher, await this.findIn<InputDoc>(names, 'job_payloads', jobId, { _id: jobId, expireAt: { $gt: now } }));
    if (doc?.input) return doc.input;
    const results = await this.findIn<ResultDoc>(names, 'job_results', jobId, { jobId, expireAt: { $gt: now } });
    const carried = await reveal(this.cipher, results.filter((r) => r.hasInput || r.input !== undefined));
    return carried.find((r) => r.input !== undefined)?.input ?? null;
  }

  /**
   * A job's unexpired documents as stored (sealed), for a pin to copy; none for another namespace's job.
   * The job's input and results only: routing hops carry node identities and are not kept past the plan.
   */
  async storedDocsOf(jobId: string, namespaceId: string, now = new Date()): Promise<Array<{ from: PayloadKind; doc: Document & { _id: string; bytes?: number } }>> {
    const names = await this.collectionNames();
    const [inputs, results] = await Promise.all([
      this.findIn<InputDoc>(names, 'job_payloads', jobId, { _id: jobId, namespaceId, expireAt: { $gt: now } }),
      this.findIn<ResultDoc>(names, 'job_results', jobId, { jobId, namespaceId, expireAt: { $gt: now } }),
    ]);
    return [...inputs.map((doc) => ({ from: 'job_payloads' as const, doc })), ...results.map((doc) => ({ from: 'job_results' as const, doc }))];
  }

  /**
   * One expiry pass: drops every bucket whose documents have all expired (one command each: the cost is
   * bounded by what expires, not by what is stored), and deletes expired documents of the collections
   * from before the buckets, dropping those once empty.
   */
  async sweepExpired(now = new Date()): Promise<SweepOutcome> {
    const outcome: SweepOutcome = { buckets: 0, documents: 0 };
    for (const name of await this.collectionNames()) {
      const b = parseBucketName(name);
      if (b && bucketExpiresAtMs(b) <= now.getTime()) {
        // Dropped by another instance meanwhile: the same outcome.
        if (await this.db.collection(name).drop().catch(() => false)) outcome.buckets++;
        this.readyBuckets.delete(name);
      } else if (!b && (PAYLOAD_KINDS as readonly string[]).includes(name)) {
        const col = this.db.collection<{ expireAt: Date }>(name);
        outcome.documents += (await col.deleteMany({ expireAt: { $lte: now } })).deletedCount;
        if ((await col.countDocuments({}, { limit: 1 })) === 0) await col.drop().catch(() => false);
      }
    }
    return outcome;
  }

  /**
   * A namespace's unexpired results, oldest day first, as a cursor per bucket read in batches of
   * `batchSize`: memory stays that of one batch however many jobs the namespace has (export). Each
   * result carries its job's input when that rode along; inputs written on their own are not joined here.
   */
  async *streamResults(namespaceId: string, opts: { since?: Date; until?: Date; batchSize?: number } = {}, now = new Date()): AsyncGenerator<ExportedResult> {
    const buckets = (await this.collectionNames())
      .map((name) => ({ name, b: parseBucketName(name) }))
      .filter((x): x is { name: string; b: NonNullable<ReturnType<typeof parseBucketName>> } => x.b !== null && x.b.kind === 'job_results' && bucketExpiresAtMs(x.b) > now.getTime())
      .filter((x) => (opts.since ? x.b.dayStartMs + 86_400_000 > opts.since.getTime() : true) && (opts.until ? x.b.dayStartMs < opts.until.getTime() : true))
      .sort((a, b) => a.b.dayStartMs - b.b.dayStartMs);
    const batchSize = opts.batchSize ?? 500;
    for (const { name } of buckets) {
      const cursor = this.db
        .collection<ResultDoc>(name)
        .find({ namespaceId, expireAt: { $gt: now } }, { batchSize, projection: { jobId: 1, namespaceId: 1, attempt: 1, model: 1, output: 1, usage: 1, at: 1, input: 1, sealed: 1 } });
      try {
        yield* exported(revealInBatches(this.cipher, cursor, batchSize));
      } finally {
        await cursor.close();
      }
    }
    // Pinned results whose own bucket's copy has expired (the others were exported above).
    if (this.pinned.has(await this.collectionNames(), namespaceId)) {
      const cursor = this.pinned.expiredResults(namespaceId, now, opts, batchSize);
      try {
        yield* exported(revealInBatches(this.cipher, originals(cursor), batchSize));
      } finally {
        await cursor.close();
      }
    }
  }

  /**
   * Bytes a namespace holds in classes longer than `aboveHours` (extended retention), unexpired, and in its
   * pinned jobs: what one day of metering bills. Reads only the buckets of those classes (the billed data), never the
   * standard ones; FerretDB's $group has $sum, which is all this needs.
   */
  async storedBytes(namespaceId: string, aboveHours: number, now = new Date()): Promise<number> {
    let total = 0;
    for (const name of await this.collectionNames()) {
      const b = parseBucketName(name);
      if (!b || b.retentionHours <= aboveHours || bucketExpiresAtMs(b) <= now.getTime()) continue;
      const [row] = await this.db
        .collection(name)
        .aggregate<{ bytes: number }>([{ $match: { namespaceId, expireAt: { $gt: now } } }, { $group: { _id: null, bytes: { $sum: '$bytes' } } }])
        .toArray();
      total += row?.bytes ?? 0;
    }
    return total + (this.pinned.has(await this.collectionNames(), namespaceId) ? await this.pinned.bytes(namespaceId) : 0);
  }

  /** Every collection's name (nameOnly: a catalogue read, whatever the collections hold). */
  private async collectionNames(): Promise<string[]> {
    const list = await this.db.listCollections({}, { nameOnly: true }).toArray();
    return list.map((c) => c.name);
  }

  /** Documents matching `filter` in the buckets of `kind` that may hold the job, and its pre-bucket collection. */
  private async findIn<T extends Document>(names: readonly string[], kind: PayloadKind, jobId: string, filter: Document): Promise<T[]> {
    const where = bucketsOfJob(names, kind, jobId);
    if (names.includes(kind)) where.push(kind);
    const found = await Promise.all(where.map((name) => this.db.collection(name).find(filter).toArray()));
    return found.flat() as unknown as T[];
  }

  /**
   * One insertMany per bucket the batch touches (one, nearly always: a day's jobs of one class), after the
   * bucket's indexes the first time this process writes to it.
   */
  private async insertGrouped<T extends Document>(kind: PayloadKind, writes: ReadonlyArray<BucketWrite<T>>): Promise<Array<ItemOutcome<void>>> {
    const byBucket = new Map<string, number[]>();
    writes.forEach((w, i) => {
      const at = byBucket.get(w.bucket);
      if (at) at.push(i);
      else byBucket.set(w.bucket, [i]);
    });
    const outcomes: Array<ItemOutcome<void>> = writes.map(() => ({ ok: true, value: undefined }));
    await Promise.all(
      [...byBucket].map(async ([bucket, idx]) => {
        try {
          await this.ready(kind, bucket);
          const own = await insertAll(this.db.collection<T>(bucket), idx.map((i) => writes[i]!.doc));
          own.forEach((o, k) => (outcomes[idx[k]!] = o));
        } catch (error) {
          for (const i of idx) outcomes[i] = { ok: false, error };
        }
      }),
    );
    return outcomes;
  }

  /** A bucket's indexes, asked for once per process (createIndex is a no-op when they exist). */
  private ready(kind: PayloadKind, bucket: string): Promise<void> {
    let ready = this.readyBuckets.get(bucket);
    if (!ready) {
      ready = this.createBucketIndexes(kind, bucket);
      ready.catch(() => this.readyBuckets.delete(bucket));
      this.readyBuckets.set(bucket, ready);
    }
    return ready;
  }

  private async createBucketIndexes(kind: PayloadKind, bucket: string): Promise<void> {
    const col = this.db.collection(bucket);
    if (kind === 'job_payloads') await col.createIndex({ namespaceId: 1, createdAt: -1 });
    else await col.createIndex({ jobId: 1 });
    if (this.ttlIndex) await col.createIndex({ expireAt: 1 }, { expireAfterSeconds: 0, name: 'expireAt_ttl' });
  }
}

/** Opened results as an export shows them (those with an output; no node identity). */
async function* exported(docs: AsyncIterable<ResultDoc>): AsyncGenerator<ExportedResult> {
  for await (const d of docs) {
    if (!d.output) continue;
    yield { jobId: d.jobId, attempt: d.attempt, model: d.model, output: fromStored(d.output), usage: d.usage, at: d.at, ...(d.input ? { input: d.input } : {}) };
  }
}

/** The original documents of pinned copies, as a cursor reads them. */
async function* originals(cursor: AsyncIterable<PinnedDoc>): AsyncGenerator<ResultDoc> {
  for await (const p of cursor) yield p.doc as unknown as ResultDoc;
}

/**
 * One insertMany for a batch, unordered: a document already there (a replayed write of the same key) is
 * that item's success, any other failure is that item's error.
 */
async function insertAll<T extends object>(col: Collection<T>, docs: readonly T[]): Promise<Array<ItemOutcome<void>>> {
  const outcomes: Array<ItemOutcome<void>> = docs.map(() => ({ ok: true, value: undefined }));
  try {
    // Every document here carries its own _id (or none, for trace hops): the driver's type says as much.
    await col.insertMany(docs as unknown as Array<OptionalUnlessRequiredId<T>>, { ordered: false });
  } catch (err) {
    const writeErrors = (err as Partial<MongoBulkWriteError>).writeErrors as WriteError | WriteError[] | undefined;
    if (!writeErrors) throw err;
    for (const e of Array.isArray(writeErrors) ? writeErrors : [writeErrors]) {
      if (e.code !== DUPLICATE_KEY) outcomes[e.index] = { ok: false, error: new Error(e.errmsg || `insert failed (code ${e.code})`) };
    }
  }
  return outcomes;
}
