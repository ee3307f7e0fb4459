// In-memory QuarantineStore (gate/quarantine.service.ts) for the service's fast tests.
import type { ApiKeyRow } from '../../src/postgres/api-keys.repository.js';
import type { JobRow } from '../../src/postgres/jobs.repository.js';
import type { QuarantineRow } from '../../src/postgres/quarantine.repository.js';
import type { QuarantineStore, QuarantineTx } from '../../src/gate/quarantine.service.js';
import { FakeDatabase } from './fake-database.js';

interface Entry extends QuarantineRow {
  resolution: 'requeued' | 'discarded' | null;
  requeuedJobId: string | null;
}

export class FakeQuarantineStore implements QuarantineStore {
  readonly db = new FakeDatabase({
    entries: new Map<string, Entry>(),
    jobs: new Map<string, JobRow>(),
    keys: new Map<string, ApiKeyRow>(),
  });

  /** A job that ended without a result, on its key, quarantined. */
  quarantine(job: Partial<JobRow> & { id: string; api_key_id: string }, key: Partial<ApiKeyRow> = {}): void {
    const s = this.db.state;
    s.jobs.set(job.id, { namespace_id: 'ns-1', model: 'org/m', region: null, priority: 'standard', status: 'failed', ...job } as JobRow);
    s.keys.set(job.api_key_id, {
      id: job.api_key_id,
      namespace_id: 'ns-1',
      key_prefix: 'rk_x',
      name: '',
      rate_limit_rps: null,
      rate_limit_burst: null,
      monthly_cap_micro: null,
      expires_at: null,
      last_used_at: null,
      created_at: new Date(),
      revoked_at: null,
      ...key,
    });
    s.entries.set(job.id, { job_id: job.id, namespace_id: 'ns-1', model: 'org/m', status: 'failed', reason: 'attempts_exhausted', error_message: null, attempts: 3, quarantined_at: new Date(), resolution: null, requeuedJobId: null });
  }

  private resolveEntry(jobId: string, resolution: 'requeued' | 'discarded', requeuedJobId: string | null): boolean {
    this.db.call('resolve');
    const e = this.db.state.entries.get(jobId);
    if (!e || e.resolution !== null) return false;
    e.resolution = resolution;
    e.requeuedJobId = requeuedJobId;
    return true;
  }

  list(limit: number): Promise<QuarantineRow[]> {
    return Promise.resolve([...this.db.state.entries.values()].filter((e) => e.resolution === null).slice(0, limit));
  }

  resolve(jobId: string, resolution: 'requeued' | 'discarded', requeuedJobId: string | null): Promise<boolean> {
    return Promise.resolve(this.resolveEntry(jobId, resolution, requeuedJobId));
  }

  transaction<T>(fn: (tx: QuarantineTx) => Promise<T>): Promise<T> {
    return this.db.transaction(() =>
      fn({
        lockOpen: (jobId) => Promise.resolve(this.db.state.entries.get(jobId)?.resolution === null),
        findJob: (jobId) => Promise.resolve(this.db.state.jobs.get(jobId) ?? null),
        findApiKey: (keyId) => Promise.resolve(this.db.state.keys.get(keyId) ?? null),
        resolve: (jobId, resolution, requeuedJobId) => Promise.resolve(this.resolveEntry(jobId, resolution, requeuedJobId)),
      }),
    );
  }
}
