// Writing and reading snapshot CAR files (CARv1, @ipld/car). Writing streams blocks to a file as parts are
// copied out of the database (a large day never sits in memory whole); the root, the manifest, comes last,
// so the file starts with a placeholder root of the same length that is overwritten in place at the end.
// Reading checks every block against its CID as it arrives.
import { createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { CarWriter } from '@ipld/car/writer';
import { CarBlockIterator } from '@ipld/car/iterator';
import * as dagCbor from '@ipld/dag-cbor';
import type { CID } from 'multiformats/cid';
import { blockMatches, CHUNK_MAX_BYTES, encodeBlock, PART_ENCODING, rawBlock, type Block, type PartEntry } from './snapshot.format.js';
import { countRows } from './copy-text.js';

export class CarFileWriter {
  private constructor(
    private readonly path: string,
    private readonly writer: ReturnType<typeof CarWriter.create>['writer'],
    private readonly written: Promise<void>,
    private readonly counter: { bytes: number },
  ) {}

  /** Opens `path` for a new CAR file. */
  static create(path: string): CarFileWriter {
    // Any CIDv1 DAG-CBOR sha2-256 has the root's length: the header can be rewritten in place.
    const placeholder = encodeBlock(null).cid;
    const { writer, out } = CarWriter.create([placeholder]);
    const counter = { bytes: 0 };
    const counted = Readable.from(
      (async function* () {
        for await (const chunk of out) {
          counter.bytes += chunk.length;
          yield chunk;
        }
      })(),
    );
    return new CarFileWriter(path, writer, pipeline(counted, createWriteStream(path)), counter);
  }

  async put(block: Block): Promise<void> {
    await this.writer.put(block);
  }

  /** Writes one part from its COPY text in chunks (see encodePart). */
  writePart(name: string, table: string, columns: string[], chunks: AsyncIterable<Uint8Array>, onRows?: (n: number) => void): Promise<PartEntry> {
    return encodePart(name, table, columns, chunks, (block) => this.put(block), onRows);
  }

  /** Writes the root block last, closes the file and points its header at the root; returns the file's size. */
  async finish(root: Block): Promise<number> {
    await this.put(root);
    await this.writer.close();
    await this.written;
    const fd = await open(this.path, 'r+');
    try {
      await CarWriter.updateRootsInFile(fd, [root.cid]);
    } finally {
      await fd.close();
    }
    return this.counter.bytes;
  }
}

/**
 * Encodes one part from the COPY text of its rows, already cut into chunks of at most CHUNK_MAX_BYTES at
 * rows' ends (as ExportReader.copyOut gives them; chunkAtRows cuts text the same way): a raw block per
 * chunk, handed to `put` in order; the part's sha256 over all of its bytes, its rows counted from their
 * newlines. No value is looked at: the same text always gives the same blocks and hash. `onRows` hears of
 * each chunk's rows (for progress).
 */
export async function encodePart(
  name: string,
  table: string,
  columns: string[],
  chunks: AsyncIterable<Uint8Array>,
  put: (block: Block) => Promise<void>,
  onRows?: (n: number) => void,
): Promise<PartEntry> {
  const part: PartEntry = { name, table, columns, encoding: PART_ENCODING, rows: 0, bytes: 0, sha256: '', chunks: [] };
  const hash = createHash('sha256');
  let failure: Error | null = null;
  for await (const chunk of chunks) {
    if (chunk.length > CHUNK_MAX_BYTES) throw new Error(`part ${name}: a chunk of ${chunk.length} bytes, over the ${CHUNK_MAX_BYTES} a block may hold`);
    // After a failed put (the disk full), the rest is read and dropped: a COPY left unread keeps its
    // connection busy for good, and the transaction's ROLLBACK would wait behind it forever.
    if (failure) continue;
    try {
      await putChunk(chunk);
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
    }
  }
  if (failure) throw failure;
  part.sha256 = hash.digest('hex');
  return part;

  async function putChunk(chunk: Uint8Array): Promise<void> {
    const rows = countRows(chunk);
    hash.update(chunk);
    const block = rawBlock(chunk);
    part.rows += rows;
    part.bytes += chunk.length;
    part.chunks.push(block.cid);
    await put(block);
    onRows?.(rows);
  }
}

export interface CarContents {
  roots: CID[];
  /** Every block whose bytes match its CID, by CID string. */
  blocks: Map<string, Uint8Array>;
  /** Blocks whose bytes do not match their CID (tampered or damaged), by CID string. */
  mismatched: string[];
  bytes: number;
}

/** Reads a whole CAR stream, checking each block against its CID. Throws when it is no CAR at all. */
export async function readCar(source: AsyncIterable<Uint8Array>): Promise<CarContents> {
  let bytes = 0;
  const counted = (async function* () {
    for await (const c of source) {
      bytes += c.length;
      yield c;
    }
  })();
  const it = await CarBlockIterator.fromIterable(counted);
  const contents: CarContents = { roots: await it.getRoots(), blocks: new Map(), mismatched: [], bytes: 0 };
  for await (const { cid, bytes: data } of it) {
    if (blockMatches(cid, data)) contents.blocks.set(cid.toString(), data);
    else contents.mismatched.push(cid.toString());
  }
  contents.bytes = bytes;
  return contents;
}

export function readCarFile(path: string): Promise<CarContents> {
  return readCar(createReadStream(path));
}

/** Decodes a DAG-CBOR block (for tools and tests that rewrite snapshots). */
export function decodeBlock(bytes: Uint8Array): unknown {
  return dagCbor.decode(bytes);
}
