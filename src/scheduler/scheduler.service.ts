// The scheduler: consumes each model's job queue, reserves an idle node in Redis, records the attempt
// in PostgreSQL, dispatches the job to the io instance holding the node's socket, and waits for the
// attempt to end. The RabbitMQ message stays unacked (reserved) until the job reaches a terminal state,
// so a scheduler that dies mid-job hands it back to the queue and another one carries on; the attempt
// counter in the job row fences off whatever the dead scheduler had started.
import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import type { Consumer } from 'rabbitmq-client';
import type { Config } from '../config.js';
import { retryDelayMs } from '../domain/jobs.js';
import { describePlacement, placementOf } from '../domain/eligibility.js';
import { signMessage } from '../domain/signatures.js';
import type { JobDispatch } from '../domain/protocol.js';
import { withTransaction, type Db } from '../postgres/db.js';
import { findJob, markUnpublished, startAttempt, type JobRow } from '../postgres/jobs.repository.js';
import { streamedAttempt } from '../postgres/job-streams.repository.js';
import { listModels } from '../postgres/models.repository.js';
import type { PayloadsRepository } from '../mongo/payloads.repository.js';
import type { PresenceRepository } from '../redis/presence.repository.js';
import type { JobEvents } from '../redis/job-events.js';
import type { JobQueue } from '../rabbitmq/job-queue.js';
import type { JobLifecycle } from '../jobs/lifecycle.service.js';
import { PRIORITY_CLASSES } from '../domain/priority.js';
import { ModelDispatcher } from './model-dispatcher.js';

export interface SchedulerDeps {
  config: Config;
  db: Db;
  lifecycle: JobLifecycle;
  payloads: PayloadsRepository;
  presence: PresenceRepository;
  events: JobEvents;
  queue: JobQueue;
  networkKey: string;
  logger: Logger;
}

const MODEL_REFRESH_MS = 2_000;
/**
 * How long a job waits for a node before its handler looks at its deadline again, and, while no node
 * serves the model at all, how often it checks whether one came (the NO_NODE_GRACE_MS clock).
 */
const PLACEMENT_RECHECK_MS = 2_000;
const NO_NODE_RECHECK_MS = 250;
const ENGINE_ERROR_PAUSE_MS = 1_000;

