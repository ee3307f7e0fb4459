// The job lifecycle steps that several roles take (cloud, io, scheduler, maintenance), in one place so
// that each is done the same way everywhere: publishing an accepted job (the outbox), ending an attempt
// without a result, and ending a job without a result. Each step is fenced in PostgreSQL, and only the
// caller that wins the fence does the follow-up work (return the node's slot, record the routing hop,
// quarantine, wake waiters), so nothing is done twice.
import type { Logger } from 'pino';
import type { JobRow } from '../postgres/jobs.repository.js';
import type { PayloadsRepository } from '../mongo/payloads.repository.js';
import type { PresenceRepository } from '../redis/presence.repository.js';
import type { InflightRepository } from '../redis/inflight.repository.js';
import type { JobEvents } from '../redis/job-events.js';
import type { JobQueue } from '../rabbitmq/job-queue.js';
import type { JobTicket } from '../domain/job-ticket.js';
import type { JobEnding } from '../domain/job-states.js';
import type { DeliveredPart, SettlementService } from './settlement.service.js';
import type { JobStreams } from '../redis/job-streams.js';
import type { UsageRules } from '../catalog/usage-rules.js';
import type { UsageSamples } from '../redis/usage-samples.repository.js';
import { deliveredTokens, medianTokensPerByte } from '../domain/usage-bounds.js';
import type { PublishMarks } from './publish-marks.js';
import type { NodeFlagsService } from '../network/node-flags.service.js';
import { NO_JOB_LOG, type JobLog } from '../domain/job-log.js';
import { NO_NODE_STATS, type NodeStatsSink } from '../domain/node-stats.js';

export type AttemptOutcome = 'failed' | 'timeout' | 'disconnected' | 'invalid_result';

/** An attempt to end without a result (JobLifecycleStore.failAttempt). */
export interface AttemptEnd {
  jobId: string;
  attempt: number;
  nodeId: string;
  outcome: AttemptOutcome;
  reason: string;
  startedAt: Date | null;
}

/**
 * What the lifecycle needs from PostgreSQL: the port its fast tests fake (test/fakes/jobs.store.ts); on
 * the engine it is postgres/jobs.store.ts. Every write is fenced there (see postgres/jobs.repository.ts).
 */
export interface JobLifecycleStore {
  /** Marks jobs published at the times their publish was confirmed (unfinished, unmarked ones only). */
  markPublished(marks: ReadonlyArray<{ id: string; at: Date }>): Promise<void>;
  /** Ends the attempt without a result if it may still end (the job is queued again); its job's namespace then, else null. */
  failAttempt(a: AttemptEnd): Promise<{ namespaceId: string } | null>;
  findJob(jobId: string): Promise<JobRow | null>;
  /** The attempt whose tokens reached the job's streaming client, or null. */
  streamedAttempt(jobId: string): Promise<number | null>;
}

/** What the lifecycle takes: its store, and the parts of the engine classes and services it calls. */
export interface JobLifecycleDeps {
  store: JobLifecycleStore;
  settlement: Pick<SettlementService, 'endWithoutResult'>;
  /** MongoDB: each attempt's routing hop, written behind. */
  payloads: Pick<PayloadsRepository, 'appendTrace'>;
  presence: Pick<PresenceRepository, 'release'>;
  inflight: Pick<InflightRepository, 'ended' | 'current'>;
  events: Pick<JobEvents, 'publish'>;
  queue: Pick<JobQueue, 'declareModel' | 'publish' | 'quarantine'>;
  marks: Pick<PublishMarks, 'confirmed' | 'finished'>;
  nodeFlags: Pick<NodeFlagsService, 'recordFailure'>;
  streams: Pick<JobStreams, 'text'>;
  usageRules: Pick<UsageRules, 'ruleFor'>;
  usageSamples: Pick<UsageSamples, 'ofModel'>;
  logger: Logger;
  /** The job log (mongo/job-logs.repository.ts): each attempt's end and each job's end without a result. */
  jobLog?: JobLog;
  /** Node stats (mongo/node-stats.repository.ts): each attempt a node did not complete. */
  nodeStats?: NodeStatsSink;
}

/** How long a routing hop is kept in MongoDB (with the payloads it explains, at most). */
const TRACE_RETENTION_HOURS = 72;

export class JobLifecycle {
  /** Models whose queue this process has declared (declaring is idempotent; this only saves round trips). */
  private readonly declared = new Set<string>();

  constructor(private readonly d: JobLifecycleDeps) {}

  private get jobLog(): JobLog {
    return this.d.jobLog ?? NO_JOB_LOG;
  }

  /**
   * Publishes an accepted job's ticket with confirms; its "published" mark is written later, in a batch
   * (jobs/publish-marks.ts), or at once with `markNow` (the outbox republishing a job). Returns false on
   * failure, which is not the job's failure: the job row is the outbox, and the maintenance role
   * republishes it later.
   */
  async publish(ticket: JobTicket, opts: { markNow?: boolean } = {}): Promise<boolean> {
    try {
      const model = ticket.placement.model;
      if (!this.declared.has(model)) {
        await this.d.queue.declareModel(model);
        this.declared.add(model);
      }
      await this.d.queue.publish(ticket);
      if (opts.markNow) {
        await this.d.store.markPublished([{ id: ticket.jobId, at: new Date() }]);
        // Published again (the outbox, a pre-priority queue drained): the accept logged no 'queued' for it.
        this.jobLog.record({ jobId: ticket.jobId, namespaceId: ticket.namespaceId, kind: 'queued', at: new Date(), reason: 'republished' });
      } else this.d.marks.confirmed(ticket.jobId);
      return true;
    } catch (err) {
      this.d.logger.warn({ err, jobId: ticket.jobId }, 'publish failed; the outbox will retry');
      return false;
    }
  }

