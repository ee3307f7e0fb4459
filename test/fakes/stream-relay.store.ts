// In-memory StreamRelayStore, attempt streams and wake-ups (cloud/stream-relay.service.ts) for the relay's
// fast tests. The store keeps the commit's fence as the engine states it (postgres/job-streams.repository.ts):
// an attempt is recorded as the client's only while it has not ended, and only one attempt ever is.
import type { StreamRelayDeps, StreamRelayStore } from '../../src/cloud/stream-relay.service.js';
import type { JobRow } from '../../src/postgres/jobs.repository.js';
import type { StreamEntry, StreamWatch } from '../../src/redis/job-streams.js';
import { FakeDatabase } from './fake-database.js';

export class FakeStreamRelayStore implements StreamRelayStore {
  readonly db = new FakeDatabase({
    jobs: new Map<string, JobRow>(),
    /** job id -> the attempt recorded as the one its client reads */
    streamed: new Map<string, number>(),
  });

  put(job: JobRow): void {
    this.db.state.jobs.set(job.id, { ...job });
  }

  update(jobId: string, change: Partial<JobRow>): void {
    this.put({ ...this.db.state.jobs.get(jobId)!, ...change });
  }

  findJob(id: string): Promise<JobRow | null> {
    this.db.call('findJob');
    const job = this.db.state.jobs.get(id);
    return Promise.resolve(job ? { ...job } : null);
  }

  commitStreamedAttempt(jobId: string, attempt: number): Promise<boolean> {
    return this.db.transaction(() => {
      this.db.call('commitStreamedAttempt');
      const job = this.db.state.jobs.get(jobId);
      const recorded = this.db.state.streamed.get(jobId);
      const current = job !== undefined && job.finished_at === null && (job.status === 'running' ? job.attempt === attempt : job.attempt < attempt);
      if (!current || (recorded !== undefined && recorded !== attempt)) return Promise.resolve(false);
      this.db.state.streamed.set(jobId, attempt);
      return Promise.resolve(true);
    });
  }
}

/** Each attempt's chunks, with Redis-like entry ids; an append wakes the job's watchers. */
export class FakeJobStreams implements Pick<StreamRelayDeps['streams'], 'read'> {
  private readonly entries = new Map<string, StreamEntry[]>();
  private seq = 0;

  constructor(private readonly wakeups: FakeStreamWakeups) {}

  append(jobId: string, attempt: number, ...deltas: string[]): void {
    const key = `${jobId}/${attempt}`;
    const list = this.entries.get(key) ?? [];
    for (const delta of deltas) list.push({ id: `${++this.seq}-0`, delta });
    this.entries.set(key, list);
    this.wakeups.wake(jobId);
  }

  read(jobId: string, attempt: number, afterId: string | null, count: number): Promise<StreamEntry[]> {
    const list = this.entries.get(`${jobId}/${attempt}`) ?? [];
    const from = afterId === null ? 0 : list.findIndex((e) => e.id === afterId) + 1;
    return Promise.resolve(list.slice(from, from + count));
  }
}

/** Wake-ups per job, as redis/job-streams.ts StreamWakeups gives them to this instance's readers. */
export class FakeStreamWakeups implements Pick<StreamRelayDeps['wakeups'], 'watch'> {
  private readonly watchers = new Map<string, Set<{ pending: boolean; wake: ((woken: boolean) => void) | null }>>();
  closed = 0;

  wake(jobId: string): void {
    for (const w of this.watchers.get(jobId) ?? []) {
      w.pending = true;
      w.wake?.(true);
    }
  }

  open(jobId: string): number {
    return this.watchers.get(jobId)?.size ?? 0;
  }

  watch(jobId: string): Promise<StreamWatch> {
    const state = { pending: false, wake: null as ((woken: boolean) => void) | null };
    let set = this.watchers.get(jobId);
    if (!set) this.watchers.set(jobId, (set = new Set()));
    set.add(state);
    const watch: StreamWatch = {
      wait: (timeoutMs, signal) =>
        new Promise<boolean>((resolve) => {
          if (state.pending) {
            state.pending = false;
            return resolve(true);
          }
          const done = (woken: boolean) => {
            clearTimeout(timer);
            signal?.removeEventListener('abort', onAbort);
            state.wake = null;
            state.pending = false;
            resolve(woken);
          };
          const onAbort = () => done(false);
          const timer = setTimeout(() => done(false), timeoutMs);
          signal?.addEventListener('abort', onAbort, { once: true });
          state.wake = done;
        }),
      poke: () => {
        state.pending = true;
        state.wake?.(true);
      },
      close: () => {
        set.delete(state);
        if (set.size === 0) this.watchers.delete(jobId);
        this.closed++;
        return Promise.resolve();
      },
    };
    return Promise.resolve(watch);
  }
}