export class Scheduler {
  /** Keyed by `<model>.<class>`: one consumer per model and priority class. */
  private readonly consumers = new Map<string, Consumer>();
  private readonly dispatchers = new Map<string, ModelDispatcher>();
  /** Models whose queue from before priority classes this process has emptied. */
  private readonly legacyDrained = new Set<string>();
  /** Jobs this process is driving, by id. */
  private readonly handling = new Map<string, Promise<void>>();
  private readonly stopping = new AbortController();
  private refreshTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly d: SchedulerDeps,
    private readonly concurrencyPerModel = 256,
  ) {
    // Every waiting job handler listens to this one signal: far more than the default 10 listeners.
    setMaxListeners(0, this.stopping.signal);
  }

  async start(): Promise<void> {
    await this.refreshModels();
    this.refreshTimer = setInterval(() => {
      this.refreshModels().catch((err: unknown) => this.d.logger.warn({ err }, 'scheduler: model refresh failed'));
    }, MODEL_REFRESH_MS);
  }

  async stop(): Promise<void> {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.stopping.abort();
    for (const d of this.dispatchers.values()) d.close();
    await Promise.all([...this.consumers.values()].map((c) => c.close()));
    this.consumers.clear();
  }

  /** Starts consuming the queues of every model in the catalogue not consumed yet. */
  private async refreshModels(): Promise<void> {
    for (const m of await listModels(this.d.db)) {
      if (!this.legacyDrained.has(m.name)) {
        // Jobs left in the model's queue of a version before priority classes go back to the outbox.
        const moved = await this.d.queue.drainLegacyQueue(m.name, (jobId) => markUnpublished(this.d.db, jobId));
        if (moved > 0) this.d.logger.info({ model: m.name, moved }, 'scheduler: jobs of the pre-priority queue handed back to the outbox');
        this.legacyDrained.add(m.name);
      }
      for (const priority of PRIORITY_CLASSES) {
        const key = `${m.name}.${priority}`;
        if (this.consumers.has(key) || this.stopping.signal.aborted) continue;
        const consumer = this.d.queue.consume(m.name, priority, this.concurrencyPerModel, (msg) =>
          this.handle(msg.jobId).catch(async (err: unknown) => {
            // An engine failed (or this process is stopping): the message goes back to the queue. Pause
            // first, so that an outage does not turn into a tight redelivery loop.
            if (!this.stopping.signal.aborted) {
              this.d.logger.warn({ err, jobId: msg.jobId }, 'scheduler: job handling failed; requeueing');
              await sleep(ENGINE_ERROR_PAUSE_MS, this.stopping.signal);
            }
            throw err;
          }),
        );
        consumer.on('error', (err: unknown) => this.d.logger.warn({ err, model: m.name, priority }, 'scheduler: consumer error'));
        this.consumers.set(key, consumer);
      }
    }
  }

  /** The waiting room of a model's jobs in this process (created on first use). */
  private dispatcherFor(model: string): ModelDispatcher {
    let d = this.dispatchers.get(model);
    if (!d) {
      const { presence, events, logger } = this.d;
      d = new ModelDispatcher({
        model,
        // Prefer a node this job has not failed on; fall back to any when those are all there is.
        reserve: async (r) => (await presence.reserve(r.placement, r.jobId, r.exclude)) ?? (r.exclude.length > 0 ? presence.reserve(r.placement, r.jobId, []) : null),
        release: (reservation, jobId) => presence.release(reservation.nodeId, jobId),
        waitForCapacity: (ms, signal) => events.waitForCapacity(model, ms, signal),
        stopping: this.stopping.signal,
        logger,
      });
      this.dispatchers.set(model, d);
    }
    return d;
  }

  /**
   * Drives one job to a terminal state. Resolves when the message may be acked; throws (the message is
   * requeued) only when this process is stopping or an engine failed, never for a job-level failure.
   */
  async handle(jobId: string): Promise<void> {
    // A message redelivered while this process still drives the job (the channel closed under it, during
    // a broker restart, say) joins the handling in progress instead of starting a second one.
    const running = this.handling.get(jobId);
    if (running) return running;
    const handling = this.drive(jobId).finally(() => this.handling.delete(jobId));
    this.handling.set(jobId, handling);
    return handling;
  }

  private async drive(jobId: string): Promise<void> {
    const { config, logger } = this.d;
    const signal = this.stopping.signal;
    const tried: string[] = [];
    let noNodeSince: number | null = null;
    let liveSeen = false;

    for (;;) {
      if (signal.aborted) throw new Error('scheduler stopping');
      const job = await findJob(this.d.db, jobId);
      if (!job || job.finished_at) return; // unknown (not ours) or already terminal: nothing to do
      const now = Date.now();
      if (job.deadline_at.getTime() <= now) {
        await this.endWithoutResult(jobId, 'expired', 'deadline_exceeded', 'The job passed its deadline before a node completed it.');
        return;
      }
      if (job.status !== 'running' && job.attempt > 0 && (await streamedAttempt(this.d.db, jobId)) !== null) {
        // Part of an attempt's answer already reached a streaming client: another node's answer would
        // follow it as if it were one text. The job fails instead (no charge), and the client sees an error.
        await this.endWithoutResult(jobId, 'failed', 'stream_interrupted', 'The node streaming this answer failed after part of it was sent; no credits were charged.');
        return;
      }
      if (job.attempt >= job.max_attempts && job.status !== 'running') {
        await this.endWithoutResult(jobId, 'failed', 'attempts_exhausted', `No node completed the job in ${job.max_attempts} attempts.`);
        return;
      }
      if (job.status === 'running') {
        // Redelivered while an attempt was in flight (its scheduler died): wait for that attempt first.
        await this.awaitAttempt(jobId, job.attempt, job.node_id ?? '', attemptTimeoutMs(job, config));
        continue;
      }

      const placement = placementOf(job);
      const reservation = await this.dispatcherFor(job.model).place(
        {
          jobId,
          namespaceId: job.namespace_id,
          priority: job.priority,
          arrivedAt: job.created_at.getTime(),
          placement,
          // Jobs with the same placement fit the same nodes: `exclude` only orders the choice (see reserve above).
          shape: describePlacement(placement),
          exclude: tried,
        },
        Math.max(1, Math.min(job.deadline_at.getTime() - now, liveSeen ? PLACEMENT_RECHECK_MS : NO_NODE_RECHECK_MS)),
      );
      if (!reservation) {
        if (signal.aborted) throw new Error('scheduler stopping');
        // No node came free in time. Eligible nodes, busy or not: none for the whole grace means nobody
        // can serve this job.
        const live = await this.d.presence.liveNodeCount(placement, 1);
        liveSeen = live > 0;
        if (live > 0) noNodeSince = null;
        else noNodeSince ??= Date.now();
        if (noNodeSince !== null && Date.now() - noNodeSince >= config.NO_NODE_GRACE_MS) {
          await this.endWithoutResult(jobId, 'failed', 'no_node_available', `No online node eligible for ${describePlacement(placement)} for ${config.NO_NODE_GRACE_MS} ms.`);
          return;
        }
        continue;
      }
      noNodeSince = null;

      const attempt = await withTransaction(this.d.db, (tx) => startAttempt(tx, jobId, reservation.nodeId, job.attempt));
      if (attempt === null) {
        // Another scheduler (a duplicate message) started an attempt, or the job ended meanwhile: the top
        // of the loop re-reads the job and waits for that attempt or returns. A slot is one member per job
        // on a node, so when the winner's attempt runs on this same node, the slot just reserved IS that
        // attempt's slot: releasing it would free a slot the node is using, and over-commit the node.
        const now = await findJob(this.d.db, jobId);
        if (!(now && !now.finished_at && now.status === 'running' && now.node_id === reservation.nodeId)) {
          await this.d.presence.release(reservation.nodeId, jobId);
        }
        continue;
      }
      tried.push(reservation.nodeId);
      const input = await this.d.payloads.findInput(jobId);
      if (!input) {
        // Ending the job ends the attempt just started, and endWithoutResult returns its slot.
        await this.endWithoutResult(jobId, 'failed', 'payload_missing', 'The job input is no longer stored.');
        return;
      }
      const dispatch: JobDispatch = signMessage(this.d.networkKey, {
        type: 'job' as const,
        jobId,
        attempt,
        model: job.model,
        request: input,
        // The node works until the attempt's own deadline, not the job's: past it the scheduler stops
        // waiting and retries elsewhere, so work beyond it would be wasted.
        deadline: Math.min(job.deadline_at.getTime(), Date.now() + attemptTimeoutMs(job, config)),
        ts: Date.now(),
      });
      const delivered = await this.d.events.dispatch(reservation.instance, { ...dispatch, nodeId: reservation.nodeId });
      if (!delivered) {
        // The gateway instance holding the node is gone (its presence has not expired yet): take the node
        // out of rotation now, or every retry would pick it again.
        await this.d.presence.remove(reservation.nodeId, reservation.instance);
        await this.d.lifecycle.failAttempt(jobId, attempt, reservation.nodeId, 'disconnected', 'no gateway instance holds the node');
      } else {
        await this.awaitAttempt(jobId, attempt, reservation.nodeId, attemptTimeoutMs(job, config));
      }
      const after = await findJob(this.d.db, jobId);
      if (!after || after.finished_at) return;
      logger.debug({ jobId, attempt, node: reservation.nodeId }, 'scheduler: attempt ended without a result; retrying');
      await sleep(retryDelayMs(attempt, config.JOB_RETRY_BACKOFF_MS), signal);
    }
  }

  /** Waits for the attempt to finish or fail; on timeout, fails it (if still current) as 'timeout'. */
  private async awaitAttempt(jobId: string, attempt: number, nodeId: string, timeoutMs: number): Promise<void> {
    const event = await this.d.events.waitFor(
      jobId,
      (e) => e.kind === 'finished' || (e.kind === 'attempt_failed' && e.attempt === attempt),
      timeoutMs,
      this.stopping.signal,
    );
    if (this.stopping.signal.aborted) throw new Error('scheduler stopping');
    if (event === null) {
      await this.d.lifecycle.failAttempt(jobId, attempt, nodeId, 'timeout', `no result within ${timeoutMs} ms`);
    }
  }

  private async endWithoutResult(jobId: string, status: 'failed' | 'expired', code: string, message: string): Promise<void> {
    await this.d.lifecycle.endWithoutResult(jobId, status, code, message);
  }
}

/** An attempt's time limit: the job's own (from the network config it was accepted under), else the environment's. */
function attemptTimeoutMs(job: JobRow, config: Config): number {
  return job.attempt_timeout_ms ?? config.JOB_ATTEMPT_TIMEOUT_MS;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
