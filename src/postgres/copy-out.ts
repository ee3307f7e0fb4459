// `COPY ... TO STDOUT` read straight off the connection, as blocks of rows. PostgreSQL sends each row of a
// COPY TO in a CopyData message of its own ("messages sent from the backend will always correspond to
// single data rows", protocol docs, COPY Operations), so the framing says where rows end: the rows'
// bytes are packed together within each socket chunk and copied once into blocks cut at rows' ends
// (common/row-blocks.ts), with no object per row and no search for newlines. Through pg-copy-streams'
// per-message buffering and the re-cutting of its output, a snapshot export used about a third more of
// Node.js's CPU (bench:snapshots).
//
// Like pg-copy-streams' `to`, it takes the socket's data from pg's parser while the COPY runs, and hands
// it back at CopyDone, or at an ErrorResponse (pg then parses the error and calls handleError), with the
// bytes not yet read.
import type { Connection, Submittable } from 'pg';
import { RowBlocks } from '../common/row-blocks.js';

const COPY_DATA = 0x64; // 'd'
const COPY_DONE = 0x63; // 'c'
const ERROR_RESPONSE = 0x45; // 'E'
const HEADER_BYTES = 5; // a code byte, then the length of what follows it, itself included (int32)

/** Blocks waiting for the reader beyond which the socket is paused (each at most `blockBytes`). */
const READ_AHEAD_BLOCKS = 4;

type DataHandler = (chunk: Buffer) => void;

/**
 * A pg query (`client.query(new CopyToBlocks(sql, n))`) whose rows come as blocks of at most `blockBytes`,
 * each ending at a row's end, or cut inside a row longer than a block. Read it to its end (or break out of
 * the loop: the rest is then read and dropped, so the connection is free again).
 */
export class CopyToBlocks implements Submittable, AsyncIterable<Buffer> {
  private connection: Connection | null = null;
  private pgData: DataHandler | null = null;
  private readonly onData: DataHandler = (chunk) => this.parse(chunk);
  private readonly rows: RowBlocks;
  private readonly ready: Buffer[] = [];
  private waiting: (() => void) | null = null;
  private paused = false;
  private finished = false;
  private discarding = false;
  private error: Error | null = null;
  /** The header of the message being read (it may come split across chunks). */
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerBytes = 0;
  /** What is left of the current message's body. */
  private bodyLeft = 0;
  private code = 0;
  /** Where rows end in the chunk being read (reused). */
  private readonly rowEnds: number[] = [];

  constructor(
    private readonly text: string,
    blockBytes: number,
  ) {
    this.rows = new RowBlocks(blockBytes, (block) => {
      if (!this.discarding) this.ready.push(block);
    });
  }

  submit(connection: Connection): void {
    this.connection = connection;
    const stream = connection.stream;
    const listeners = stream.listeners('data') as DataHandler[];
    if (listeners.length !== 1) throw new Error(`COPY TO expects pg's one data listener on the socket, found ${listeners.length}`);
    this.pgData = listeners[0]!;
    stream.removeListener('data', this.pgData);
    stream.on('data', this.onData);
    connection.query(this.text);
  }

  /**
   * Reads a chunk off the socket. The rows' bytes are moved down over the message headers within the chunk
   * itself (copyWithin: no allocation; only bytes already read are written over, and the unread rest is
   * what goes back to pg at the end), then go to the blocks in one push with their row ends.
   */
  private parse(chunk: Buffer): void {
    let at = 0;
    let packed = 0; // rows' bytes moved to chunk[0, packed)
    this.rowEnds.length = 0;
    const flush = () => {
      if (packed > 0) this.rows.push(chunk.subarray(0, packed), this.rowEnds);
      packed = 0;
    };
    while (at < chunk.length) {
      if (this.bodyLeft === 0) {
        if (this.headerBytes === 0 && chunk[at] === ERROR_RESPONSE) {
          flush();
          return this.detach(chunk.subarray(at));
        }
        if (this.headerBytes === 0 && at + HEADER_BYTES <= chunk.length) {
          this.code = chunk[at]!;
          this.bodyLeft = chunk.readUInt32BE(at + 1) - 4;
          at += HEADER_BYTES;
        } else {
          // A header split across chunks.
          const n = Math.min(HEADER_BYTES - this.headerBytes, chunk.length - at);
          chunk.copy(this.header, this.headerBytes, at, at + n);
          this.headerBytes += n;
          at += n;
          if (this.headerBytes < HEADER_BYTES) break;
          this.headerBytes = 0;
          this.code = this.header[0]!;
          this.bodyLeft = this.header.readUInt32BE(1) - 4;
        }
        if (this.code === COPY_DONE) {
          flush();
          return this.detach(chunk.subarray(at));
        }
        continue;
      }
      // CopyOutResponse, and the notices or parameter changes the server may slip in, are skipped.
      const n = Math.min(this.bodyLeft, chunk.length - at);
      this.bodyLeft -= n;
      if (this.code === COPY_DATA) {
        if (packed !== at) chunk.copyWithin(packed, at, at + n);
        packed += n;
        if (this.bodyLeft === 0) this.rowEnds.push(packed);
      }
      at += n;
    }
    flush();
    this.wake();
    if (!this.discarding && this.ready.length >= READ_AHEAD_BLOCKS && !this.paused) {
      this.paused = true;
      this.connection!.stream.pause();
    }
  }

  /** Gives the socket back to pg with the bytes it has not read (CopyDone's or the error's). */
  private detach(rest: Buffer): void {
    const connection = this.connection!;
    const stream = connection.stream;
    stream.removeListener('data', this.onData);
    stream.on('data', this.pgData!);
    if (this.code === COPY_DONE) {
      this.rows.end();
      this.finished = true;
    }
    // A CopyDone's whole message has been read here; pg goes on from the message after it.
    if (rest.length > 0) this.pgData!(rest);
    if (this.paused) {
      this.paused = false;
      stream.resume();
    }
    this.wake();
  }

  /** pg: the server's error (before or during the COPY), or the connection's. */
  handleError(err: Error): void {
    this.error = err;
    this.wake();
  }

  handleCommandComplete(): void {}

  handleReadyForQuery(): void {}

  private wake(): void {
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        const block = this.ready.shift();
        if (block) {
          if (this.paused && this.ready.length < READ_AHEAD_BLOCKS / 2) {
            this.paused = false;
            this.connection!.stream.resume();
          }
          yield block;
          continue;
        }
        if (this.error) throw this.error;
        if (this.finished) return;
        await new Promise<void>((resolve) => (this.waiting = resolve));
      }
    } finally {
      // Left before the end: the rest of the COPY is read and dropped, so that the connection comes free.
      if (!this.finished && !this.error) {
        this.discarding = true;
        this.ready.length = 0;
        if (this.paused) {
          this.paused = false;
          this.connection?.stream.resume();
        }
      }
    }
  }
}
