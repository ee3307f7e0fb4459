// Job payloads in MongoDB: the input at accept, the output and routing trace at completion. Each
// document carries `expireAt`. A TTL index removes expired documents where the server has TTL indexes
// (MongoDB); FerretDB v1 answers createIndexes with code 238 (NotImplemented), so there the sweeper
// (sweepExpired, run by the maintenance role on every server) is what deletes them. Reads filter on
// `expireAt` in both cases, so an expired document is never returned, whether or not it was deleted yet.
import type { Collection, Db } from 'mongodb';
import type { Logger } from 'pino';
import type { JobOutput, JobRequest, Usage } from '../domain/protocol.js';

export interface RoutingHop {
  attempt: number;
  nodeId: string;
  at: Date;
  outcome: string;
  reason?: string;
}

export interface PayloadDoc {
  _id: string; // the job id
  namespaceId: string;
  model: string;
  input: JobRequest;
  /** Results by attempt number: the job row's `attempt` says which one is the job's output. */
  results?: Record<string, { output: JobOutput; usage: Usage }>;
  trace: RoutingHop[];
  createdAt: Date;
  expireAt: Date;
}

const NOT_IMPLEMENTED = 238;

export class PayloadsRepository {
  private readonly col: Collection<PayloadDoc>;
  /** False when the server refused the TTL index: expiry then relies on the sweeper alone. */
  ttlIndex = false;

  constructor(db: Db) {
    this.col = db.collection<PayloadDoc>('job_payloads');
  }

  async ensureIndexes(logger: Logger): Promise<void> {
    await this.col.createIndex({ namespaceId: 1, createdAt: -1 });
    try {
      await this.col.createIndex({ expireAt: 1 }, { expireAfterSeconds: 0, name: 'expireAt_ttl' });
      this.ttlIndex = true;
    } catch (err) {
      if ((err as { code?: number }).code !== NOT_IMPLEMENTED) throw err;
      // FerretDB v1: no TTL indexes. A plain index keeps the sweeper's range delete cheap.
      await this.col.createIndex({ expireAt: 1 }, { name: 'expireAt' });
      logger.warn('MongoDB server has no TTL indexes (FerretDB); expired payloads are deleted by the sweeper only');
    }
  }

  async insertInput(doc: { jobId: string; namespaceId: string; model: string; input: JobRequest; expireAt: Date }): Promise<void> {
    await this.col.insertOne({
      _id: doc.jobId,
      namespaceId: doc.namespaceId,
      model: doc.model,
      input: doc.input,
      trace: [],
      createdAt: new Date(),
      expireAt: doc.expireAt,
    });
  }

  /** Stores an attempt's result and its routing hop in one write. A replay rewrites the same output. */
  async saveResult(jobId: string, attempt: number, output: JobOutput, usage: Usage, hop: RoutingHop): Promise<void> {
    await this.col.updateOne({ _id: jobId }, { $set: { [`results.${attempt}`]: { output, usage } }, $push: { trace: hop } });
  }

  async appendTrace(jobId: string, hop: RoutingHop): Promise<void> {
    await this.col.updateOne({ _id: jobId }, { $push: { trace: hop } });
  }

  /** The unexpired payload of a job in a namespace; null when absent, expired or another namespace's. */
  async find(jobId: string, namespaceId: string, now = new Date()): Promise<PayloadDoc | null> {
    return this.col.findOne({ _id: jobId, namespaceId, expireAt: { $gt: now } });
  }

  /** The unexpired input of a job, for dispatch (no namespace filter: the scheduler is trusted). */
  async findInput(jobId: string, now = new Date()): Promise<JobRequest | null> {
    const doc = await this.col.findOne({ _id: jobId, expireAt: { $gt: now } }, { projection: { input: 1 } });
    return doc?.input ?? null;
  }

  async delete(jobId: string): Promise<void> {
    await this.col.deleteOne({ _id: jobId });
  }

  async sweepExpired(now = new Date()): Promise<number> {
    const r = await this.col.deleteMany({ expireAt: { $lte: now } });
    return r.deletedCount;
  }
}
