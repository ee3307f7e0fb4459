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
import { signMessage } from '../domain/signatures.js';
import type { JobDispatch } from '../domain/protocol.js';
import { withTransaction, type Db } from '../postgres/db.js';
import { findJob, startAttempt } from '../postgres/jobs.repository.js';
import { streamedAttempt } from '../postgres/job-streams.repository.js';
import { listModels } from '../postgres/models.repository.js';
import type { PayloadsRepository } from '../mongo/payloads.repository.js';
import type { PresenceRepository } from '../redis/presence.repository.js';
import type { JobEvents } from '../redis/job-events.js';
import type { JobQueue } from '../rabbitmq/job-queue.js';
import type { JobLifecycle } from '../jobs/lifecycle.service.js';

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

/** When every eligible node is busy, look again after this long even if no freed slot was announced (a lost pub/sub message costs only this). */
const BUSY_RECHECK_MS = 200;
const MODEL_REFRESH_MS = 2_000;
const ENGINE_ERROR_PAUSE_MS = 1_000;

export class Scheduler {
  private readonly consumers = new Map<string, Consumer>();
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
    await Promise.all([...this.consumers.values()].map((c) => c.close()));
    this.consumers.clear();
  }

  /** Starts consuming the queue of every model in the catalogue not consumed yet. */
  private async refreshModels(): Promise<void> {
    for (const m of await listModels(this.d.db)) {
      if (this.consumers.has(m.name) || this.stopping.signal.aborted) continue;
      const consumer = this.d.queue.consume(m.name, this.concurrencyPerModel, (msg) =>
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
      consumer.on('error', (err: unknown) => this.d.logger.warn({ err, model: m.name }, 'scheduler: consumer error'));
      this.consumers.set(m.name, consumer);
    }
  }

  /**
   * Drives one job to a terminal state. Resolves when the message may be acked; throws (the message is
   * requeued) only when this process is stopping or an engine failed, never for a job-level failure.
   */
  async handle(jobId: string): Promise<void> {
    const { config, logger } = this.d;
    const signal = this.stopping.signal;
    const tried: string[] = [];
    let noNodeSince: number | null = null;

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
        await this.awaitAttempt(jobId, job.attempt, job.node_id ?? '');
        continue;
      }

      // Prefer a node this job has not failed on; fall back to any when those are all there is.
      const reservation =
        (await this.d.presence.reserve(job.model, jobId, tried)) ?? (tried.length > 0 ? await this.d.presence.reserve(job.model, jobId, []) : null);
      if (!reservation) {
        const live = await this.d.presence.liveNodeCount(job.model);
        if (live > 0) noNodeSince = null;
        else noNodeSince ??= now;
        if (noNodeSince !== null && now - noNodeSince >= config.NO_NODE_GRACE_MS) {
          await this.endWithoutResult(jobId, 'failed', 'no_node_available', `No online node served '${job.model}' for ${config.NO_NODE_GRACE_MS} ms.`);
          return;
        }
        // Every node busy: wait for a slot to be announced. No node at all: look again shortly.
        if (live > 0) await this.d.events.waitForCapacity(job.model, BUSY_RECHECK_MS, signal);
        else await sleep(Math.min(250, config.NO_NODE_GRACE_MS || 250), signal);
        continue;
      }
      noNodeSince = null;

      const attempt = await withTransaction(this.d.db, (tx) => startAttempt(tx, jobId, reservation.nodeId, job.attempt));
      if (attempt === null) {
        // Another scheduler (a duplicate message) started an attempt, or the job ended meanwhile: the top
        // of the loop re-reads the job and waits for that attempt or returns.
        await this.d.presence.release(reservation.nodeId, jobId);
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
        deadline: Math.min(job.deadline_at.getTime(), Date.now() + config.JOB_ATTEMPT_TIMEOUT_MS),
        ts: Date.now(),
      });
      const delivered = await this.d.events.dispatch(reservation.instance, { ...dispatch, nodeId: reservation.nodeId });
      if (!delivered) {
        // The gateway instance holding the node is gone (its presence has not expired yet): take the node
        // out of rotation now, or every retry would pick it again.
        await this.d.presence.remove(reservation.nodeId, reservation.instance);
        await this.d.lifecycle.failAttempt(jobId, attempt, reservation.nodeId, 'disconnected', 'no gateway instance holds the node');
      } else {
        await this.awaitAttempt(jobId, attempt, reservation.nodeId);
      }
      const after = await findJob(this.d.db, jobId);
      if (!after || after.finished_at) return;
      logger.debug({ jobId, attempt, node: reservation.nodeId }, 'scheduler: attempt ended without a result; retrying');
      await sleep(retryDelayMs(attempt, config.JOB_RETRY_BACKOFF_MS), signal);
    }
  }

  /** Waits for the attempt to finish or fail; on timeout, fails it (if still current) as 'timeout'. */
  private async awaitAttempt(jobId: string, attempt: number, nodeId: string): Promise<void> {
    const event = await this.d.events.waitFor(
      jobId,
      (e) => e.kind === 'finished' || (e.kind === 'attempt_failed' && e.attempt === attempt),
      this.d.config.JOB_ATTEMPT_TIMEOUT_MS,
      this.stopping.signal,
    );
    if (this.stopping.signal.aborted) throw new Error('scheduler stopping');
    if (event === null) {
      await this.d.lifecycle.failAttempt(jobId, attempt, nodeId, 'timeout', `no result within ${this.d.config.JOB_ATTEMPT_TIMEOUT_MS} ms`);
    }
  }

  private async endWithoutResult(jobId: string, status: 'failed' | 'expired', code: string, message: string): Promise<void> {
    await this.d.lifecycle.endWithoutResult(jobId, status, code, message);
  }
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
