// Group commit: concurrent callers' operations are collected and run together, several per database
// round trip (PostgreSQL holds and settlements share one statement, one COMMIT and one WAL flush;
// MongoDB payload writes share one insertMany), instead of each paying for its own. Each caller still
// gets its own outcome.
//
// Batches form by themselves under load, without waiting: an operation submitted while fewer than
// `maxInFlight` batches run starts a batch at once (alone, if nothing else is waiting: no added latency
// when the system is idle); operations submitted while every slot is busy wait for the next free slot
// and go together, up to `maxItems` per batch. `lingerMs` > 0 additionally holds a batch back that long
// for more operations to join it (trading latency for fewer, larger transactions).

export interface GroupCommitOptions {
  /** Largest batch, >= 1. */
  maxItems: number;
  /** Batches running at once (each on its own database connection), >= 1. */
  maxInFlight: number;
  /** How long a batch may wait for company before it starts, ms (0: never waits). */
  lingerMs: number;
  /** Told each batch's size as it starts (metrics: the ledger's batch sizes). */
  onBatch?: (size: number) => void;
}

/** One operation's outcome inside a batch: a value, or the error that operation alone failed with. */
export type ItemOutcome<O> = { ok: true; value: O } | { ok: false; error: unknown };

/**
 * Runs a batch; must return one outcome per item, in order. When it throws, every item of the batch fails
 * with that error, so a runner that can isolate one item's failure must do so itself.
 */
export type BatchRunner<I, O> = (items: readonly I[]) => Promise<ReadonlyArray<ItemOutcome<O>>>;

interface Waiting<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (error: unknown) => void;
}

export class GroupCommit<I, O> {
  private readonly waiting: Array<Waiting<I, O>> = [];
  private inFlight = 0;
  private lingerTimer: NodeJS.Timeout | null = null;
  private lingerOver = false;
  private idle: Array<() => void> = [];

  constructor(
    private readonly run: BatchRunner<I, O>,
    private readonly opts: GroupCommitOptions,
  ) {
    if (!(opts.maxItems >= 1 && opts.maxInFlight >= 1 && opts.lingerMs >= 0)) throw new RangeError(`invalid group-commit options ${JSON.stringify(opts)}`);
  }

  /** Runs `item` in some batch; resolves or rejects with that item's own outcome. */
  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.pump();
    });
  }

  /** Resolves once no batch runs and none waits (for shutdown: callers stop submitting first). */
  drained(): Promise<void> {
    if (this.inFlight === 0 && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private pump(): void {
    while (this.inFlight < this.opts.maxInFlight && this.waiting.length > 0) {
      if (this.opts.lingerMs > 0 && !this.lingerOver && this.waiting.length < this.opts.maxItems) {
        this.lingerTimer ??= setTimeout(() => {
          this.lingerTimer = null;
          this.lingerOver = true;
          this.pump();
        }, this.opts.lingerMs);
        return;
      }
      if (this.lingerTimer) clearTimeout(this.lingerTimer);
      this.lingerTimer = null;
      this.lingerOver = false;
      void this.start(this.waiting.splice(0, this.opts.maxItems));
    }
    if (this.inFlight === 0 && this.waiting.length === 0) for (const done of this.idle.splice(0)) done();
  }

  private async start(batch: Array<Waiting<I, O>>): Promise<void> {
    this.inFlight++;
    this.opts.onBatch?.(batch.length);
    try {
      const outcomes = await this.run(batch.map((w) => w.item));
      if (outcomes.length !== batch.length) throw new Error(`batch runner returned ${outcomes.length} outcomes for ${batch.length} items`);
      batch.forEach((w, i) => {
        const o = outcomes[i]!;
        if (o.ok) w.resolve(o.value);
        else w.reject(o.error);
      });
    } catch (err) {
      for (const w of batch) w.reject(err);
    } finally {
      this.inFlight--;
      this.pump();
    }
  }
}
