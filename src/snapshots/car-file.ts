// Writing and reading snapshot CAR files (CARv1, @ipld/car). Writing streams blocks to a file as parts are
// read from the database (a large day never sits in memory whole); the root, the manifest, comes last,
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
import { blockMatches, CHUNK_TARGET_BYTES, encodeBlock, type Block, type PartEntry, type Row } from './snapshot.format.js';

/** Bytes a row adds to its chunk, near enough to cut chunks by (CBOR adds a byte or two per value). */
function rowSize(row: Row): number {
  let n = 2;
  for (const c of row) n += c === null ? 1 : c.length + 3;
  return n;
}

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

  /** Writes one part from `batches` of rows (see encodePart). */
  writePart(name: string, table: string, columns: string[], batches: AsyncIterable<Row[]>, onRows?: (n: number) => void): Promise<PartEntry> {
    return encodePart(name, table, columns, batches, (block) => this.put(block), onRows);
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
 * Encodes one part from `batches` of rows into chunk blocks of about CHUNK_TARGET_BYTES, handed to `put`
 * in order and hashed in order. The same rows in the same order always give the same blocks and hash.
 * `onRows` hears of each batch encoded (for progress).
 */
export async function encodePart(
  name: string,
  table: string,
  columns: string[],
  batches: AsyncIterable<Row[]>,
  put: (block: Block) => Promise<void>,
  onRows?: (n: number) => void,
): Promise<PartEntry> {
  const part: PartEntry = { name, table, columns, rows: 0, bytes: 0, sha256: '', chunks: [] };
  const hash = createHash('sha256');
  let chunk: Row[] = [];
  let size = 0;
  const flush = async () => {
    if (chunk.length === 0) return;
    const block = encodeBlock(chunk);
    hash.update(block.bytes);
    part.bytes += block.bytes.length;
    part.chunks.push(block.cid);
    await put(block);
    chunk = [];
    size = 0;
  };
  for await (const rows of batches) {
    for (const row of rows) {
      chunk.push(row);
      size += rowSize(row);
      if (size >= CHUNK_TARGET_BYTES) await flush();
    }
    part.rows += rows.length;
    onRows?.(rows.length);
  }
  await flush();
  part.sha256 = hash.digest('hex');
  return part;
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
