// `COPY ... TO STDOUT` as a byte stream, for snapshot export: what pg-copy-streams' `to` does (the same
// way of taking the connection's socket over for the COPY and handing it back), with a parser made for
// throughput. PostgreSQL sends one CopyData message per row; pg-copy-streams copies each message's
// content into a buffer of its own and then concatenates them (two copies and an allocation per row,
// most of an export's JavaScript time in a profile). Here each socket read is scanned once and the rows'
// bytes copied once, into one buffer per read.
//
// Protocol (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-COPY): after
// CopyOutResponse, CopyData messages ('d', int32 length, the bytes), possibly interspersed with
// NoticeResponse, ParameterStatus and NotificationResponse, then CopyDone ('c'); an ErrorResponse ends the
// COPY. Whatever follows CopyDone (CommandComplete, ReadyForQuery), and an ErrorResponse itself, go back
// to pg's own parser unread.
import { Readable } from 'node:stream';
import type { Connection, Submittable } from 'pg';

const ERROR_RESPONSE = 0x45;
const COPY_DONE = 0x63;
const COPY_DATA = 0x64;
/** Messages that may come before or between CopyData messages: skipped. */
const INTERSPERSED = new Set([0x48 /* CopyOutResponse */, 0x4e /* NoticeResponse */, 0x53 /* ParameterStatus */, 0x41 /* NotificationResponse */]);
const HEADER = 5;

/** pg's socket (a net.Socket, or a TLS one), as far as this reads it: in paused mode, raw bytes. */
interface SocketLike {
  read(): Buffer | null;
  pause(): void;
  resume(): void;
  on(event: 'readable' | 'data', fn: (...args: never[]) => void): void;
  removeListener(event: 'readable' | 'data', fn: (...args: never[]) => void): void;
  listeners(event: 'data'): Array<(b: Buffer) => void>;
}

export class CopyOutStream extends Readable implements Submittable {
  /** Rows PostgreSQL reported copied (its CommandComplete). */
  rowCount = 0;
  private socket: SocketLike | null = null;
  private pgDataHandler: ((b: Buffer) => void) | null = null;
  /** The bytes of a message header cut by the end of a socket read. */
  private partialHeader: Buffer | null = null;
  /** Content bytes of the current message still to come, and whether they are row bytes. */
  private remaining = 0;
  private inCopyData = false;
  private wanted = false;
  private forwarding = false;
  private finished = false;
  private readonly onReadable = () => this.forward();

  constructor(private readonly text: string) {
    // Room for a few socket reads: fewer pauses of the socket while the reader hashes and writes a chunk.
    super({ highWaterMark: 1024 * 1024 });
  }

  submit(connection: Connection): void {
    const socket = (connection as unknown as { stream: SocketLike }).stream;
    const handlers = socket.listeners('data');
    if (handlers.length !== 1) throw new Error(`COPY TO: the connection's socket has ${handlers.length} data listeners, expected pg's one`);
    this.socket = socket;
    this.pgDataHandler = handlers[0]!;
    socket.removeListener('data', this.pgDataHandler);
    socket.pause();
    socket.on('readable', this.onReadable);
    connection.query(this.text);
  }

  override _read(): void {
    this.wanted = true;
    this.forward();
  }

  private forward(): void {
    if (this.forwarding || !this.wanted || !this.socket || this.finished) return;
    this.forwarding = true;
    const socket = this.socket;
    for (let chunk = socket.read(); chunk !== null; chunk = this.wanted && !this.finished ? socket.read() : null) {
      this.wanted = this.parse(chunk);
    }
    this.forwarding = false;
  }

  /** Takes one socket read; pushes its row bytes; returns whether the reader wants more. */
  private parse(input: Buffer): boolean {
    const chunk = this.partialHeader ? Buffer.concat([this.partialHeader, input]) : input;
    this.partialHeader = null;
    const out = Buffer.allocUnsafe(chunk.length);
    let o = 0;
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, n - i);
        if (this.inCopyData) o += chunk.copy(out, o, i, i + take);
        i += take;
        this.remaining -= take;
        continue;
      }
      if (n - i < HEADER) {
        this.partialHeader = Buffer.from(chunk.subarray(i));
        break;
      }
      const code = chunk[i]!;
      if (code === COPY_DATA || INTERSPERSED.has(code)) {
        this.inCopyData = code === COPY_DATA;
        this.remaining = chunk.readUInt32BE(i + 1) - 4;
        i += HEADER;
        continue;
      }
      // CopyDone (consumed), or an ErrorResponse or any other message (left for pg): the COPY is over.
      if (code === COPY_DONE) i += HEADER;
      const wanted = o > 0 ? this.push(out.subarray(0, o)) : true;
      this.finish(chunk.subarray(i), code === COPY_DONE);
      return wanted;
    }
    return o > 0 ? this.push(out.subarray(0, o)) : true;
  }

  /** Gives the socket back to pg with what it has not read; ends the stream when the COPY completed. */
  private finish(rest: Buffer, completed: boolean): void {
    this.finished = true;
    const socket = this.socket!;
    socket.removeListener('readable', this.onReadable);
    socket.on('data', this.pgDataHandler!);
    this.pgDataHandler!(rest);
    // pg's handler may pause the socket (its own backpressure): resume after it has run, as pg-copy-streams does.
    process.nextTick(() => socket.resume());
    if (completed) this.push(null);
  }

  /** pg: the COPY failed (the ErrorResponse handed back above). */
  handleError(err: Error): void {
    this.destroy(err);
  }

  handleCommandComplete(msg: { text?: string } | undefined): void {
    const match = /COPY (\d+)/.exec(msg?.text ?? '');
    if (match) this.rowCount = Number(match[1]);
  }

  handleReadyForQuery(): void {}
}
