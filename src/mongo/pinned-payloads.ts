// Jobs pinned past their plan (issue 10, part 1): a copy of each pinned job's documents, exactly as stored
// (sealed: the copy is shredded with its job, like the original), in a collection of the namespace's own,
// `job_pinned.ns<namespace id in hex>`. No expiry pass drops it (it is no bucket: payload-buckets.ts), so a
// pinned job outlives the drop of its day's buckets; unpinning deletes the copy, and the original goes when
// its own plan says. A namespace's pins are few and chosen: on FerretDB a read here scans only them.
import type { Db, Document, FindCursor } from 'mongodb';
import type { PayloadKind } from './payload-buckets.js';

export interface PinnedDoc {
  /** `<kind>/<original _id>`: a pin copied twice writes nothing new. */
  _id: string;
  jobId: string;
  from: PayloadKind;
  /** The original document, as stored. */
  doc: Document & { _id: string };
  bytes: number;
  pinnedAt: Date;
}

const DUPLICATE_KEY = 11000;

export function pinnedCollection(namespaceId: string): string {
  return `job_pinned.ns${namespaceId.replaceAll('-', '').toLowerCase()}`;
}

export class PinnedPayloads {
  constructor(private readonly db: Db) {}

  /** Whether the namespace has a pinned collection among `names` (a listCollections the caller made). */
  has(names: readonly string[], namespaceId: string): boolean {
    return names.includes(pinnedCollection(namespaceId));
  }

  /** Copies a job's documents in; the bytes the copy holds. */
  async pin(namespaceId: string, jobId: string, docs: ReadonlyArray<{ from: PayloadKind; doc: Document & { _id: string; bytes?: number } }>): Promise<number> {
    const now = new Date();
    const copies: PinnedDoc[] = docs.map(({ from, doc }) => ({ _id: `${from}/${doc._id}`, jobId, from, doc, bytes: doc.bytes ?? 0, pinnedAt: now }));
    if (copies.length === 0) return 0;
    const col = this.db.collection<PinnedDoc>(pinnedCollection(namespaceId));
    await col.createIndex({ jobId: 1 });
    try {
      await col.insertMany(copies, { ordered: false });
    } catch (err) {
      const writeErrors = (err as { writeErrors?: unknown }).writeErrors;
      const list = (Array.isArray(writeErrors) ? writeErrors : writeErrors ? [writeErrors] : null) as Array<{ code: number }> | null;
      if (!list || list.some((e) => e.code !== DUPLICATE_KEY)) throw err;
    }
    return copies.reduce((n, c) => n + c.bytes, 0);
  }

  async docsOf(namespaceId: string, jobId: string): Promise<PinnedDoc[]> {
    return this.db.collection<PinnedDoc>(pinnedCollection(namespaceId)).find({ jobId }).toArray();
  }

  /** Deletes a job's copy; how many documents it had. */
  async unpin(namespaceId: string, jobId: string): Promise<number> {
    return (await this.db.collection<PinnedDoc>(pinnedCollection(namespaceId)).deleteMany({ jobId })).deletedCount;
  }

  /** Drops every pin of a namespace (its pins were released). */
  async dropAll(namespaceId: string): Promise<void> {
    await this.db.collection(pinnedCollection(namespaceId)).drop().catch(() => false);
  }

  /** Bytes the namespace's pins hold (metered with extended retention). */
  async bytes(namespaceId: string): Promise<number> {
    const [row] = await this.db
      .collection(pinnedCollection(namespaceId))
      .aggregate<{ bytes: number }>([{ $group: { _id: null, bytes: { $sum: '$bytes' } } }])
      .toArray();
    return row?.bytes ?? 0;
  }

  /**
   * Pinned results whose original has expired, as stored (an export adds them after the buckets', which
   * hold the unexpired originals), in batches.
   */
  expiredResults(namespaceId: string, now: Date, range: { since?: Date; until?: Date }, batchSize: number): FindCursor<PinnedDoc> {
    const at: Document = {};
    if (range.since) at.$gte = range.since;
    if (range.until) at.$lt = range.until;
    // A find, not an aggregation with $replaceRoot (which FerretDB v1 lacks): the caller takes `doc`.
    return this.db
      .collection<PinnedDoc>(pinnedCollection(namespaceId))
      .find({ from: 'job_results', 'doc.expireAt': { $lte: now }, ...(Object.keys(at).length ? { 'doc.at': at } : {}) }, { batchSize });
  }
}
