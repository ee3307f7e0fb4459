// The scheduler: consumes each model's job queue, reserves an idle node in Redis (the reservation also
// starts the attempt: redis/inflight.repository.ts), dispatches the job to the io instance holding the
// node's socket, and waits for the attempt to end. The RabbitMQ message stays unacked (reserved) until the
// job reaches a terminal state, so a scheduler that dies mid-job hands it back to the queue and another
// one carries on.
//
// A job's first delivery carries its ticket (domain/job-ticket.ts): the scheduler runs it without reading
// anything back. A redelivered message (its scheduler died, or the channel closed) or one without a
// ticket reads the job's row first: the attempts that ended are counted there (jobs.attempt), the one in
// flight, if any, is in Redis. Retries (off the success path) re-read the row before each new attempt.
import { withNeeds } from '../domain/capabilities.js';
import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { afterNoPlacement, afterSilence, endings, nextStep, retryDelayMs, type JobEnding } from '../domain/job-states.js';
import { jobIdTime } from '../domain/job-ids.js';
import { describePlacement } from '../domain/eligibility.js';
import { signMessage } from '../domain/signatures.js';
import { ticketOf, type JobTicket } from '../domain/job-ticket.js';
import type { JobRow } from '../postgres/jobs.repository.js';
import { stageSince, stageTimer } from '../metrics/job-stages.js';
import type { PayloadsRepository } from '../mongo/payloads.repository.js';
import type { PresenceRepository } from '../redis/presence.repository.js';
import type { InflightRepository } from '../redis/inflight.repository.js';
import type { JobEvent, JobEvents } from '../redis/job-events.js';
import type { JobConsumer, JobMessage, JobQueue } from '../rabbitmq/job-queue.js';
import type { JobLifecycle } from '../jobs/lifecycle.service.js';
import { PRIORITY_CLASSES } from '../domain/priority.js';
import { ModelDispatcher } from './model-dispatcher.js';
import { NO_JOB_LOG, type JobLog } from '../domain/job-log.js';

/**
 * What the scheduler needs from PostgreSQL (off its fast path: a first delivery with its ticket reads
 * nothing): the port its fast tests fake (test/fakes/jobs.store.ts); on the engine postgres/jobs.store.ts.
 */
export interface SchedulerStore {
  /** The catalogue's models: each gets its queues consumed. */
  listModels(): Promise<ReadonlyArray<{ name: string }>>;
  findJob(jobId: string): Promise<JobRow | null>;
  /** The attempt whose tokens reached the job's streaming client, or null. */
  streamedAttempt(jobId: string): Promise<number | null>;
}

export interface SchedulerDeps {
  config: Pick<Config, 'NO_NODE_GRACE_MS' | 'JOB_ATTEMPT_TIMEOUT_MS' | 'JOB_RETRY_BACKOFF_MS'>;
  store: SchedulerStore;
  lifecycle: Pick<JobLifecycle, 'publish' | 'failAttempt' | 'end'>;
  /** MongoDB: the input of a job whose message brought no ticket. */
  payloads: Pick<PayloadsRepository, 'findInput'>;
  presence: Pick<PresenceRepository, 'reserveAttempt' | 'release' | 'liveNodeCount' | 'remove'>;
  inflight: Pick<InflightRepository, 'current'>;
  events: Pick<JobEvents, 'dispatch' | 'waitFor' | 'waitForCapacity'>;
  queue: Pick<JobQueue, 'drainLegacyQueue' | 'consume'>;
  networkKey: string;
  logger: Logger;
  /** The job log (mongo/job-logs.repository.ts): each dispatch, written behind. */
  jobLog?: JobLog;
}

const MODEL_REFRESH_MS = 2_000;
const ENGINE_ERROR_PAUSE_MS = 1_000;
/** An in-flight record outlives its job's deadline by this much (a late result still finds it). */
const CLAIM_GRACE_MS = 60_000;

