// Cross-instance signals over Redis pub/sub: job lifecycle events (heard by every instance), freed node
// capacity (announced by the presence scripts), and job dispatches (heard by the one io instance that
// holds the target node's socket).
//
// Pub/sub is fire-and-forget: a lost event must only ever cost time, never correctness. Every waiter
// therefore also has a timeout after which it re-reads the authoritative job row in PostgreSQL.
import type { Redis } from 'ioredis';
import type { RedisKeys } from './client.js';
import type { JobDispatch } from '../domain/protocol.js';

export type JobEvent =
  | { kind: 'finished'; jobId: string }
  | { kind: 'attempt_failed'; jobId: string; attempt: number; reason: string };

type Listener = (event: JobEvent) => void;

export class JobEvents {
  private readonly listeners = new Map<string, Set<Listener>>();
  /** Waiting for a free slot, per model: in practice each scheduler's one dispatcher per model (model-dispatcher.ts). */
  private readonly capacityWaiters = new Map<string, Array<() => void>>();
  private dispatchHandler: ((d: JobDispatch & { nodeId: string }) => void) | null = null;

  constructor(
    private readonly pub: Redis,
    /** A dedicated connection: a Redis connection in subscribe mode can run no other command. */
    private readonly sub: Redis,
    private readonly keys: RedisKeys,
  ) {
    sub.on('message', (channel: string, raw: string) => this.onMessage(channel, raw));
  }

  async start(instanceId: string | null): Promise<void> {
    await this.sub.subscribe(this.keys.jobEvents(), this.keys.capacityEvents());
    if (instanceId) await this.sub.subscribe(this.keys.ioInstance(instanceId));
  }

  onDispatch(handler: (d: JobDispatch & { nodeId: string }) => void): void {
    this.dispatchHandler = handler;
  }

  async publish(event: JobEvent): Promise<void> {
    await this.pub.publish(this.keys.jobEvents(), JSON.stringify(event));
  }

  /** Sends a job to the io instance holding the node; false when no such instance is listening. */
  async dispatch(instanceId: string, d: JobDispatch & { nodeId: string }): Promise<boolean> {
    const receivers = await this.pub.publish(this.keys.ioInstance(instanceId), JSON.stringify(d));
    return receivers > 0;
  }

  /**
   * Resolves with the first event for `jobId` that `accept` takes, or null after `timeoutMs` or when the
   * signal aborts.
   */
  waitFor(jobId: string, accept: (e: JobEvent) => boolean, timeoutMs: number, signal?: AbortSignal): Promise<JobEvent | null> {
    return new Promise((resolve) => {
      const done = (e: JobEvent | null) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const set = this.listeners.get(jobId);
        set?.delete(listener);
        if (set?.size === 0) this.listeners.delete(jobId);
        resolve(e);
      };
      const listener: Listener = (e) => {
        if (accept(e)) done(e);
      };
      const onAbort = () => done(null);
      const timer = setTimeout(() => done(null), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      let set = this.listeners.get(jobId);
      if (!set) this.listeners.set(jobId, (set = new Set()));
      set.add(listener);
    });
  }

  /**
   * Resolves when a slot on a node serving `model` is announced (waking one waiter per announcement on
   * this instance), or after `timeoutMs`, or when the signal aborts; the caller then tries to reserve.
   */
  waitForCapacity(model: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let queue = this.capacityWaiters.get(model);
      if (!queue) this.capacityWaiters.set(model, (queue = []));
      const waiters = queue;
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        const i = waiters.indexOf(done);
        if (i >= 0) waiters.splice(i, 1);
        if (waiters.length === 0 && this.capacityWaiters.get(model) === waiters) this.capacityWaiters.delete(model);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done, { once: true });
      waiters.push(done);
    });
  }

  private onMessage(channel: string, raw: string): void {
    if (channel === this.keys.capacityEvents()) {
      for (const model of raw.split(',')) this.capacityWaiters.get(model)?.[0]?.();
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      return;
    }
    if (channel === this.keys.jobEvents()) {
      const e = parsed as JobEvent;
      for (const l of [...(this.listeners.get(e.jobId) ?? [])]) l(e);
    } else {
      this.dispatchHandler?.(parsed as JobDispatch & { nodeId: string });
    }
  }
}
