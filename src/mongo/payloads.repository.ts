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
// Each document carries `expireAt`. A TTL index removes expired documents where the server has TTL indexes
// (MongoDB); FerretDB v1 answers createIndexes with code 238 (NotImplemented), so there the sweeper
// (sweepExpired, run by the maintenance role on every server) is what deletes them. Reads filter on
// `expireAt` in both cases, so an expired document is never returned, whether or not it was deleted yet.
import type { Collection, Db, MongoBulkWriteError, OptionalUnlessRequiredId, WriteError } from 'mongodb';
import type { Logger } from 'pino';
import type { JobOutput, JobRequest, Usage } from '../domain/protocol.js';
import { GroupCommit, type ItemOutcome } from '../common/group-commit.js';

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
  namespaceId: string;
  model: string;
  input: JobRequest;
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
  expireAt: Date;
}

/**
 * An output as stored. FerretDB v1 refuses arrays nested in arrays ("nested arrays are not supported"),
 * which an embedding job's vectors are: they are stored as `embeddingsF64`, each vector its float64
 * components little-endian in base64 (exact, and as compact as JSON numbers), on MongoDB as on FerretDB.
 */
type StoredOutput = Omit<JobOutput, 'embeddings'> & { embeddingsF64?: string[] };

function toStored(output: JobOutput): StoredOutput {
  const { embeddings, ...rest } = output;
  if (embeddings === undefined) return rest;
  return {
    ...rest,
    embeddingsF64: embeddings.map((v) => {
      const bytes = Buffer.alloc(v.length * 8);
      v.forEach((x, i) => bytes.writeDoubleLE(x, i * 8));
      return bytes.toString('base64');
    }),
  };
}

function fromStored(stored: StoredOutput): JobOutput {
  const { embeddingsF64, ...rest } = stored;
  if (embeddingsF64 === undefined) return rest;
  return {
    ...rest,
    embeddings: embeddingsF64.map((b64) => {
      const bytes = Buffer.from(b64, 'base64');
      return Array.from({ length: bytes.length / 8 }, (_, i) => bytes.readDoubleLE(i * 8));
    }),
  };
}

/** As stored: keyed by job and attempt, with when it was written, and the job's input when it came along. */
interface ResultDoc extends Omit<ResultToSave, 'output'> {
  output: StoredOutput;
  _id: string;
  at: Date;
  input?: JobRequest;
  inputCreatedAt?: Date;
}

/** An input held back: the document, and the caller of insertInput waiting to hear it was written. */
interface HeldInput {
  doc: InputDoc;
  written: (outcome: Promise<void>) => void;
}

interface TraceDoc extends RoutingHop {
  jobId: string;
  expireAt: Date;
}


const NOT_IMPLEMENTED = 238;
const DUPLICATE_KEY = 11000;
/** Batches in flight per kind, and the largest batch. */
const BATCHING = { maxItems: 256, maxInFlight: 2, lingerMs: 0 };

export const PAYLOAD_COLLECTIONS = { inputs: 'job_payloads', results: 'job_results', trace: 'job_trace' } as const;

export class PayloadsRepository {
  private readonly inputs: Collection<InputDoc>;
  private readonly results: Collection<ResultDoc>;
  private readonly trace: Collection<TraceDoc>;
  private readonly inputWrites: GroupCommit<InputDoc, void>;
  private readonly resultWrites: GroupCommit<ResultDoc, void>;
  private readonly traceWrites: GroupCommit<TraceDoc, void>;
  /** Inputs held back (INPUT_HOLD_MS), by job id, and the timer that writes them. */
  private readonly heldInputs = new Map<string, HeldInput>();
  private holdTimer: NodeJS.Timeout | null = null;
  /** False when the server refused the TTL index: expiry then relies on the sweeper alone. */
  ttlIndex = false;

  constructor(db: Db) {
    this.inputs = db.collection<InputDoc>(PAYLOAD_COLLECTIONS.inputs);
    this.results = db.collection<ResultDoc>(PAYLOAD_COLLECTIONS.results);
    this.trace = db.collection<TraceDoc>(PAYLOAD_COLLECTIONS.trace);
    this.inputWrites = new GroupCommit((docs) => insertAll(this.inputs, docs), BATCHING);
    this.resultWrites = new GroupCommit((docs) => insertAll(this.results, docs), BATCHING);
    this.traceWrites = new GroupCommit((docs) => insertAll(this.trace, docs), BATCHING);
  }

  async ensureIndexes(logger: Logger): Promise<void> {
    await this.inputs.createIndex({ namespaceId: 1, createdAt: -1 });
    await this.results.createIndex({ jobId: 1 });
    await this.trace.createIndex({ jobId: 1 });
    const ttl = await Promise.all([expiryIndex(this.inputs), expiryIndex(this.results), expiryIndex(this.trace)]);
    this.ttlIndex = ttl.every(Boolean);
    if (!this.ttlIndex) logger.warn('MongoDB server has no TTL indexes (FerretDB); expired payloads are deleted by the sweeper only');
  }

