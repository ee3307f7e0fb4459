// The job flow's Redis side in memory, for the fast tests: node presence and slots, each job's in-flight
// record, the job events every instance hears, streamed text and usage samples. One object plays each of
// the Redis classes the services take (the Pick<> types in their deps: presence, inflight, events, streams,
// usageSamples), because on the engine they share one keyspace: a reservation starts the in-flight record,
// a completion returns the slot and publishes the event. Fakes of the project's own classes, never of
// ioredis; the scripts' atomicity stays in the integration tests.
import type { Placement } from '../../src/domain/eligibility.js';
import type { UsageSample } from '../../src/domain/usage-bounds.js';
import type { AttemptClaim, Reservation } from '../../src/redis/presence.repository.js';
import type { InflightAttempt } from '../../src/redis/inflight.repository.js';
import type { DispatchEnvelope, JobEvent } from '../../src/redis/job-events.js';
import type { JobLifecycleDeps } from '../../src/jobs/lifecycle.service.js';
import type { SchedulerDeps } from '../../src/scheduler/scheduler.service.js';
import type { ResultsDeps } from '../../src/io/results.service.js';

interface FakeNode {
  instance: string;
  models: string[];
  slots: number;
  /** Jobs holding a slot. */
  running: Set<string>;
  online: boolean;
}

type Deps = JobLifecycleDeps & SchedulerDeps & ResultsDeps;
type Presence = Deps['presence'];
type Inflight = Deps['inflight'];
type Events = Deps['events'];
type Streams = Deps['streams'];
type UsageSamples = Deps['usageSamples'];

export class FakeLiveState implements Presence, Inflight, Events, Streams, UsageSamples {
  readonly nodes = new Map<string, FakeNode>();
  readonly records = new Map<string, InflightAttempt>();
  /** Every job event published, in order. */
  readonly published: JobEvent[] = [];
  /** Every dispatch delivered to an io instance, in order. */
  readonly dispatched: DispatchEnvelope[] = [];
  /** io instances holding node sockets: a dispatch to any other is not delivered. */
  readonly instances = new Set<string>(['io-1']);
  /** `jobId#attempt` -> the text streamed so far. */
  readonly streamed = new Map<string, string>();
  readonly samples = new Map<string, UsageSample[]>();
  /** Slots returned: [node, job]. */
  readonly releases: Array<[string, string]> = [];
  /** What the node does with a dispatch (the test's node): answer through the services, or stay silent. */
  onDispatch: (d: DispatchEnvelope) => void = () => undefined;
  private readonly listeners = new Set<(e: JobEvent) => void>();
  private readonly capacityWaiters = new Set<() => void>();

  addNode(nodeId: string, opts: { models?: string[]; slots?: number; instance?: string } = {}): void {
    this.nodes.set(nodeId, { instance: opts.instance ?? 'io-1', models: opts.models ?? ['m'], slots: opts.slots ?? 1, running: new Set(), online: true });
    this.announceCapacity();
  }

  // --- presence (redis/presence.repository.ts) ---

  reserveAttempt(placement: Placement, jobId: string, exclude: readonly string[], claim: AttemptClaim): Promise<Reservation | 'fenced' | null> {
    const record = this.records.get(jobId);
    if (record && (record.done || claim.attempt <= record.attempt)) return Promise.resolve('fenced');
    for (const [nodeId, n] of this.nodes) {
      if (!n.online || !n.models.includes(placement.model) || exclude.includes(nodeId) || n.running.size >= n.slots) continue;
      n.running.add(jobId);
      this.records.set(jobId, { attempt: claim.attempt, nodeId, instance: n.instance, startedAt: Date.now(), done: false });
      return Promise.resolve({ nodeId, instance: n.instance });
    }
    return Promise.resolve(null);
  }

  release(nodeId: string, jobId: string, unclaim?: number): Promise<void> {
    this.releaseSlot(nodeId, jobId);
    if (unclaim !== undefined && this.records.get(jobId)?.attempt === unclaim) this.records.delete(jobId);
    return Promise.resolve();
  }

