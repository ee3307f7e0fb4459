// Where a job's payload documents live: one collection per kind, retention class and UTC day of the job's
// creation, e.g. `job_results.r72h.20261205`. A job id is a UUIDv7 carrying its creation time
// (domain/job-ids.ts), so a read by id names its day without asking anyone, and visits only that day's
// buckets (one per retention class in use that day): never the whole store. Every document of bucket
// (class R, day D) expires by the end of D plus R, so once that moment has passed the whole collection is
// dropped in one command: the cost of expiry is one drop per expired bucket, whatever the store holds.
//
// Why this layout on every server: FerretDB v1 has no TTL indexes, and a filter there (on `_id` or any
// field) scans the collection it names, so both expiry and reads must be bounded by naming small
// collections. On MongoDB the buckets also carry a TTL index (documents go at their own expireAt, to the
// second); the drop then only removes empty collections.
import { jobIdTime } from '../domain/job-ids.js';

export const PAYLOAD_KINDS = ['job_payloads', 'job_results', 'job_trace'] as const;
export type PayloadKind = (typeof PAYLOAD_KINDS)[number];

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const BUCKET_NAME = /^(job_payloads|job_results|job_trace)\.r(\d+)h\.(\d{4})(\d{2})(\d{2})$/;

export interface Bucket {
  kind: PayloadKind;
  retentionHours: number;
  /** Start of the UTC day of creation of the jobs it holds, ms. */
  dayStartMs: number;
}

/** The UTC day of `ms` as YYYYMMDD. */
function dayStamp(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10).replaceAll('-', '');
}

export function bucketName(kind: PayloadKind, retentionHours: number, createdMs: number): string {
  if (!Number.isSafeInteger(retentionHours) || retentionHours < 1) throw new RangeError(`retention class must be whole hours >= 1: ${retentionHours}`);
  return `${kind}.r${retentionHours}h.${dayStamp(createdMs)}`;
}

/** The bucket a collection name stands for; null for any other collection. */
export function parseBucketName(name: string): Bucket | null {
  const m = BUCKET_NAME.exec(name);
  if (!m) return null;
  return { kind: m[1] as PayloadKind, retentionHours: Number(m[2]), dayStartMs: Date.UTC(Number(m[3]), Number(m[4]) - 1, Number(m[5])) };
}

/** When every document of the bucket has expired: the end of its day plus its retention. */
export function bucketExpiresAtMs(b: Bucket): number {
  return b.dayStartMs + DAY_MS + b.retentionHours * HOUR_MS;
}

/**
 * A job's creation time, for naming its bucket: the time its id carries. An id that is not a UUIDv7 (none
 * the backbone makes) is filed under the time it was written.
 */
export function jobCreatedMs(jobId: string, nowMs = Date.now()): number {
  return jobIdTime(jobId)?.getTime() ?? nowMs;
}

/** When a job's documents expire under a retention class: its creation plus the class's hours. */
export function expiryOf(jobId: string, retentionHours: number, nowMs = Date.now()): Date {
  return new Date(jobCreatedMs(jobId, nowMs) + retentionHours * HOUR_MS);
}

/**
 * The buckets of `kind` among `names` that may hold a job: those of its day (every class), or, for an id
 * that carries no time, every bucket of the kind.
 */
export function bucketsOfJob(names: Iterable<string>, kind: PayloadKind, jobId: string): string[] {
  const t = jobIdTime(jobId);
  const day = t ? dayStamp(t.getTime()) : null;
  const out: string[] = [];
  for (const name of names) {
    const b = parseBucketName(name);
    if (b && b.kind === kind && (day === null || name.endsWith(`.${day}`))) out.push(name);
  }
  return out;
}

/** The bucket of `kind` a job's documents go to under a retention class. */
export function jobBucket(kind: PayloadKind, jobId: string, retentionHours: number): string {
  return bucketName(kind, retentionHours, jobCreatedMs(jobId));
}
