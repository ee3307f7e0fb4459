// In-memory InferenceStore and the other ports of InferenceService (cloud/inference.service.ts) for its
// fast tests. The store also answers for the settlement's acceptWithHold (jobs/settlement.service.ts):
// the job row, its idempotency key and its hold are written together or not at all, with the refusals
// the engine gives (key in use, insufficient credits, monthly cap). Balances are kept as available
// credits per namespace; the ledger's postings themselves are the settlement's tests' business.
import type { CloudDeps, InferencePayloads, InferenceStore } from '../../src/cloud/inference.service.js';
import { errors } from '../../src/errors.js';
import type { JobEnding } from '../../src/domain/job-states.js';
import type { JobTicket } from '../../src/domain/job-ticket.js';
import type { Placement } from '../../src/domain/eligibility.js';
import type { IdempotencyRecord } from '../../src/postgres/idempotency.repository.js';
import { jobRowOf, type JobRow, type NewJob } from '../../src/postgres/jobs.repository.js';
import { IdempotencyKeyInUse } from '../../src/postgres/settlement-batch.repository.js';
import type { PayloadDoc } from '../../src/mongo/payloads.repository.js';
import type { InflightAttempt } from '../../src/redis/inflight.repository.js';
import { FakeDatabase } from './fake-database.js';

export class FakeInferenceStore implements InferenceStore, Pick<CloudDeps['settlement'], 'acceptWithHold'> {
  readonly db = new FakeDatabase({
    jobs: new Map<string, JobRow>(),
    /**
     * `${namespaceId}/${key}` -> the job it names and its request's hash in hex (a Buffer would come back
     * from a rolled-back transaction's structuredClone as a bare Uint8Array)
     */
    idempotency: new Map<string, { jobId: string; requestHashHex: string }>(),
    /** namespace -> available credits (micro) */
    available: new Map<string, number>(),
    /** job id -> its hold (micro) */
    holds: new Map<string, number>(),
  });

  findJob(id: string): Promise<JobRow | null> {
    this.db.call('findJob');
    return Promise.resolve(this.copy(this.db.state.jobs.get(id)));
  }

  findJobInNamespace(id: string, namespaceId: string): Promise<JobRow | null> {
    this.db.call('findJobInNamespace');
    const job = this.db.state.jobs.get(id);
    return Promise.resolve(job?.namespace_id === namespaceId ? this.copy(job) : null);
  }

  findIdempotencyKey(namespaceId: string, key: string): Promise<IdempotencyRecord | null> {
    this.db.call('findIdempotencyKey');
    const found = this.db.state.idempotency.get(`${namespaceId}/${key}`);
    return Promise.resolve(found ? { job_id: found.jobId, request_hash: Buffer.from(found.requestHashHex, 'hex') } : null);
  }

  acceptWithHold(job: NewJob, keyMonthlyCapMicro: number | null, idempotency?: { key: string; requestHash: Buffer }): Promise<JobRow> {
    return this.db.transaction(() => {
      this.db.call('acceptWithHold');
      const s = this.db.state;
      const row = jobRowOf(job);
      s.jobs.set(job.id, row);
      if (idempotency) {
        const k = `${job.namespaceId}/${idempotency.key}`;
        if (s.idempotency.has(k)) throw new IdempotencyKeyInUse(idempotency.key);
        s.idempotency.set(k, { jobId: job.id, requestHashHex: idempotency.requestHash.toString('hex') });
      }
      const available = s.available.get(job.namespaceId) ?? 0;
      if (available < job.holdMicro) throw errors.insufficientCredits(job.holdMicro, available);
      if (keyMonthlyCapMicro !== null && job.holdMicro > keyMonthlyCapMicro) throw errors.monthlyCapReached(job.holdMicro, keyMonthlyCapMicro);
      s.available.set(job.namespaceId, available - job.holdMicro);
      s.holds.set(job.id, job.holdMicro);
      return Promise.resolve(row);
    });
  }

  /** Sets a job's row as the engine would after it ran (for the waits and reads). */
  update(jobId: string, change: Partial<JobRow>): void {
    const job = this.db.state.jobs.get(jobId)!;
    this.db.state.jobs.set(jobId, { ...job, ...change });
  }

  private copy(job: JobRow | undefined): JobRow | null {
    return job ? { ...job } : null;
  }
}

/** MongoDB's payloads as the service sees them: inputs written behind, documents read by id. */
export class FakePayloads implements InferencePayloads {
  readonly inputs = new Map<string, { namespaceId: string; retentionHours: number }>();
  readonly docs = new Map<string, PayloadDoc>();
  readonly writtenNow: string[] = [];
  failInserts = false;

  insertInput(doc: { jobId: string; namespaceId: string; model: string; retentionHours: number }): Promise<void> {
    if (this.failInserts) return Promise.reject(new Error('MongoDB unreachable (fake)'));
    this.inputs.set(doc.jobId, { namespaceId: doc.namespaceId, retentionHours: doc.retentionHours });
    return Promise.resolve();
  }

  writeInputNow(jobId: string): void {
    this.writtenNow.push(jobId);
  }

  find(jobId: string, namespaceId: string): Promise<PayloadDoc | null> {
    const doc = this.docs.get(jobId);
    return Promise.resolve(doc?.namespaceId === namespaceId ? doc : null);
  }
}

/** Presence in Redis: how many eligible nodes are online for a placement (`online` by model). */
export class FakePresence implements Pick<CloudDeps['presence'], 'liveNodeCount'> {
  readonly online = new Map<string, number>();
  readonly asked: Placement[] = [];
  failure: Error | null = null;

  liveNodeCount(placement: Placement): Promise<number> {
    this.asked.push(placement);
    if (this.failure) return Promise.reject(this.failure);
    return Promise.resolve(Math.min(1, this.online.get(placement.model) ?? 0));
  }
}

/** The lifecycle's publish (confirmed or not) and end, recorded; `end` ends the fake store's row. */
export class FakeLifecycle implements Pick<CloudDeps['lifecycle'], 'publish' | 'end'> {
  readonly published: JobTicket[] = [];
  readonly ended: Array<{ jobId: string; ending: JobEnding }> = [];
  confirms = true;

  constructor(private readonly store: FakeInferenceStore) {}

  publish(ticket: JobTicket): Promise<boolean> {
    this.published.push(ticket);
    return Promise.resolve(this.confirms);
  }

  end(jobId: string, ending: JobEnding): Promise<JobRow | null> {
    this.ended.push({ jobId, ending });
    const job = this.store.db.state.jobs.get(jobId);
    if (!job || job.finished_at) return Promise.resolve(null);
    this.store.update(jobId, { status: ending.status, error_code: ending.code, error_message: ending.message, finished_at: new Date() });
    return Promise.resolve({ ...this.store.db.state.jobs.get(jobId)! });
  }
}

/** Attempts in flight in Redis, by job. */
export class FakeInflight implements Pick<CloudDeps['inflight'], 'current'> {
  readonly attempts = new Map<string, InflightAttempt>();
  current(jobId: string): Promise<InflightAttempt | null> {
    return Promise.resolve(this.attempts.get(jobId) ?? null);
  }
}
