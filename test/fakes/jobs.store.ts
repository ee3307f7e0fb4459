// In-memory job rows for the job flow's fast tests: the stores of jobs/lifecycle.service.ts
// (JobLifecycleStore), scheduler/scheduler.service.ts (SchedulerStore) and io/results.service.ts
// (ResultsStore), as postgres/jobs.store.ts is all three on the engine. Over the same fake tables as the
// settlement store (job-tables.ts), so that what one service writes another reads.
import type { JobRow } from '../../src/postgres/jobs.repository.js';
import type { AttemptEnd, JobLifecycleStore } from '../../src/jobs/lifecycle.service.js';
import type { SchedulerStore } from '../../src/scheduler/scheduler.service.js';
import type { ResultsStore } from '../../src/io/results.service.js';
import type { JobTables } from './job-tables.js';

export class FakeJobsStore implements JobLifecycleStore, SchedulerStore, ResultsStore {
  constructor(readonly tables: JobTables) {}

  private get db() {
    return this.tables.db;
  }

  findJob(jobId: string): Promise<JobRow | null> {
    this.db.call('findJob');
    const row = this.tables.state.jobs.get(jobId);
    if (!row) return Promise.resolve(null);
    const { streamed_attempt: _omitted, ...rest } = row;
    return Promise.resolve(structuredClone(rest));
  }

  streamedAttempt(jobId: string): Promise<number | null> {
    this.db.call('streamedAttempt');
    return Promise.resolve(this.tables.state.jobs.get(jobId)?.streamed_attempt ?? null);
  }

  /** Fenced as jobs.repository.ts failAttempt: an unfinished job whose attempt `a.attempt` has not ended. */
  failAttempt(a: AttemptEnd): Promise<{ namespaceId: string } | null> {
    return this.db.transaction(() => {
      this.db.call('failAttempt');
      const row = this.tables.state.jobs.get(a.jobId);
      const may =
        row !== undefined &&
        row.finished_at === null &&
        ((row.status !== 'running' && row.attempt < a.attempt) || (row.status === 'running' && row.attempt === a.attempt && row.node_id === a.nodeId));
      if (!may) return Promise.resolve(null);
      Object.assign(row, { attempt: a.attempt, status: 'queued' });
      this.tables.state.attempts.push({ jobId: a.jobId, attempt: a.attempt, nodeId: a.nodeId, outcome: a.outcome, reason: a.reason });
      return Promise.resolve({ namespaceId: row.namespace_id });
    });
  }

  markPublished(marks: ReadonlyArray<{ id: string; at: Date }>): Promise<void> {
    this.db.call('markPublished');
    for (const m of marks) {
      const row = this.tables.state.jobs.get(m.id);
      if (row && !row.published_at && !row.finished_at) {
        row.published_at = m.at;
        this.tables.state.published.set(m.id, m.at);
      }
    }
    return Promise.resolve();
  }

  listModels(): Promise<Array<{ name: string }>> {
    this.db.call('listModels');
    return Promise.resolve(this.tables.state.models.map((name) => ({ name })));
  }
}