  /**
   * Stores a job's input: held back up to INPUT_HOLD_MS to ride in the job's result document, else written
   * with the others held meanwhile. Resolves once it is written, either way.
   */
  insertInput(doc: { jobId: string; namespaceId: string; model: string; input: JobRequest; expireAt: Date }): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const held: HeldInput = {
        doc: { _id: doc.jobId, namespaceId: doc.namespaceId, model: doc.model, input: doc.input, createdAt: new Date(), expireAt: doc.expireAt },
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
    held.written(this.inputWrites.submit(held.doc));
  }

  /** Writes every input held back now, in one grouped insert (the hold's timer, shutdown). */
  writeHeldInputs(): void {
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = null;
    const held = [...this.heldInputs.values()];
    this.heldInputs.clear();
    for (const h of held) h.written(this.inputWrites.submit(h.doc));
  }

  /**
   * Stores an attempt's result (grouped with concurrent ones), with its job's input when that is still held
   * back here; resolves once it is written. Keyed by job and attempt: a replay writes nothing new, and a
   * superseded attempt never overwrites the winner's.
   */
  async saveResult(r: ResultToSave): Promise<void> {
    const held = this.heldInputs.get(r.jobId);
    this.heldInputs.delete(r.jobId);
    const written = this.resultWrites.submit({ _id: `${r.jobId}#${r.attempt}`, ...r, output: toStored(r.output), at: new Date(), ...(held ? { input: held.doc.input, inputCreatedAt: held.doc.createdAt } : {}) });
    // Should the result's write fail, its input is written alone.
    held?.written(written.catch(() => this.inputWrites.submit(held.doc)));
    await written;
  }

  /** Records a routing hop (grouped); resolves once written. */
  async appendTrace(jobId: string, hop: RoutingHop, expireAt: Date): Promise<void> {
    await this.traceWrites.submit({ jobId, ...hop, expireAt });
  }

  /** Writes what is held back and resolves once every write submitted so far is done (shutdown). */
  async drained(): Promise<void> {
    this.writeHeldInputs();
    await Promise.all([this.inputWrites.drained(), this.resultWrites.drained(), this.traceWrites.drained()]);
  }

  /**
   * The unexpired payload of a job in a namespace; null when absent, expired or another namespace's.
   * Reads after the fact only (three reads; on FerretDB each is a scan of its collection).
   */
  async find(jobId: string, namespaceId: string, now = new Date()): Promise<PayloadDoc | null> {
    const [input, results, hops] = await Promise.all([
      this.inputs.findOne({ _id: jobId, namespaceId, expireAt: { $gt: now } }),
      this.results.find({ jobId, namespaceId, expireAt: { $gt: now } }).toArray(),
      this.trace.find({ jobId, expireAt: { $gt: now } }).toArray(),
    ]);
    if (!input && results.length === 0) return null;
    const first = results[0];
    const carried = results.find((r) => r.input !== undefined);
    const storedInput = input?.input ?? carried?.input;
    return {
      _id: jobId,
      namespaceId,
      model: input?.model ?? first!.model,
      ...(storedInput ? { input: storedInput } : {}),
      results: Object.fromEntries(results.map((r) => [String(r.attempt), { output: fromStored(r.output), usage: r.usage }])),
      trace: [
        ...hops.map(({ attempt, nodeId, at, outcome, reason }) => ({ attempt, nodeId, at, outcome, ...(reason === undefined ? {} : { reason }) })),
        ...results.map((r) => ({ attempt: r.attempt, nodeId: r.nodeId, at: r.at, outcome: 'completed' })),
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
    const doc = await this.inputs.findOne({ _id: jobId, expireAt: { $gt: now } }, { projection: { input: 1 } });
    if (doc) return doc.input;
    const carried = await this.results.findOne({ jobId, input: { $exists: true }, expireAt: { $gt: now } }, { projection: { input: 1 } });
    return carried?.input ?? null;
  }

  async sweepExpired(now = new Date()): Promise<number> {
    const expired = { expireAt: { $lte: now } };
    const counts = await Promise.all([this.inputs.deleteMany(expired), this.results.deleteMany(expired), this.trace.deleteMany(expired)]);
    return counts.reduce((n, r) => n + r.deletedCount, 0);
  }
}

/** The expiry index of a collection: a TTL index where the server has them (true), else a plain one (false). */
async function expiryIndex<T extends { expireAt: Date }>(col: Collection<T>): Promise<boolean> {
  try {
    await col.createIndex({ expireAt: 1 }, { expireAfterSeconds: 0, name: 'expireAt_ttl' });
    return true;
  } catch (err) {
    if ((err as { code?: number }).code !== NOT_IMPLEMENTED) throw err;
    // FerretDB v1: no TTL indexes. A plain index keeps the sweeper's range delete cheap.
    await col.createIndex({ expireAt: 1 }, { name: 'expireAt' });
    return false;
  }
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
