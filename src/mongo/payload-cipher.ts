// The port through which payload documents are encrypted at rest (issue 10, part 2): the repository seals
// a document's content before its grouped insert and opens it on read; the keys live elsewhere
// (space/payload-keys.service.ts, wired in the composition root), so that MongoDB never holds one.
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
