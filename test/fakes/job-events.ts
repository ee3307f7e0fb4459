// In-process JobEvents (redis/job-events.ts) for fast tests: the same listener rules (a watch hears the
// job's 'finished' event from the moment it starts; waitFor takes the first event it accepts), with
// `emit` standing in for Redis pub/sub.
import type { FinishedEvent, JobEvent, JobEvents } from '../../src/redis/job-events.js';

type Listener = (event: JobEvent) => void;

export class FakeJobEvents implements Pick<JobEvents, 'watchFinished' | 'waitFor'> {
  private readonly listeners = new Map<string, Set<Listener>>();
  /** Jobs whose 'finished' event was watched, in order. */
  readonly watched: string[] = [];

  emit(event: JobEvent): void {
    for (const l of [...(this.listeners.get(event.jobId) ?? [])]) l(event);
  }

  /** How many listeners are still on (a closed watch must leave none). */
  listening(jobId: string): number {
    return this.listeners.get(jobId)?.size ?? 0;
  }

  watchFinished(jobId: string): { finished: Promise<FinishedEvent | null>; close(): void } {
    this.watched.push(jobId);
    let settle: (e: FinishedEvent | null) => void = () => undefined;
    const finished = new Promise<FinishedEvent | null>((resolve) => (settle = resolve));
    const listener: Listener = (e) => {
      if (e.kind === 'finished') close(e);
    };
    const close = (e: FinishedEvent | null = null) => {
      this.off(jobId, listener);
      settle(e);
    };
    this.on(jobId, listener);
    return { finished, close: () => close() };
  }

  waitFor(jobId: string, accept: (e: JobEvent) => boolean, timeoutMs: number, signal?: AbortSignal): Promise<JobEvent | null> {
    return new Promise((resolve) => {
      const done = (e: JobEvent | null) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.off(jobId, listener);
        resolve(e);
      };
      const listener: Listener = (e) => {
        if (accept(e)) done(e);
      };
      const onAbort = () => done(null);
      const timer = setTimeout(() => done(null), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.on(jobId, listener);
    });
  }

  private on(jobId: string, l: Listener): void {
    let set = this.listeners.get(jobId);
    if (!set) this.listeners.set(jobId, (set = new Set()));
    set.add(l);
  }

  private off(jobId: string, l: Listener): void {
    const set = this.listeners.get(jobId);
    set?.delete(l);
    if (set?.size === 0) this.listeners.delete(jobId);
  }
}
