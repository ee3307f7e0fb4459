// The port through which payload documents are encrypted at rest (issue 10, part 2), and the payload
// store's side of it: a document's content is sealed before its grouped insert (sealedWrite) and opened on
// read (reveal, revealInBatches); the keys live elsewhere (space/payload-keys.service.ts, wired in the
// composition root), so that MongoDB never holds one. Without a cipher, content is stored in clear.
import type { JobRequest } from '../domain/protocol.js';
import type { StoredOutput } from './payload-codec.js';
/** A sealed content as stored: the id of its key's row (a UUID) and iv (12) | tag (16) | ciphertext. */
export interface Sealed {
  k: string;
  box: Buffer;
}

export interface PayloadCipher {
  /**
   * Seals a document's content under a key of its own, derived for its job in its namespace: `sealed` at
   * once, and `stored` when its key's row is written (the caller writes the document meanwhile, and counts
   * it written once both are: a document whose key row failed is unreadable).
   */
  seal(namespaceId: string, jobId: string, plaintext: Buffer): Promise<{ sealed: Sealed; stored: Promise<void> }>;
  /**
   * Opens sealed contents (one lookup for all of them); null for any whose key was shredded (its job or
   * namespace deleted) or that does not belong to the job and namespace it claims.
   */
  open(items: ReadonlyArray<{ namespaceId: string; jobId: string; sealed: Sealed }>): Promise<Array<Buffer | null>>;
}

/** A Buffer from what the driver reads back for a stored Buffer (a BSON Binary), or the Buffer itself. */
export function bytesOf(v: unknown): Buffer {
  if (Buffer.isBuffer(v)) return v;
  const b = v as { buffer?: Uint8Array; value?: () => Uint8Array };
  if (b && b.buffer instanceof Uint8Array) return Buffer.from(b.buffer.buffer, b.buffer.byteOffset, b.buffer.byteLength);
  throw new TypeError('not stored bytes');
}

/**
 * Documents with their sealed content opened (one cipher call for all of them); a document whose key
 * was shredded is left out, as if it had expired. Documents in clear are returned as they are.
 */
export async function reveal<T extends { _id: string; namespaceId: string; jobId?: string; sealed?: Sealed; input?: JobRequest; output?: StoredOutput }>(cipher: PayloadCipher | null, docs: readonly T[]): Promise<T[]> {
  const sealed = docs.filter((d) => d.sealed);
  if (sealed.length === 0) return [...docs];
  if (!cipher) return docs.filter((d) => !d.sealed);
  const jobOf = (d: T) => d.jobId ?? d._id;
  const opened = await cipher.open(sealed.map((d) => ({ namespaceId: d.namespaceId, jobId: jobOf(d), sealed: { k: d.sealed!.k, box: bytesOf(d.sealed!.box) } })));
  const plain = new Map<T, Buffer | null>(sealed.map((d, i) => [d, opened[i] ?? null]));
  const out: T[] = [];
  for (const d of docs) {
    if (!d.sealed) {
      out.push(d);
      continue;
    }
    const bytes = plain.get(d);
    if (!bytes) continue;
    const content = JSON.parse(bytes.toString('utf8')) as { input?: JobRequest; output?: StoredOutput };
    const { sealed: _sealed, ...rest } = d;
    out.push({ ...rest, ...content } as T);
  }
  return out;
}

/**
 * Writes a document through `insert` (a grouped insert): with a cipher, its `content` sealed into `sealed`
 * (resolved once both the document and its key's row are written: a document without its key's row is
 * unreadable); without one, the content in clear beside the document's other fields.
 */
export async function sealedWrite<D extends object>(cipher: PayloadCipher | null, owner: { namespaceId: string; jobId: string }, doc: D, content: object, insert: (doc: D) => Promise<void>): Promise<void> {
  if (!cipher) return insert({ ...doc, ...content });
  const { sealed, stored } = await cipher.seal(owner.namespaceId, owner.jobId, Buffer.from(JSON.stringify(content)));
  await Promise.all([stored, insert({ ...doc, sealed })]);
}

/** A cursor's documents opened a batch at a time (one key lookup per batch), as an export reads them. */
export async function* revealInBatches<T extends Parameters<typeof reveal>[1][number]>(cipher: PayloadCipher | null, cursor: AsyncIterable<T>, batchSize: number): AsyncGenerator<T> {
  let batch: T[] = [];
  for await (const doc of cursor) {
    batch.push(doc);
    if (batch.length >= batchSize) {
      yield* await reveal(cipher, batch);
      batch = [];
    }
  }
  yield* await reveal(cipher, batch);
}
