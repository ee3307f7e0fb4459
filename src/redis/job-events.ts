// Cross-instance signals over Redis pub/sub: job lifecycle events (heard by every instance), freed node
// capacity (announced by the presence scripts), and job dispatches (heard by the one io instance that
// holds the target node's socket).
//
// Pub/sub is fire-and-forget: a lost event must only ever cost time, never correctness. Every waiter
// therefore also has a timeout after which it re-reads the authoritative job row in PostgreSQL.
import type { RedisClient, RedisKeys } from './client.js';
import { onMessage, publish, subscribe } from './pubsub.js';
import type { JobDispatch, JobOutput, Usage } from '../domain/protocol.js';
import type { TerminalStatus } from '../domain/job-states.js';
import type { JobTerms } from '../domain/job-ticket.js';

/**
 * A job reached its terminal state. It carries what a waiting request answers with (the output, usage
 * and charge of a completed job; the code and message of one that failed), so that the waiter reads
 * nothing back. Older senders sent `jobId` alone: a waiter that gets no `status` reads the job's row.
 */
export interface FinishedEvent {
  kind: 'finished';
  jobId: string;
  status?: TerminalStatus;
  completed?: { attempt: number; output: JobOutput; usage: Usage; chargedMicro: number };
  error?: { code: string; message: string };
}

export type JobEvent = FinishedEvent | { kind: 'attempt_failed'; jobId: string; attempt: number; reason: string };

/**
 * What the scheduler hands the io instance holding a node: the network-signed dispatch, the node, and
 * the job's terms (domain/job-ticket.ts) with the job's bounds, so that the gateway can settle the
 * node's result without reading the job's row.
 */
/**
 * A dispatch as it travels to the gateway holding the node: the signed job, and beside it what the gateway
 * needs to settle or judge the attempt without reading the job back. `jobDeadlineAt`: the job's own deadline
 * (ms), which tells the client's cut from the node's failure (absent from envelopes of older versions).
 */
export type DispatchEnvelope = JobDispatch & { nodeId: string; namespaceId: string; terms: JobTerms; startedAt: number; jobDeadlineAt?: number };

type Listener = (event: JobEvent) => void;

export class JobEvents {
  private readonly listeners = new Map<string, Set<Listener>>();
  /** Waiting for a free slot, per model: in practice each scheduler's one dispatcher per model (model-dispatcher.ts). */
  private readonly capacityWaiters = new Map<string, Array<() => void>>();
  private dispatchHandler: ((d: DispatchEnvelope) => void) | null = null;
  private readonly finishedHandlers: Array<(jobId: string) => void> = [];
  private readonly cancelledHandlers: Array<(jobId: string) => void> = [];

  constructor(
    private readonly pub: RedisClient,
    /** A dedicated connection: a Redis connection in subscribe mode can run no other command. */
    private readonly sub: RedisClient,
    private readonly keys: RedisKeys,
  ) {
    onMessage(sub, (channel, raw) => this.onMessage(channel, raw));
  }

  async start(instanceId: string | null): Promise<void> {
    // Two calls: on a cluster one subscription's channels share a slot (the first two the live tag's).
    await subscribe(this.sub, this.keys.jobEvents(), this.keys.capacityEvents());
    if (instanceId) await subscribe(this.sub, this.keys.ioInstance(instanceId));
  }

  /** Called for every job that finished, on every instance (jobs/publish-marks.ts drops its pending mark). */
  onAnyFinished(handler: (jobId: string) => void): void {
    this.finishedHandlers.push(handler);
  }

  /** Called for every job cancelled by its client, on every instance (the io gateway stops it on its node). */
  onCancelled(handler: (jobId: string) => void): void {
    this.cancelledHandlers.push(handler);
  }

  onDispatch(handler: (d: DispatchEnvelope) => void): void {
    this.dispatchHandler = handler;
  }

  async publish(event: JobEvent): Promise<void> {
    await publish(this.pub, this.keys.jobEvents(), JSON.stringify(event));
  }

  /** Sends a job to the io instance holding the node; false when no such instance is listening. */
  async dispatch(instanceId: string, d: DispatchEnvelope): Promise<boolean> {
    const receivers = await publish(this.pub, this.keys.ioInstance(instanceId), JSON.stringify(d));
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
   * Starts listening for the job's 'finished' event now, before the caller reads or publishes anything,
   * so that no event can fall between a read and the wait. `finished` resolves with the event, or with
   * null once `close` is called; call `close` in every case.
   */
  watchFinished(jobId: string): { finished: Promise<FinishedEvent | null>; close(): void } {
    let settle: (e: FinishedEvent | null) => void = () => undefined;
    const finished = new Promise<FinishedEvent | null>((resolve) => (settle = resolve));
    const listener: Listener = (e) => {
      if (e.kind === 'finished') close(e);
    };
    let set = this.listeners.get(jobId);
    if (!set) this.listeners.set(jobId, (set = new Set()));
    set.add(listener);
    const close = (e: FinishedEvent | null = null) => {
      const s = this.listeners.get(jobId);
      s?.delete(listener);
      if (s?.size === 0) this.listeners.delete(jobId);
      settle(e);
    };
    return { finished, close: () => close() };
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
      if (e.kind === 'finished') for (const h of this.finishedHandlers) h(e.jobId);
      if (e.kind === 'finished' && e.status === 'cancelled') for (const h of this.cancelledHandlers) h(e.jobId);
      for (const l of [...(this.listeners.get(e.jobId) ?? [])]) l(e);
    } else {
      this.dispatchHandler?.(parsed as DispatchEnvelope);
    }
  }
}
