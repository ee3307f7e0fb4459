// The quarantine, for the platform's operators: jobs that ended without a result, listed with their
// reason, then re-queued (a new job with the same input, key and namespace, held and charged like any
// other; the original stays as it ended) or discarded.
import { errors } from '../errors.js';
import type { JobRequest } from '../domain/protocol.js';
import type { PriorityClass } from '../domain/priority.js';
import type { ApiKeyRow } from '../postgres/api-keys.repository.js';
import type { JobRow } from '../postgres/jobs.repository.js';
import type { QuarantineRow } from '../postgres/quarantine.repository.js';
import type { PayloadsRepository } from '../mongo/payloads.repository.js';
import type { ApiKeyPrincipal } from '../domain/api-keys.js';

/** Accepts a job as if its key had submitted it (the public API's accept path), in the region and priority class it asked for. */
export type Resubmit = (principal: ApiKeyPrincipal, model: string, request: JobRequest, asked: { region: string | null; priority: PriorityClass }) => Promise<JobRow>;

/** What the service needs from PostgreSQL (postgres/quarantine.store.ts; in memory: test/fakes/quarantine.store.ts). */
export interface QuarantineStore {
  list(limit: number): Promise<QuarantineRow[]>;
  /** Resolves an open entry; false when there is none open for the job. */
  resolve(jobId: string, resolution: 'requeued' | 'discarded', requeuedJobId: string | null): Promise<boolean>;
  /** All of `fn` or none of it. */
  transaction<T>(fn: (tx: QuarantineTx) => Promise<T>): Promise<T>;
}

export interface QuarantineTx {
  /** Locks the job's open entry to the end of the transaction; false when there is none open. */
  lockOpen(jobId: string): Promise<boolean>;
  findJob(jobId: string): Promise<JobRow | null>;
  findApiKey(keyId: string): Promise<ApiKeyRow | null>;
  resolve(jobId: string, resolution: 'requeued' | 'discarded', requeuedJobId: string | null): Promise<boolean>;
}

export class QuarantineService {
  constructor(private readonly d: { store: QuarantineStore; payloads: Pick<PayloadsRepository, 'findInput'>; resubmit: Resubmit }) {}

  list(limit = 100): Promise<QuarantineRow[]> {
    return this.d.store.list(Math.min(Math.max(limit, 1), 1000));
  }

  async discard(jobId: string): Promise<void> {
    if (!(await this.d.store.resolve(jobId, 'discarded', null))) throw errors.notFound('Open quarantine entry');
  }

  /** Submits the job again as a new job; returns it. The entry stays locked meanwhile, so it is re-queued once. */
  async requeue(jobId: string): Promise<JobRow> {
    return this.d.store.transaction(async (tx) => {
      if (!(await tx.lockOpen(jobId))) throw errors.notFound('Open quarantine entry');
      const job = await tx.findJob(jobId);
      if (!job) throw errors.notFound('Job');
      const input = await this.d.payloads.findInput(jobId);
      if (!input) throw errors.conflict('The job input has expired; it cannot be re-queued.');
      const key = await tx.findApiKey(job.api_key_id);
      if (!key || key.revoked_at || (key.expires_at && key.expires_at.getTime() <= Date.now())) {
        throw errors.conflict("The job's API key is no longer active; it cannot be re-queued on its behalf.");
      }
      const fresh = await this.d.resubmit(
        {
          keyId: key.id,
          namespaceId: key.namespace_id,
          rateLimitRps: key.rate_limit_rps,
          rateLimitBurst: key.rate_limit_burst,
          monthlyCapMicro: key.monthly_cap_micro,
          expiresAt: key.expires_at?.getTime() ?? null,
        },
        job.model,
        input,
        { region: job.region, priority: job.priority },
      );
      await tx.resolve(jobId, 'requeued', fresh.id);
      return fresh;
    });
  }
}
