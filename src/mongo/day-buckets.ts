// Day buckets for the log stores (job logs, node stats), after the payload store's layout
// (payload-buckets.ts): one collection per kind, retention class and UTC day, e.g. `job_log.r720h.20261205`,
// each dropped whole once every document in it has expired. A read names the days it wants and visits
// only those collections; expiry costs one drop per expired bucket, whatever the store holds. On MongoDB
// each bucket also carries a TTL index on `expireAt`; on FerretDB v1 (no TTL indexes) the drop is all.
import type { Db, Document, OptionalUnlessRequiredId } from 'mongodb';
import type { Logger } from 'pino';
import { countLogBatch, countLogDropped, type LogStore } from '../metrics/log-writes.js';

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

export interface DayBucket {
  prefix: string;
  retentionHours: number;
  dayStartMs: number;
}

/** The UTC day of `ms` as YYYYMMDD. */
export function dayStamp(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10).replaceAll('-', '');
}

export function dayBucketName(prefix: string, retentionHours: number, dayMs: number): string {
  if (!Number.isSafeInteger(retentionHours) || retentionHours < 1) throw new RangeError(`retention class must be whole hours >= 1: ${retentionHours}`);
  return `${prefix}.r${retentionHours}h.${dayStamp(dayMs)}`;
}

/** The bucket a collection name stands for when it is one of `prefix`'s; null otherwise. */
export function parseDayBucket(prefix: string, name: string): DayBucket | null {
  if (!name.startsWith(`${prefix}.`)) return null;
  const m = /^r(\d+)h\.(\d{4})(\d{2})(\d{2})$/.exec(name.slice(prefix.length + 1));
  if (!m) return null;
  return { prefix, retentionHours: Number(m[1]), dayStartMs: Date.UTC(Number(m[2]), Number(m[3]) - 1, Number(m[4])) };
}

/** When every document of the bucket has expired: the end of its day plus its retention. */
export function dayBucketExpiresAtMs(b: DayBucket): number {
  return b.dayStartMs + DAY_MS + b.retentionHours * HOUR_MS;
}

export function hoursLater(ms: number, hours: number): Date {
  return new Date(ms + hours * HOUR_MS);
}

/** Start of each UTC day from `sinceMs`'s to `untilMs`'s, inclusive. */
export function daysBetween(sinceMs: number, untilMs: number): number[] {
  const out: number[] = [];
  for (let d = Math.floor(sinceMs / DAY_MS) * DAY_MS; d <= untilMs; d += DAY_MS) out.push(d);
  return out;
}

/** Whether the server has TTL indexes: MongoDB does, FerretDB v1 does not (createIndexes answers code 238). */
export async function serverHasTtlIndexes(db: Db): Promise<boolean> {
  const build = await db.admin().command({ buildInfo: 1 });
  return !('ferretdbVersion' in build || 'ferretdb' in build);
}

/** Every collection's name (nameOnly: a catalogue read, whatever the collections hold). */
export async function collectionNames(db: Db): Promise<string[]> {
  return (await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name);
}

/** Drops every bucket of `prefix` whose documents have all expired by `now`; returns how many went. */
export async function dropExpiredBuckets(db: Db, prefix: string, now: Date, forget: (name: string) => void = () => undefined): Promise<number> {
  let dropped = 0;
  for (const name of await collectionNames(db)) {
    const b = parseDayBucket(prefix, name);
    if (!b || dayBucketExpiresAtMs(b) > now.getTime()) continue;
    // Dropped by another instance meanwhile: the same outcome.
    if (await db.collection(name).drop().catch(() => false)) dropped++;
    forget(name);
  }
  return dropped;
}

/**
 * A bucket's indexes, asked for once per process per bucket (createIndex is a no-op when they exist): the
 * read key, and on MongoDB the TTL index on `expireAt`.
 */
export class BucketIndexes {
  private readonly ready = new Map<string, Promise<void>>();

  constructor(
    private readonly db: Db,
    private readonly key: Record<string, 1 | -1>,
    private readonly ttl: () => boolean,
  ) {}

  ensure(bucket: string): Promise<void> {
    let ready = this.ready.get(bucket);
    if (!ready) {
      ready = (async () => {
        const col = this.db.collection(bucket);
        await col.createIndex(this.key);
        if (this.ttl()) await col.createIndex({ expireAt: 1 }, { expireAfterSeconds: 0, name: 'expireAt_ttl' });
      })();
      ready.catch(() => this.ready.delete(bucket));
      this.ready.set(bucket, ready);
    }
    return ready;
  }

  forget(bucket: string): void {
    this.ready.delete(bucket);
  }
}

/**
 * Writes documents grouped by the bucket `bucketOf` names: one unordered insertMany per bucket, buckets in
 * parallel. Never throws: each bucket's outcome goes to `written` or `failed` (a write-behind log counts
 * and drops what MongoDB refuses rather than blocking its writers).
 */
export async function insertByBucket<T extends Document>(
  db: Db,
  indexes: BucketIndexes,
  docs: readonly T[],
  bucketOf: (doc: T) => string,
  outcome: { written: (count: number) => void; failed: (count: number, error: unknown) => void },
): Promise<void> {
  const byBucket = new Map<string, T[]>();
  for (const d of docs) {
    const bucket = bucketOf(d);
    const list = byBucket.get(bucket);
    if (list) list.push(d);
    else byBucket.set(bucket, [d]);
  }
  await Promise.all(
    [...byBucket].map(async ([bucket, list]) => {
      try {
        await indexes.ensure(bucket);
        await db.collection<T>(bucket).insertMany(list as OptionalUnlessRequiredId<T>[], { ordered: false });
        outcome.written(list.length);
      } catch (error) {
        outcome.failed(list.length, error);
      }
    }),
  );
}

/** How often a failing log store says so in the log (each failure is counted in the metric regardless). */
const WARN_EVERY_MS = 30_000;

/**
 * A written-behind log store's accounting (the job log, node stats): what it wrote and dropped, in its
 * `writes` (tests read them) and in the GET /metrics counters, and a warning when it drops records, at
 * most one every WARN_EVERY_MS. Its `written` and `failed` are what insertByBucket reports to.
 */
export class LogWriteAccount {
  readonly writes = { batches: 0, records: 0, dropped: 0 };
  private lastWarnMs = 0;

  constructor(
    private readonly store: LogStore,
    private readonly logger: Logger,
    /** The warning's text: what was dropped and the likely causes. */
    private readonly warning: string,
  ) {}

  written(count: number): void {
    this.writes.batches++;
    this.writes.records += count;
    countLogBatch(this.store, count);
  }

  failed(count: number, error: unknown): void {
    this.dropped(count, 'write_failed', error);
  }

  dropped(count: number, reason: 'buffer_full' | 'write_failed', error?: unknown): void {
    this.writes.dropped += count;
    countLogDropped(this.store, reason, count);
    const now = Date.now();
    if (now - this.lastWarnMs >= WARN_EVERY_MS) {
      this.lastWarnMs = now;
      this.logger.warn({ err: error, dropped: count, reason }, this.warning);
    }
  }
}
