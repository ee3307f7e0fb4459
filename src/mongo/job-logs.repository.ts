// Job logs in MongoDB (domain/job-log.ts): each job's events, written behind in batches (one insertMany
// per bucket per flush, common/buffered-writer.ts), never on a request's path, and dropped with a metric
// rather than blocking when MongoDB is slow or down. Read after the fact only (GET /v1/jobs/{id}/events,
// the admin API): by job id, visiting the buckets of the job's day alone.
//
// Layout (mongo/day-buckets.ts): `job_log.r<H>h.<YYYYMMDD>`, by the UTC day of the job's creation (its id
// carries it, so every event of a job lands in its day's buckets whichever process records it) and its
// retention class H: the namespace's payload plan when that keeps data longer than JOB_LOG_RETENTION_HOURS
// (an `extended` plan keeps the log that explains its payloads as long as them), else
// JOB_LOG_RETENTION_HOURS; the `zero` plan keeps its logs too (events are metadata, never a prompt or an
// output). Each document carries `expireAt` (the job's creation plus H) and reads filter on it.
//   { _id, jobId, namespaceId, kind, at, attempt?, nodeId?, model?, outcome?, reason?, stageMs?, usage?, expireAt }
import { ObjectId, type Db } from 'mongodb';
import type { Logger } from 'pino';
import { jobIdTime } from '../domain/job-ids.js';
import { cleanStageMs, JOB_LOG_REASON_MAX, kindRank, type JobLog, type JobLogEntry } from '../domain/job-log.js';
import { BufferedWriter } from '../common/buffered-writer.js';
import { jobCreatedMs } from './payload-buckets.js';
import { BucketIndexes, collectionNames, LogWriteAccount, insertByBucket, dayBucketName, dayStamp, dropExpiredBuckets, hoursLater, parseDayBucket, serverHasTtlIndexes } from './day-buckets.js';

export const JOB_LOG_PREFIX = 'job_log';

export interface StoredJobLogEntry extends JobLogEntry {
  _id: string;
  expireAt: Date;
}

export interface JobLogsOptions {
  /** The shortest a job's log is kept, hours. */
  retentionHours: number;
  /** The namespace's payload retention now, hours (null: the zero plan); a longer one keeps the log longer. */
  planHoursOf: (namespaceId: string) => Promise<number | null>;
  flushMs: number;
  batchMax: number;
  bufferMax: number;
  logger: Logger;
}

export class JobLogsRepository implements JobLog {
  /** What this process wrote and dropped (tests read its `writes`; GET /metrics has the same as counters). */
  private readonly account: LogWriteAccount;
  private readonly writer: BufferedWriter<JobLogEntry>;
  private readonly indexes: BucketIndexes;
  private ttlIndex = false;

  constructor(
    private readonly db: Db,
    private readonly o: JobLogsOptions,
  ) {
    this.account = new LogWriteAccount('job_log', o.logger, 'job log records dropped (MongoDB slow or unreachable)');
    this.indexes = new BucketIndexes(db, { jobId: 1 }, () => this.ttlIndex);
    this.writer = new BufferedWriter({
      write: (entries) => this.insert(entries),
      flushMs: o.flushMs,
      batchMax: o.batchMax,
      bufferMax: o.bufferMax,
      onDropped: (count, reason, error) => this.account.dropped(count, reason, error),
    });
  }

  /** What this process wrote and dropped. */
  get writes(): Readonly<LogWriteAccount['writes']> {
    return this.account.writes;
  }

  /** Asks the server whether it has TTL indexes (MongoDB) or not (FerretDB v1: expiry is the sweeper's drops alone). */
  async ensureIndexes(): Promise<void> {
    this.ttlIndex = await serverHasTtlIndexes(this.db);
  }

  /** Buffers an entry (never blocks): its reason bounded, its stage times non-negative milliseconds. */
  record(entry: JobLogEntry): void {
    this.writer.push({
      ...entry,
      ...(entry.reason === undefined ? {} : { reason: entry.reason.slice(0, JOB_LOG_REASON_MAX) }),
      ...(entry.stageMs === undefined ? {} : { stageMs: cleanStageMs(entry.stageMs) }),
    });
  }

  /** Writes what is buffered now (tests, shutdown). */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  close(): Promise<void> {
    return this.writer.close();
  }

  /**
   * A job's unexpired events, in the order they happened (time, then the lifecycle's order). Visits the
   * buckets of the job's day only (every class of it); an id without a time (none the backbone makes)
   * visits every bucket.
   */
  async ofJob(jobId: string, now = new Date()): Promise<StoredJobLogEntry[]> {
    const created = jobIdTime(jobId);
    const day = created ? dayStamp(created.getTime()) : null;
    const names = (await collectionNames(this.db)).filter((n) => parseDayBucket(JOB_LOG_PREFIX, n) !== null && (day === null || n.endsWith(`.${day}`)));
    const found = await Promise.all(names.map((n) => this.db.collection<StoredJobLogEntry>(n).find({ jobId, expireAt: { $gt: now } }).toArray()));
    return found.flat().sort((a, b) => a.at.getTime() - b.at.getTime() || kindRank(a.kind) - kindRank(b.kind) || (a.attempt ?? 0) - (b.attempt ?? 0));
  }

  /** Drops every bucket whose documents have all expired: one command per bucket, whatever the store holds. */
  sweepExpired(now = new Date()): Promise<number> {
    return dropExpiredBuckets(this.db, JOB_LOG_PREFIX, now, (name) => this.indexes.forget(name));
  }

  /** One insertMany per bucket the batch touches (nearly always one: a day's jobs of one class). */
  private async insert(entries: readonly JobLogEntry[]): Promise<void> {
    const hoursByNamespace = new Map<string, number>();
    for (const e of entries) {
      if (hoursByNamespace.has(e.namespaceId)) continue;
      const plan = await this.o.planHoursOf(e.namespaceId).catch(() => null);
      hoursByNamespace.set(e.namespaceId, Math.max(this.o.retentionHours, plan ?? 0));
    }
    const docs = entries.map((e): StoredJobLogEntry => {
      const created = jobCreatedMs(e.jobId, e.at.getTime());
      return { _id: new ObjectId().toHexString(), ...e, expireAt: hoursLater(created, hoursByNamespace.get(e.namespaceId)!) };
    });
    await insertByBucket(this.db, this.indexes, docs, (d) => dayBucketName(JOB_LOG_PREFIX, hoursByNamespace.get(d.namespaceId)!, jobCreatedMs(d.jobId, d.at.getTime())), this.account);
  }
}
