// Signature verification off the event loop: `verifyMessageAsync` answers what `verifyMessage` answers,
// doing the public-key recovery (the expensive part, ~0.2 ms of WebAssembly here) on a worker thread when
// a pool is open in this process and the turn has more than a couple to do, or inline otherwise.
//
// One pool per process, shared by every backbone in it (tests run several) and reference-counted:
// `openVerifyPool` starts it or joins it, and the last handle closed stops its threads. Requests are
// batched per turn of the event loop (one postMessage per thread per turn); a thread takes the
// batch of whoever has the fewest pending. A thread that dies answers nothing: its pending requests are
// verified inline and it is replaced, so a crash costs time, never a wrong or lost verdict. Idle threads
// are unref'd: an open pool with nothing pending does not keep the process alive (a leaked handle still
// shows in the pool's own tests). Each message is still verified once: the object is marked verified
// (signatures.ts), so a later `verifyMessage` of it costs a canonical encoding.
import { Worker } from 'node:worker_threads';
import { markVerified, recoverPersonal, verificationOf, type Address } from './signatures.js';
import type { RecoverAnswer, RecoverRequest } from './verify-worker.js';

type SignedMessage = { type: string; signature: string } & Record<string, unknown>;

interface Pending {
  payload: string;
  signature: string;
  resolve: (signer: Address | null) => void;
}

/**
 * A turn's batch this small is verified on the event loop instead (about 0.2 ms each here, BENCHMARKS.md
 * fleet section): handing one check to a thread and taking its answer back costs more CPU and latency
 * than the check. Under load, batches are bigger and go to the threads.
 */
const INLINE_BATCH_MAX = 2;

class Thread {
  readonly pending = new Map<number, Pending>();
  /** Checks answered on the event loop and on the thread. */
  readonly counts = { inline: 0, offloaded: 0 };
  private outbox: RecoverRequest[] = [];
  private flushing = false;
  private readonly worker: Worker;
  /** Set when the thread was stopped on purpose: its exit is not a crash. */
  private stopping = false;

  constructor(private readonly onDeath: (t: Thread) => void) {
    this.worker = new Worker(new URL('./verify-worker.js', import.meta.url));
    this.worker.unref();
    // Node 20 refs a worker's port again when the thread comes online: unref it then too, unless busy.
    this.worker.on('online', () => {
      if (this.pending.size === 0) this.worker.unref();
    });
    this.worker.on('message', (answers: unknown) => this.answer(answers as RecoverAnswer[]));
    this.worker.on('error', () => undefined); // 'exit' follows and is handled there
    this.worker.on('exit', () => {
      if (!this.stopping) this.onDeath(this);
    });
  }

  enqueue(id: number, p: Pending): void {
    if (this.pending.size === 0) this.worker.ref();
    this.pending.set(id, p);
    this.outbox.push([id, p.payload, p.signature]);
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => this.flush());
    }
  }

  /** Answers every pending request inline (the thread is gone or going). */
  drainInline(): void {
    for (const p of this.pending.values()) p.resolve(recoverPersonal(p.payload, p.signature));
    this.pending.clear();
    this.outbox = [];
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.drainInline();
    await this.worker.terminate();
  }

  private flush(): void {
    this.flushing = false;
    if (this.outbox.length === 0) return;
    const batch = this.outbox;
    this.outbox = [];
    if (batch.length <= INLINE_BATCH_MAX) {
      // A turn's lone check or two: done here, for less than the hand-off to the thread and back costs.
      for (const [id, payload, signature] of batch) this.answerOne(id, recoverPersonal(payload, signature));
      this.counts.inline += batch.length;
      if (this.pending.size === 0) this.worker.unref();
      return;
    }
    this.counts.offloaded += batch.length;
    this.worker.postMessage(batch);
  }

  private answerOne(id: number, signer: Address | null): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    p.resolve(signer);
  }

  private answer(answers: RecoverAnswer[]): void {
    for (const [id, signer] of answers) this.answerOne(id, signer);
    if (this.pending.size === 0) this.worker.unref();
  }
}

export class VerifyPool {
  private threads: Thread[];
  private nextId = 0;
  private closed = false;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`a verify pool needs at least one thread (got ${size})`);
    this.threads = Array.from({ length: size }, () => this.spawn());
  }

  get size(): number {
    return this.threads.length;
  }

  /** Checks done so far on the event loop (small batches) and on the threads, by the threads alive now. */
  stats(): { inline: number; offloaded: number } {
    return this.threads.reduce((a, t) => ({ inline: a.inline + t.counts.inline, offloaded: a.offloaded + t.counts.offloaded }), { inline: 0, offloaded: 0 });
  }

  /** The signer of `payload` (recoverPersonal's answer), computed on the least busy thread. */
  recover(payload: string, signature: string): Promise<Address | null> {
    if (this.closed) return Promise.resolve(recoverPersonal(payload, signature));
    let best = this.threads[0]!;
    for (const t of this.threads) if (t.pending.size < best.pending.size) best = t;
    return new Promise((resolve) => best.enqueue(this.nextId++, { payload, signature, resolve }));
  }

  /** Answers what is pending (inline) and stops every thread. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.threads.map((t) => t.stop()));
    this.threads = [];
  }

  private spawn(): Thread {
    return new Thread((dead) => {
      dead.drainInline();
      const i = this.threads.indexOf(dead);
      if (i >= 0 && !this.closed) this.threads[i] = this.spawn();
    });
  }
}

let shared: { pool: VerifyPool; users: number } | null = null;

export interface VerifyPoolHandle {
  readonly threads: number;
  /** Leaves the pool; the last handle closed stops its threads. Idempotent. */
  close(): Promise<void>;
}

/**
 * Opens this process's verify pool with `threads` threads, or joins the one already open (whatever its
 * size). 0 threads: no pool, verification stays inline (a handle whose close does nothing).
 */
export function openVerifyPool(threads: number): VerifyPoolHandle {
  if (threads === 0) return { threads: 0, close: () => Promise.resolve() };
  const s = (shared ??= { pool: new VerifyPool(threads), users: 0 });
  s.users++;
  let open = true;
  return {
    threads: s.pool.size,
    close: async () => {
      if (!open) return;
      open = false;
      if (--s.users === 0) {
        if (shared === s) shared = null;
        await s.pool.close();
      }
    },
  };
}

/**
 * True when `message.signature` was made by `expected` over the message's other fields: the verdict of
 * verifyMessage, with the recovery on the pool's threads when one is open in this process. Resolves,
 * never rejects (a malformed signature is false).
 */
export async function verifyMessageAsync(message: SignedMessage, expected: string): Promise<boolean> {
  const { payload, signer, done } = verificationOf(message, expected);
  if (done) return true;
  const signature = message.signature;
  const recovered = shared ? await shared.pool.recover(payload, signature) : recoverPersonal(payload, signature);
  if (recovered !== signer) return false;
  // The mark names what was checked: a message changed meanwhile no longer matches it.
  markVerified(message, payload, signature, signer);
  return true;
}