export class Scheduler {
  /** Keyed by `<model>.<class>`: one consumer per model and priority class. */
  private readonly consumers = new Map<string, JobConsumer>();
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
    for (const m of await this.d.store.listModels()) {
      if (!this.legacyDrained.has(m.name)) {
        // Jobs left in the model's queue of a version before priority classes are published again, to
        // their class's queue, with their tickets.
        const moved = await this.d.queue.drainLegacyQueue(m.name, (jobId) => this.republish(jobId));
        if (moved > 0) this.d.logger.info({ model: m.name, moved }, 'scheduler: jobs of the pre-priority queue republished to their class queues');
        this.legacyDrained.add(m.name);
      }
      for (const priority of PRIORITY_CLASSES) {
        const key = `${m.name}.${priority}`;
        if (this.consumers.has(key) || this.stopping.signal.aborted) continue;
        const consumer = this.d.queue.consume(m.name, priority, this.concurrencyPerModel, (msg, redelivered) =>
          this.handle(msg, redelivered).catch(async (err: unknown) => {
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
        reserve: async (r) =>
          (await presence.reserveAttempt(r.placement, r.jobId, r.exclude, r.claim)) ??
          (r.exclude.length > 0 ? presence.reserveAttempt(r.placement, r.jobId, [], r.claim) : null),
        release: (reservation, request) => (reservation === 'fenced' ? Promise.resolve() : presence.release(reservation.nodeId, request.jobId, request.claim.attempt)),
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
  async handle(msg: JobMessage, redelivered = false): Promise<void> {
    // A message redelivered while this process still drives the job (the channel closed under it, during
    // a broker restart, say) joins the handling in progress instead of starting a second one.
    const running = this.handling.get(msg.jobId);
    if (running) return running;
    const handling = this.drive(msg, redelivered).finally(() => this.handling.delete(msg.jobId));
    this.handling.set(msg.jobId, handling);
    return handling;
  }

  private async drive(msg: JobMessage, redelivered: boolean): Promise<void> {
    const { jobId } = msg;
    const signal = this.stopping.signal;
    const tried: string[] = [];
    let noNodeSince: number | null = null;
    let liveSeen = false;
    // The fast path: a first delivery with its ticket starts attempt 1 without reading anything.
    let ticket = redelivered ? null : msg.ticket;
    let next = 1;
    const created = jobIdTime(jobId);
    // Time in the queue, logged with the first dispatch from this delivery.
    let queuedMs = ticket && created ? stageSince('queued', created.getTime()) : undefined;

    for (;;) {
      if (signal.aborted) throw new Error('scheduler stopping');
      if (!ticket) {
        const caughtUp = await this.catchUp(jobId, msg.ticket);
        if (!caughtUp) return; // finished, unknown (not ours), or ended here
        ({ ticket, next } = caughtUp);
      }
      const now = Date.now();
      const step = nextStep(ticket, next, now, liveSeen);
      if (step.kind === 'end') {
        await this.end(jobId, step.ending);
        return;
      }

      // What the job needs of its node (tools, JSON, a kind other than chat) narrows the placement.
      const placement = withNeeds(ticket.placement, ticket.request);
      const stages = stageTimer();
      const reservation = await this.dispatcherFor(placement.model).place(
        {
          jobId,
          namespaceId: ticket.namespaceId,
          priority: ticket.priority,
          arrivedAt: jobArrival(jobId),
          placement,
          // Jobs with the same placement fit the same nodes: `exclude` only orders the choice (see reserve above).
          shape: describePlacement(placement),
          exclude: tried,
          claim: { attempt: next, ttlMs: ticket.deadlineAt - now + CLAIM_GRACE_MS },
        },
        step.waitMs,
      );
      if (reservation === 'fenced') {
        // Another scheduler (a duplicate message) runs this attempt, or the job finished: see the row.
        ticket = null;
        continue;
      }
      if (!reservation) {
        if (signal.aborted) throw new Error('scheduler stopping');
        // No node came free in time. Eligible nodes, busy or not: none for the whole grace means nobody
        // can serve this job.
        const live = await this.d.presence.liveNodeCount(placement, 1);
        liveSeen = live > 0;
        const grace = afterNoPlacement(noNodeSince, live, Date.now(), this.d.config.NO_NODE_GRACE_MS);
        noNodeSince = grace.noNodeSince;
        if (grace.giveUp) {
          await this.end(jobId, endings.noNodeAvailable(describePlacement(placement), this.d.config.NO_NODE_GRACE_MS));
          return;
        }
        continue;
      }
      noNodeSince = null;
      tried.push(reservation.nodeId);
      const placeMs = stages.lap('place');

      const attempt = next;
      const timeoutMs = ticket.attemptTimeoutMs ?? this.d.config.JOB_ATTEMPT_TIMEOUT_MS;
      const startedAt = Date.now();
      // Listening before the dispatch leaves, so that no outcome can come before the wait.
      const outcome = this.attemptOutcome(jobId, attempt, timeoutMs);
      const dispatch = signMessage(this.d.networkKey, {
        type: 'job' as const,
        jobId,
        attempt,
        model: placement.model,
        request: ticket.request,
        // The node works until the attempt's own deadline, not the job's: past it the scheduler stops
        // waiting and retries elsewhere, so work beyond it would be wasted.
        deadline: Math.min(ticket.deadlineAt, startedAt + timeoutMs),
        ts: startedAt,
      });
      const delivered = await this.d.events.dispatch(reservation.instance, {
        ...dispatch,
        nodeId: reservation.nodeId,
        namespaceId: ticket.namespaceId,
        terms: ticket.terms,
        startedAt,
        jobDeadlineAt: ticket.deadlineAt,
      });
      const dispatchMs = stages.lap('dispatch');
      (this.d.jobLog ?? NO_JOB_LOG).record({
        jobId,
        namespaceId: ticket.namespaceId,
        kind: 'dispatched',
        // When the attempt started, before its dispatch left: the node's first token or result may be
        // logged by its io instance before the dispatch's publish is answered here.
        at: new Date(startedAt),
        attempt,
        nodeId: reservation.nodeId,
        model: placement.model,
        stageMs: { ...(queuedMs === undefined ? {} : { queued: queuedMs }), place: placeMs, dispatch: dispatchMs },
      });
      queuedMs = undefined;
      let event: JobEvent | null;
      if (!delivered) {
        outcome.cancel();
        // The gateway instance holding the node is gone (its presence has not expired yet): take the node
        // out of rotation now, or every retry would pick it again.
        await this.d.presence.remove(reservation.nodeId, reservation.instance);
        await this.d.lifecycle.failAttempt(jobId, attempt, reservation.nodeId, 'disconnected', 'no gateway instance holds the node', new Date(startedAt));
        event = { kind: 'attempt_failed', jobId, attempt, reason: 'disconnected' };
      } else {
        event = await outcome.event;
        if (this.stopping.signal.aborted) throw new Error('scheduler stopping');
        if (event === null && afterSilence(Date.now(), ticket.deadlineAt) === 'expire') {
          await this.end(jobId, endings.deadlineExceeded());
          return;
        }
        if (event === null && (await this.d.lifecycle.failAttempt(jobId, attempt, reservation.nodeId, 'timeout', `no result within ${timeoutMs} ms`, new Date(startedAt)))) {
          event = { kind: 'attempt_failed', jobId, attempt, reason: 'timeout' };
        }
      }
      if (event?.kind === 'finished') return;
      if (event === null) {
        // The attempt could not be failed: it ended otherwise (a result whose event was lost): the row says how.
        ticket = null;
        continue;
      }
      this.d.logger.debug({ jobId, attempt, node: reservation.nodeId }, 'scheduler: attempt ended without a result; retrying');
      await sleep(retryDelayMs(attempt, this.d.config.JOB_RETRY_BACKOFF_MS), signal);
      // A retry reads the row: another role may have ended the job meanwhile, or streamed part of it.
      ticket = null;
    }
  }

  /**
   * Publishes an unfinished job again, with its ticket (from its row and stored input); one whose input
   * is gone fails. Throws when the broker refused it, so that its old message is not acked.
   */
  private async republish(jobId: string): Promise<void> {
    const job = await this.d.store.findJob(jobId);
    if (!job || job.finished_at) return;
    const input = await this.d.payloads.findInput(jobId);
    if (!input) {
      await this.end(jobId, endings.payloadMissing());
      return;
    }
    if (!(await this.d.lifecycle.publish(ticketOf(job, input), { markNow: true }))) throw new Error(`job ${jobId} could not be republished`);
  }

  /**
   * Where a job stands, from its row (and, for a job the message brought no ticket for, its stored
   * input): the ticket and the next attempt to start, after waiting out an attempt still in flight.
   * Null when there is nothing left to do here: the job is finished or unknown, or this call ended it.
   */
  private async catchUp(jobId: string, carried: JobTicket | null): Promise<{ ticket: JobTicket; next: number } | null> {
    for (;;) {
      if (this.stopping.signal.aborted) throw new Error('scheduler stopping');
      const job = await this.d.store.findJob(jobId);
      if (!job || job.finished_at) return null;
      if (job.attempt > 0 && job.status !== 'running' && (await this.d.store.streamedAttempt(jobId)) !== null) {
        // Part of an attempt's answer already reached a streaming client: another node's answer would
        // follow it as if it were one text. The job fails instead (no charge), and the client sees an error.
        await this.end(jobId, endings.streamInterrupted());
        return null;
      }
      const timeoutMs = job.attempt_timeout_ms ?? this.d.config.JOB_ATTEMPT_TIMEOUT_MS;
      // An attempt still in flight (its scheduler died, or a duplicate message's scheduler runs it): wait
      // for it to end, failing it if it outlives its timeout.
      const running = await this.runningAttempt(job);
      if (running) {
        const outcome = this.attemptOutcome(jobId, running.attempt, Math.max(1, running.startedAt + timeoutMs - Date.now()));
        const event = await outcome.event;
        if (event === null) await this.d.lifecycle.failAttempt(jobId, running.attempt, running.nodeId, 'timeout', `no result within ${timeoutMs} ms`, new Date(running.startedAt));
        continue;
      }
      let ticket = carried;
      if (!ticket) {
        const input = await this.d.payloads.findInput(jobId);
        if (!input) {
          await this.end(jobId, endings.payloadMissing());
          return null;
        }
        ticket = ticketOf(job, input);
      }
      return { ticket, next: job.attempt + 1 };
    }
  }

  /** The attempt of `job` still in flight, if any: in Redis, or (a job started by an older version) in its row. */
  private async runningAttempt(job: JobRow): Promise<{ attempt: number; nodeId: string; startedAt: number } | null> {
    if (job.status === 'running' && job.node_id) return { attempt: job.attempt, nodeId: job.node_id, startedAt: Date.now() };
    const inflight = await this.d.inflight.current(job.id);
    if (inflight && !inflight.done && inflight.attempt > job.attempt) return inflight;
    return null;
  }

  /**
   * Waits, from now, for attempt `attempt` of the job to end: the job's 'finished' event, the attempt's
   * 'attempt_failed', or null after `timeoutMs` (or when this process stops).
   */
  private attemptOutcome(jobId: string, attempt: number, timeoutMs: number): { event: Promise<JobEvent | null>; cancel(): void } {
    const stop = new AbortController();
    const event = this.d.events.waitFor(
      jobId,
      (e) => e.kind === 'finished' || (e.kind === 'attempt_failed' && e.attempt === attempt),
      timeoutMs,
      AbortSignal.any([this.stopping.signal, stop.signal]),
    );
    return { event, cancel: () => stop.abort() };
  }

  private async end(jobId: string, ending: JobEnding): Promise<void> {
    await this.d.lifecycle.end(jobId, ending);
  }
}

/** When the job was accepted (the time its id carries): its place in the fair order. */
function jobArrival(jobId: string): number {
  return jobIdTime(jobId)?.getTime() ?? Date.now();
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
