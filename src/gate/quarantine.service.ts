// The quarantine, for the platform's operators: jobs that ended without a result, listed with their
// reason, then re-queued (a new job with the same input, key and namespace, held and charged like any
// other; the original stays as it ended) or discarded.
import { errors } from '../errors.js';
import type { JobRequest } from '../domain/protocol.js';
import type { PriorityClass } from '../domain/priority.js';
import { withTransaction, type Db } from '../postgres/db.js';
import { findApiKey } from '../postgres/api-keys.repository.js';
import { findJob, type JobRow } from '../postgres/jobs.repository.js';
import { listQuarantine, lockOpenQuarantine, resolveQuarantine, type QuarantineRow } from '../postgres/quarantine.repository.js';
import type { PayloadsRepository } from '../mongo/payloads.repository.js';
import type { ApiKeyPrincipal } from '../domain/api-keys.js';

/** Accepts a job as if its key had submitted it (the public API's accept path), in the region and priority class it asked for. */
export type Resubmit = (principal: ApiKeyPrincipal, model: string, request: JobRequest, asked: { region: string | null; priority: PriorityClass }) => Promise<JobRow>;

export class QuarantineService {
  constructor(private readonly d: { db: Db; payloads: PayloadsRepository; resubmit: Resubmit }) {}

  list(limit = 100): Promise<QuarantineRow[]> {
    return listQuarantine(this.d.db, Math.min(Math.max(limit, 1), 1000));
  }

  async discard(jobId: string): Promise<void> {
    if (!(await resolveQuarantine(this.d.db, jobId, 'discarded', null))) throw errors.notFound('Open quarantine entry');
  }

  /** Submits the job again as a new job; returns it. The entry stays locked meanwhile, so it is re-queued once. */
  async requeue(jobId: string): Promise<JobRow> {
    return withTransaction(this.d.db, async (tx) => {
      if (!(await lockOpenQuarantine(tx, jobId))) throw errors.notFound('Open quarantine entry');
      const job = await findJob(tx, jobId);
      if (!job) throw errors.notFound('Job');
      const input = await this.d.payloads.findInput(jobId);
      if (!input) throw errors.conflict('The job input has expired; it cannot be re-queued.');
      const key = await findApiKey(tx, job.api_key_id);
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
      await resolveQuarantine(tx, jobId, 'requeued', fresh.id);
      return fresh;
    });
  }
}