  /**
   * Ends attempt `attempt` on `nodeId` without a result, if it may still end; the scheduler then retries
   * the job. True for the one call that ended it.
   */
  async failAttempt(jobId: string, attempt: number, nodeId: string, outcome: AttemptOutcome, reason: string, startedAt: Date | null = null): Promise<boolean> {
    const ended = await this.d.store.failAttempt({ jobId, attempt, nodeId, outcome, reason, startedAt });
    if (!ended) return false;
    await this.d.presence.release(nodeId, jobId);
    const at = new Date();
    // Both written behind, in batches: never waited for.
    this.jobLog.record({ jobId, namespaceId: ended.namespaceId, kind: 'attempt_failed', at, attempt, nodeId, outcome, reason, ...(startedAt ? { stageMs: { node: Math.max(0, at.getTime() - startedAt.getTime()) } } : {}) });
    (this.d.nodeStats ?? NO_NODE_STATS).attemptFailed(nodeId, outcome);
    // The hop is for reading after the fact: written behind, never waited for.
    this.d.payloads
      .appendTrace(jobId, { attempt, nodeId, at, outcome, reason }, TRACE_RETENTION_HOURS)
      .catch((err: unknown) => this.d.logger.warn({ err, jobId }, 'routing hop not stored'));
    await this.d.events.publish({ kind: 'attempt_failed', jobId, attempt, reason: outcome });
    this.d.logger.info({ jobId, attempt, node: nodeId, outcome, reason }, 'attempt failed');
    // The node's own failures count toward its cooldown; a dropped connection is its absence, not a fault.
    if (outcome !== 'disconnected') await this.d.nodeFlags.recordFailure(nodeId, outcome);
    return true;
  }

  /** Ends the job for one of the scheduler's reasons (domain/job-states.ts endings); see endWithoutResult. */
  end(jobId: string, ending: JobEnding): Promise<JobRow | null> {
    return this.endWithoutResult(jobId, ending.status, ending.code, ending.message);
  }

  /**
   * Ends an unfinished job as failed or expired, releasing its hold; null when it had already ended. A
   * streamed job that expires (its client's deadline) is charged for the text its client received: the
   * client's own doing cut it short; so is a job its client cancels (POST /v1/jobs/{id}/cancel). A failed
   * job (a node's fault) is charged nothing.
   */
  async endWithoutResult(jobId: string, status: 'failed' | 'expired' | 'cancelled', code: string, message: string): Promise<JobRow | null> {
    const delivered = status === 'failed' ? null : await this.deliveredPart(jobId);
    const row = await this.d.settlement.endWithoutResult(jobId, status, code, message, delivered);
    if (!row) return null;
    // The attempt cut short by this (if any) still holds a slot on its node; nobody else will return it.
    // The same script tells every instance (the waiting request, the scheduler) that the job ended.
    await this.d.inflight.ended(jobId, { kind: 'finished', jobId, status, error: { code, message } });
    if (row.interrupted_node_id) await this.d.presence.release(row.interrupted_node_id, jobId); // an attempt started by an older version
    this.d.marks.finished(jobId);
    this.jobLog.record({ jobId, namespaceId: row.namespace_id, kind: status, at: new Date(), model: row.model, outcome: code, reason: message });
    this.d.logger.info({ jobId, status, code }, 'job ended without a result; hold released');
    if (status === 'cancelled') return row; // the client's choice: nothing to quarantine
    await this.d.queue.quarantine(jobId, code).catch((err: unknown) => this.d.logger.warn({ err, jobId }, 'quarantine record not published'));
    return row;
  }

  /**
   * What the client of a streamed job has received: the text of the attempt recorded as the one it reads,
   * as its chunks stand in Redis, counted by the backbone (domain/usage-bounds.ts deliveredTokens: the
   * model's tokenizer, or the bytes at its peers' tokens per byte, never above the model's bound). Null
   * when nothing reached the client, when the attempt it read had already failed (the node's fault), or
   * when what reached it can no longer be told (Redis lost the stream or the attempt's record): then
   * nothing is charged.
   */
  private async deliveredPart(jobId: string): Promise<DeliveredPart | null> {
    const [job, attempt] = await Promise.all([this.d.store.findJob(jobId), this.d.store.streamedAttempt(jobId)]);
    // An attempt that already ended without a result (jobs.attempt counts those) ended by its node's doing:
    // a deadline passing before the job is failed for it does not make its client pay.
    if (!job || job.finished_at || attempt === null || job.attempt >= attempt) return null;
    const [inflight, text, rule, samples] = await Promise.all([
      this.d.inflight.current(jobId),
      this.d.streams.text(jobId, attempt),
      this.d.usageRules.ruleFor(job.model),
      this.d.usageSamples.ofModel(job.model),
    ]);
    if (!inflight || inflight.attempt !== attempt || !text || !rule) return null;
    const completion = Math.min(deliveredTokens(rule, text, medianTokensPerByte(samples)), job.max_tokens);
    return { attempt, nodeId: inflight.nodeId, usage: { prompt_tokens: 0, completion_tokens: completion } };
  }
}
