// The job lifecycle steps that several roles take (cloud, io, scheduler, maintenance), in one place so
// that each is done the same way everywhere: publishing an accepted job (the outbox), ending an attempt
// without a result, and ending a job without a result. Each step is fenced in PostgreSQL, and only the
// caller that wins the fence does the follow-up work (return the node's slot, record the routing hop,
// quarantine, wake waiters), so nothing is done twice.
import type { Logger } from 'pino';
import type { Db } from '../postgres/db.js';
import { failAttempt, markPublished, type JobRow } from '../postgres/jobs.repository.js';
import type { PayloadsRepository } from '../mongo/payloads.repository.js';
import type { PresenceRepository } from '../redis/presence.repository.js';
import type { JobEvents } from '../redis/job-events.js';
import type { JobQueue } from '../rabbitmq/job-queue.js';
import type { SettlementService } from './settlement.service.js';
import type { NodeFlagsService } from '../network/node-flags.service.js';

export type AttemptOutcome = 'failed' | 'timeout' | 'disconnected' | 'invalid_result';

export class JobLifecycle {
  /** Models whose queue this process has declared (declaring is idempotent; this only saves round trips). */
  private readonly declared = new Set<string>();

  constructor(
    private readonly d: {
      db: Db;
      settlement: SettlementService;
      payloads: PayloadsRepository;
      presence: PresenceRepository;
      events: JobEvents;
      queue: JobQueue;
      nodeFlags: NodeFlagsService;
      logger: Logger;
    },
  ) {}

  /**
   * Publishes an accepted job with confirms and marks it published. Returns false on failure, which is
   * not the job's failure: the job row is the outbox, and the maintenance role republishes it later.
   */
  async publish(job: Pick<JobRow, 'id' | 'model' | 'priority' | 'deadline_at'>): Promise<boolean> {
    try {
      if (!this.declared.has(job.model)) {
        await this.d.queue.declareModel(job.model);
        this.declared.add(job.model);
      }
      await this.d.queue.publish(job.model, job.priority, job.id, job.deadline_at.getTime() - Date.now());
      await markPublished(this.d.db, job.id);
      return true;
    } catch (err) {
      this.d.logger.warn({ err, jobId: job.id }, 'publish failed; the outbox will retry');
      return false;
    }
  }

  /** Ends a running attempt without a result, if it is still current; the scheduler then retries the job. */
  async failAttempt(jobId: string, attempt: number, nodeId: string, outcome: AttemptOutcome, reason: string): Promise<boolean> {
    if (!(await failAttempt(this.d.db, jobId, attempt, outcome, reason))) return false;
    await this.d.presence.release(nodeId, jobId);
    await this.d.payloads.appendTrace(jobId, { attempt, nodeId, at: new Date(), outcome, reason });
    await this.d.events.publish({ kind: 'attempt_failed', jobId, attempt, reason: outcome });
    this.d.logger.info({ jobId, attempt, node: nodeId, outcome, reason }, 'attempt failed');
    // The node's own failures count toward its cooldown; a dropped connection is its absence, not a fault.
    if (outcome !== 'disconnected') await this.d.nodeFlags.recordFailure(nodeId, outcome);
    return true;
  }

  /** Ends an unfinished job as failed or expired, releasing its whole hold; null when it had already ended. */
  async endWithoutResult(jobId: string, status: 'failed' | 'expired', code: string, message: string): Promise<JobRow | null> {
    const row = await this.d.settlement.endWithoutResult(jobId, status, code, message);
    if (!row) return null;
    // An attempt cut short by this still held a slot on its node; nobody else will return it.
    if (row.interrupted_node_id) await this.d.presence.release(row.interrupted_node_id, jobId);
    this.d.logger.info({ jobId, status, code }, 'job ended without a result; hold released');
    await this.d.events.publish({ kind: 'finished', jobId });
    await this.d.queue.quarantine(jobId, code).catch((err: unknown) => this.d.logger.warn({ err, jobId }, 'quarantine record not published'));
    return row;
  }
}
