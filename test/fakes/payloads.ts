// The job flow's MongoDB side in memory, for the fast tests: the parts of mongo/payloads.repository.ts the
// lifecycle, scheduler and results services take (routing hops, stored inputs, result outputs). A failure
// set with `failNext` makes the next call of that operation reject, as a MongoDB outage would.
import type { JobRequest } from '../../src/domain/protocol.js';
import type { ResultToSave, RoutingHop } from '../../src/mongo/payloads.repository.js';
import type { JobLifecycleDeps } from '../../src/jobs/lifecycle.service.js';
import type { SchedulerDeps } from '../../src/scheduler/scheduler.service.js';
import type { ResultsDeps } from '../../src/io/results.service.js';

type Deps = JobLifecycleDeps & SchedulerDeps & ResultsDeps;
type Payloads = Deps['payloads'];

export class FakePayloads implements Payloads {
  readonly inputs = new Map<string, JobRequest>();
  /** `jobId#attempt` -> the saved result (keyed as the repository keys it). */
  readonly results = new Map<string, ResultToSave>();
  readonly traces: Array<{ jobId: string } & RoutingHop> = [];
  /** Calls of saveResult, including refused ones. */
  saveCalls = 0;
  private readonly failures = new Map<string, number>();

  /** The next `times` calls of `operation` reject. */
  failNext(operation: 'saveResult' | 'appendTrace' | 'findInput', times = 1): void {
    this.failures.set(operation, times);
  }

  findInput(jobId: string): Promise<JobRequest | null> {
    return this.failing('findInput') ?? Promise.resolve(this.inputs.get(jobId) ?? null);
  }

  saveResult(r: ResultToSave): Promise<void> {
    this.saveCalls++;
    return this.failing('saveResult') ?? Promise.resolve(void this.results.set(`${r.jobId}#${r.attempt}`, r));
  }

  appendTrace(jobId: string, hop: RoutingHop): Promise<void> {
    return this.failing('appendTrace') ?? Promise.resolve(void this.traces.push({ jobId, ...hop }));
  }

  private failing(operation: string): Promise<never> | null {
    const left = this.failures.get(operation) ?? 0;
    if (left <= 0) return null;
    this.failures.set(operation, left - 1);
    return Promise.reject(new Error(`${operation} failed (fake MongoDB)`));
  }
}