  liveNodeCount(placement: Placement, atMost = 0): Promise<number> {
    const live = [...this.nodes.values()].filter((n) => n.online && n.models.includes(placement.model)).length;
    return Promise.resolve(atMost > 0 ? Math.min(live, atMost) : live);
  }

  remove(nodeId: string): Promise<void> {
    const n = this.nodes.get(nodeId);
    if (n) n.online = false;
    return Promise.resolve();
  }

  // --- inflight (redis/inflight.repository.ts) ---

  current(jobId: string): Promise<InflightAttempt | null> {
    const r = this.records.get(jobId);
    return Promise.resolve(r ? { ...r } : null);
  }

  completed(nodeId: string, jobId: string, event: JobEvent): Promise<void> {
    this.releaseSlot(nodeId, jobId);
    const r = this.records.get(jobId);
    if (r) r.done = true;
    return this.publish(event);
  }

  async ended(jobId: string, event: JobEvent): Promise<string | null> {
    const r = this.records.get(jobId);
    let released: string | null = null;
    if (r && !r.done && this.nodes.get(r.nodeId)?.running.has(jobId)) {
      this.releaseSlot(r.nodeId, jobId);
      released = r.nodeId;
    }
    if (r) r.done = true;
    await this.publish(event);
    return released;
  }

  // --- events (redis/job-events.ts) ---

  publish(event: JobEvent): Promise<void> {
    this.published.push(event);
    for (const l of [...this.listeners]) l(event);
    return Promise.resolve();
  }

  dispatch(instanceId: string, d: DispatchEnvelope): Promise<boolean> {
    if (!this.instances.has(instanceId)) return Promise.resolve(false);
    this.dispatched.push(d);
    // The node answers later, as over a socket: never inside the scheduler's own call.
    setImmediate(() => this.onDispatch(d));
    return Promise.resolve(true);
  }

  waitFor(jobId: string, accept: (e: JobEvent) => boolean, timeoutMs: number, signal?: AbortSignal): Promise<JobEvent | null> {
    return new Promise((resolve) => {
      const done = (e: JobEvent | null) => {
        clearTimeout(timer);
        this.listeners.delete(listener);
        signal?.removeEventListener('abort', aborted);
        resolve(e);
      };
      const listener = (e: JobEvent) => {
        if (e.jobId === jobId && accept(e)) done(e);
      };
      const aborted = () => done(null);
      const timer = setTimeout(() => done(null), timeoutMs);
      this.listeners.add(listener);
      signal?.addEventListener('abort', aborted, { once: true });
      if (signal?.aborted) done(null);
    });
  }

  waitForCapacity(_model: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.capacityWaiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.capacityWaiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
      if (signal?.aborted) done();
    });
  }

  // --- streams (redis/job-streams.ts) and usage samples (redis/usage-samples.repository.ts) ---

  text(jobId: string, attempt: number): Promise<string | null> {
    return Promise.resolve(this.streamed.get(`${jobId}#${attempt}`) ?? null);
  }

  ofModel(model: string): Promise<UsageSample[]> {
    return Promise.resolve(this.samples.get(model) ?? []);
  }

  /** Jobs holding a slot on the node. */
  running(nodeId: string): string[] {
    return [...(this.nodes.get(nodeId)?.running ?? [])];
  }

  /** Events published for one job, as `kind` or `kind:detail` (the attempt failed, the status finished). */
  eventsOf(jobId: string): string[] {
    return this.published.filter((e) => e.jobId === jobId).map((e) => (e.kind === 'attempt_failed' ? `attempt_failed:${e.attempt}:${e.reason}` : `finished:${e.status ?? ''}`));
  }

  private releaseSlot(nodeId: string, jobId: string): void {
    if (this.nodes.get(nodeId)?.running.delete(jobId)) {
      this.releases.push([nodeId, jobId]);
      this.announceCapacity();
    }
  }

  private announceCapacity(): void {
    for (const w of [...this.capacityWaiters]) w();
  }
}
