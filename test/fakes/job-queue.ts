// The job flow's RabbitMQ side and the outbox's marks in memory, for the fast tests: the parts of
// rabbitmq/job-queue.ts (publish with confirms, quarantine records, consumers) and jobs/publish-marks.ts
// the lifecycle and the scheduler take. The broker's own truths (confirms, redelivery) stay in
// integration tests.
import type { JobTicket } from '../../src/domain/job-ticket.js';
import type { JobConsumer } from '../../src/rabbitmq/job-queue.js';
import type { JobLifecycleDeps } from '../../src/jobs/lifecycle.service.js';
import type { SchedulerDeps } from '../../src/scheduler/scheduler.service.js';

type Deps = JobLifecycleDeps & SchedulerDeps;
type Queue = Deps['queue'];
type Marks = Deps['marks'];

export class FakeJobQueue implements Queue {
  readonly declared: string[] = [];
  readonly published: JobTicket[] = [];
  readonly quarantined: Array<{ jobId: string; reason: string }> = [];
  /** Consumers opened: `<model>.<priority>`. */
  readonly consumers: string[] = [];
  /** The next publishes the broker refuses (no confirm). */
  refusePublishes = 0;

  declareModel(model: string): Promise<void> {
    this.declared.push(model);
    return Promise.resolve();
  }

  publish(ticket: JobTicket): Promise<void> {
    if (this.refusePublishes > 0) {
      this.refusePublishes--;
      return Promise.reject(new Error('publish not confirmed (fake broker)'));
    }
    this.published.push(ticket);
    return Promise.resolve();
  }

  quarantine(jobId: string, reason: string): Promise<void> {
    this.quarantined.push({ jobId, reason });
    return Promise.resolve();
  }

  drainLegacyQueue(): Promise<number> {
    return Promise.resolve(0);
  }

  consume(model: string, priority: string): JobConsumer {
    this.consumers.push(`${model}.${priority}`);
    return { close: () => Promise.resolve(), on: () => undefined };
  }
}

/** The outbox's batched marks (jobs/publish-marks.ts): which jobs were confirmed, and which finished. */
export class FakePublishMarks implements Marks {
  readonly confirmedJobs: string[] = [];
  readonly finishedJobs: string[] = [];

  confirmed(jobId: string): void {
    this.confirmedJobs.push(jobId);
  }

  finished(jobId: string): void {
    this.finishedJobs.push(jobId);
  }
}
