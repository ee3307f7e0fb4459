// A write-behind buffer for records nobody waits on (job logs, node stats): `push` is synchronous and
// never blocks; the buffer is written in batches, every `flushMs` or as soon as `batchMax` records wait,
// one batch at a time. It is bounded: past `bufferMax` records waiting, new ones are dropped and counted,
// and a batch whose write fails is dropped and counted too (never retried): when the store is down the
// process neither blocks nor grows, it loses log records and says how many (onDropped, a metric).
//
// Unlike common/group-commit.ts (callers wait for their own outcome, batches form only under load), this
// waits on purpose: records are cheap to delay and expensive to write one by one.

export interface BufferedWriterOptions<T> {
  /** Writes one batch (one insertMany); throws when nothing of it was written. */
  write: (items: readonly T[]) => Promise<void>;
  /** Longest a record waits before its batch is written, ms (>= 1). */
  flushMs: number;
  /** Largest batch; a batch is written at once when this many wait (>= 1). */
  batchMax: number;
  /** Most records waiting (>= batchMax); beyond it new records are dropped. */
  bufferMax: number;
  /** Told of records dropped: the buffer was full, or their batch's write failed. */
  onDropped?: (count: number, reason: 'buffer_full' | 'write_failed', error?: unknown) => void;
  /** Told of each batch written (its size). */
  onWritten?: (count: number) => void;
}

export class BufferedWriter<T> {
  private buffer: T[] = [];
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly o: BufferedWriterOptions<T>) {
    if (!(o.flushMs >= 1 && o.batchMax >= 1 && o.bufferMax >= o.batchMax)) throw new RangeError(`invalid buffered writer options: flushMs ${o.flushMs}, batchMax ${o.batchMax}, bufferMax ${o.bufferMax}`);
  }

  /** Records waiting to be written. */
  get pending(): number {
    return this.buffer.length;
  }

  /** Queues a record; false when it was dropped (buffer full, or the writer closed). */
  push(item: T): boolean {
    if (this.closed || this.buffer.length >= this.o.bufferMax) {
      this.o.onDropped?.(1, 'buffer_full');
      return false;
    }
    this.buffer.push(item);
    if (this.buffer.length >= this.o.batchMax) this.kick();
    else this.timer ??= setTimeout(() => this.kick(), this.o.flushMs);
    return true;
  }

  /** Writes everything queued so far (tests, shutdown); resolves once those batches are done. */
  async flush(): Promise<void> {
    while (this.buffer.length > 0 || this.writing) {
      this.kick();
      await this.writing;
    }
  }

  /**
   * Refuses further records and writes what is queued; should a write fail meanwhile, the rest is dropped
   * (counted) rather than tried batch after batch: a shutdown while the store is down must not wait for
   * each batch's timeout.
   */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Starts writing batches unless a write is in progress (which starts the next one when it ends). */
  private kick(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.writing || this.buffer.length === 0) return;
    this.writing = this.drain().finally(() => {
      this.writing = null;
      // Records that came during the write wait for their own flushMs, unless a whole batch is ready.
      if (this.buffer.length >= this.o.batchMax) this.kick();
      else if (this.buffer.length > 0) this.timer ??= setTimeout(() => this.kick(), this.o.flushMs);
    });
  }

  private async drain(): Promise<void> {
    const batch = this.buffer.splice(0, this.o.batchMax);
    try {
      await this.o.write(batch);
      this.o.onWritten?.(batch.length);
    } catch (error) {
      // Closing: what is still queued would fail the same way; dropped with this batch.
      const rest = this.closed ? this.buffer.splice(0) : [];
      this.o.onDropped?.(batch.length + rest.length, 'write_failed', error);
    }
  }
}
