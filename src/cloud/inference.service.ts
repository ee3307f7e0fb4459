// Accepting a chat-completion job and answering for it: validate, price the worst case, persist (the job
// row and its hold in one PostgreSQL statement), publish its ticket with confirms (the input travels in
// it), store the input in MongoDB behind the accept, then wait for the terminal state (synchronous mode)
// or answer at once (asynchronous mode).
//
// Round trips of an accepted job here: the catalogue rows (model, namespace, key) come from memory
// (catalog/catalog.service.ts); one Redis command asks whether any eligible node is online; one
// PostgreSQL statement holds; one confirmed publish; one grouped MongoDB insert. The waiter listens for
// the job's 'finished' event before the job is published, and the event carries the answer.
import type { Config } from '../config.js';
import { AppError, errors } from '../errors.js';
import { stageTimer } from '../metrics/job-stages.js';
import { endings, IDEMPOTENCY_WINDOW_HOURS, isTerminal } from '../domain/job-states.js';
import { requestPromptBound, worstCaseCost, type ModelPrices } from '../domain/pricing.js';
import type { PriorityClass } from '../domain/priority.js';
import type { JobOutput, JobRequest } from '../domain/protocol.js';
import type { Logger } from 'pino';
import { JobPastDeadlineError, type JobRow } from '../postgres/jobs.repository.js';
import type { ModelRow } from '../postgres/models.repository.js';
import type { PayloadsRepository, PayloadDoc } from '../mongo/payloads.repository.js';
import type { ZeroHolds } from '../redis/zero-holds.repository.js';
import type { PresenceRepository } from '../redis/presence.repository.js';
import type { InflightRepository } from '../redis/inflight.repository.js';
import { isRedisUnreachable } from '../redis/redis-health.js';
import { countDegraded } from '../metrics/degraded.js';
import type { FinishedEvent, JobEvents } from '../redis/job-events.js';
import { IdempotencyKeyInUse, type SettlementService } from '../jobs/settlement.service.js';
import type { IdempotencyRecord } from '../postgres/idempotency.repository.js';
import { canonicalJson, sha256Hex } from '../domain/signatures.js';
import { newJobId } from '../domain/job-ids.js';
import { isUuid } from '../domain/wire-strings.js';
import { ticketOf } from '../domain/job-ticket.js';
import { withNeeds } from '../domain/capabilities.js';
import type { JobLifecycle } from '../jobs/lifecycle.service.js';
import type { Principal } from './auth.service.js';
import { retentionHoursFor, type Catalog } from '../catalog/catalog.service.js';
import type { Placement } from '../domain/eligibility.js';
import type { CurrentNetworkConfig } from '../network/network-config.service.js';
import { NO_JOB_LOG, type JobLog } from '../domain/job-log.js';

/**
 * What the service reads from PostgreSQL (the job row and its hold are written by the settlement): the
 * port its fast tests fake (test/fakes/inference.store.ts); on the engine it is postgres/inference.store.ts.
 * One statement each.
 */
export interface InferenceStore {
  findJob(id: string): Promise<JobRow | null>;
  /** The job if it belongs to the namespace; another namespace's job is indistinguishable from none. */
  findJobInNamespace(id: string, namespaceId: string): Promise<JobRow | null>;
  /** The job an idempotency key names, if the namespace used the key within the window. */
  findIdempotencyKey(namespaceId: string, key: string, windowHours: number): Promise<IdempotencyRecord | null>;
}

/** The payloads the service writes and reads (mongo/payloads.repository.ts): grouped inserts, reads by id. */
export type InferencePayloads = Pick<PayloadsRepository, 'insertInput' | 'writeInputNow' | 'find'>;

export interface CloudDeps {
  config: Pick<Config, 'JOB_DEADLINE_MS' | 'PAYLOAD_RETENTION_HOURS'>;
  store: InferenceStore;
  catalog: Pick<Catalog, 'model' | 'namespace'>;
  /** The job row and its hold, in one statement (jobs/settlement.service.ts). */
  settlement: Pick<SettlementService, 'acceptWithHold'>;
  payloads: InferencePayloads;
  /** The zero plan's results waiting for their first read (redis/zero-holds.repository.ts). */
  zeroHolds?: Pick<ZeroHolds, 'take'>;
  presence: Pick<PresenceRepository, 'liveNodeCount'>;
  /** Whether Redis is usable now (redis/redis-health.ts redisReady); absent: always tried. */
  redisReady?: () => boolean;
  inflight: Pick<InflightRepository, 'current'>;
  events: Pick<JobEvents, 'watchFinished'>;
  lifecycle: Pick<JobLifecycle, 'publish' | 'end'>;
  /** The job parameters in force (maximum tokens, attempts, execution timeout). */
  networkConfig: Pick<CurrentNetworkConfig, 'jobs' | 'current' | 'heartbeat'>;
  logger: Pick<Logger, 'warn'>;
  /** The job log (mongo/job-logs.repository.ts): accepted and queued, written behind, never waited for. */
  jobLog?: JobLog;
}

/** Re-read the job row at least this often while waiting, in case a pub/sub wake-up was lost. */
const WAIT_POLL_MS = 1_000;

/** An accepted job, and for a synchronous caller the watch on its 'finished' event (close it when done). */
export interface Accepted {
  job: JobRow;
  replayed: boolean;
  watch: { finished: Promise<FinishedEvent | null>; close(): void } | null;
}

/** A job at its end, with the answer of a completed one (from its event, or read back). */
export interface Outcome {
  job: JobRow;
  output: JobOutput | null;
}

export class InferenceService {
  /** A namespace's retention class, from the catalogue's copy (made once, not per job). */
  private readonly retentionHoursOf: (namespaceId: string) => Promise<number | null>;

  constructor(private readonly d: CloudDeps) {
    this.retentionHoursOf = retentionHoursFor(d.catalog, d.config.PAYLOAD_RETENTION_HOURS);
  }

  /**
   * Accepts a job, or, for an Idempotency-Key already used by this namespace within the window, returns
   * that key's job (`replayed`), creating and charging nothing. `watch`: listen for the job's end from
   * before it is published (synchronous and streaming callers).
   */
  async accept(
    p: Principal,
    modelNames: readonly string[],
    request: JobRequest,
    opts: { idempotencyKey?: string; deadlineMs?: number; region?: string; priority?: PriorityClass; watch?: boolean } = {},
  ): Promise<Accepted> {
    const stages = stageTimer();
    const idempotencyKey = opts.idempotencyKey;
    const { config } = this.d;
    const idempotency =
      idempotencyKey === undefined
        ? undefined
        : { key: idempotencyKey, requestHash: requestHash(modelNames, request, opts), windowHours: IDEMPOTENCY_WINDOW_HOURS };
    if (idempotency) {
      const replay = await this.replayOf(p, idempotency);
      if (replay) return { job: replay, replayed: true, watch: null };
    }
    // The network config version in force decides the job's terms, which its row keeps (attempts,
    // execution timeout, the version): a later version never changes an accepted job.
    const terms = this.d.networkConfig.jobs();
    const configVersion = this.d.networkConfig.current()?.version ?? null;
    if (request.max_tokens > terms.maxTokens) {
      throw errors.invalid(`max_tokens (${request.max_tokens}) exceeds the network's maximum of ${terms.maxTokens} tokens.`, 'max_tokens');
    }
    const { model, placement } = await this.firstServable(p, modelNames, request, opts.region ?? null);
    const priority = opts.priority ?? 'standard';
    const jobPrices = prices(model, priority);
    const promptBound = requestPromptBound(request);
    let hold: number;
    try {
      hold = worstCaseCost(jobPrices, promptBound, request.max_tokens);
    } catch (err) {
      if (err instanceof RangeError) throw errors.invalid('The request could cost more than any account can hold; lower max_tokens.', 'max_tokens');
      throw err;
    }

    const now = Date.now();
    const id = newJobId(now);
    const deadline = new Date(now + (opts.deadlineMs ?? config.JOB_DEADLINE_MS));
    let row: JobRow;
    const checksMs = stages.lap('accept_checks');
    try {
      // The hold is the authoritative credit check, under the namespace's ledger lock.
      row = await this.d.settlement.acceptWithHold(
        {
          id,
          namespaceId: p.namespaceId,
          apiKeyId: p.keyId,
          model: model.name,
          maxAttempts: terms.maxAttempts,
          attemptTimeoutMs: terms.executionTimeoutMs,
          configVersion,
          maxTokens: request.max_tokens,
          promptTokensBound: promptBound,
          holdMicro: hold,
          inputPriceMicro: model.input_price_micro,
          outputPriceMicro: model.output_price_micro,
          minChargeMicro: model.min_charge_micro,
          priority,
          surchargeBps: jobPrices.surchargeBps,
          deadlineAt: deadline,
          network: placement.network,
          region: placement.region,
          subcloud: placement.subcloud,
        },
        p.monthlyCapMicro,
        idempotency,
      );
    } catch (err) {
      if (err instanceof IdempotencyKeyInUse && idempotency) {
        const replay = await this.replayOf(p, idempotency);
        if (replay) return { job: replay, replayed: true, watch: null };
      }
      if (err instanceof JobPastDeadlineError) throw errors.acceptTooLate(err);
      throw err;
    }
    const commitMs = stages.lap('accept_commit');
    const jobLog = this.d.jobLog ?? NO_JOB_LOG;
    jobLog.record({ jobId: id, namespaceId: p.namespaceId, kind: 'accepted', at: new Date(), model: model.name, stageMs: { accept_checks: checksMs, accept_commit: commitMs } });
    const watch = opts.watch ? this.d.events.watchFinished(id) : null;
    // The input's copy for reads after the fact, written behind under the namespace's plan; the job itself
    // runs from its ticket. The plan comes from the catalogue's in-process copy (no statement). `zero`
    // writes none: should its publish fail, the outbox finds no input to republish it from, and the job
    // ends at its deadline with its hold released (maintenance.service.ts), that plan's promise kept over a retry.
    const retentionHours = await this.retentionHoursOf(p.namespaceId);
    const stored =
      retentionHours === null
        ? Promise.resolve(false)
        : this.d.payloads.insertInput({ jobId: id, namespaceId: p.namespaceId, model: model.name, input: request, retentionHours }).then(
            () => true,
            (err: unknown) => {
              this.d.logger.warn({ err, jobId: id }, 'job input not stored in MongoDB (the job runs from its queue message)');
              return false;
            },
          );
    // A publish that failed leaves the job to the outbox, which republishes it from the stored input:
    // then (only) the answer waits for that copy to be written.
    const publishedAt = new Date();
    const published = await this.d.lifecycle.publish(ticketOf(row, request));
    const publishMs = stages.lap('publish');
    // Queued when the publish left, not when its confirm came back: a scheduler may dispatch the job before
    // the confirm is read. A job whose publish failed is logged when the outbox publishes it again.
    if (published) jobLog.record({ jobId: id, namespaceId: p.namespaceId, kind: 'queued', at: publishedAt, stageMs: { publish: publishMs } });
    if (!published) {
      this.d.payloads.writeInputNow(id);
      await stored;
    }
    return { job: row, replayed: false, watch };
  }

  /**
   * How many eligible nodes are online (at most 1), or null when Redis, which knows, is unreachable: the
   * job is then accepted all the same (nothing is refused that could run later; it waits in RabbitMQ
   * until a node is back or its deadline passes, and then fails with its hold released).
   */
  async liveNodeCount(placement: Placement): Promise<number | null> {
    if (this.d.redisReady && !this.d.redisReady()) {
      countDegraded('presence_skipped');
      return null;
    }
    try {
      return await this.d.presence.liveNodeCount(placement, 1);
    } catch (err) {
      if (!isRedisUnreachable(err)) throw err;
      countDegraded('presence_skipped');
      return null;
    }
  }

  /**
   * The first of `names` (a model, then its fallbacks) that can run the request: known to the catalogue
   * (by name or alias), with room for max_tokens in its context, and an eligible node online. Otherwise
   * the first candidate's reason: the answer a single model would get.
   */
  private async firstServable(p: Principal, names: readonly string[], request: JobRequest, region: string | null): Promise<{ model: ModelRow; placement: Placement }> {
    let refusal: AppError | null = null;
    for (const name of names) {
      const model = await this.d.catalog.model(name);
      let reason: AppError | null = null;
      if (!model) reason = errors.modelNotFound(name);
      else if (request.max_tokens > model.context_tokens) {
        reason = errors.invalid(`max_tokens (${request.max_tokens}) exceeds the model's context of ${model.context_tokens} tokens.`, 'max_tokens');
      }
      if (model && !reason) {
        // The job's placement: its namespace's network and subcloud now (an admin's binding applies to the
        // next job: the catalogue drops a changed namespace at once), and the region asked for; kept on the row.
        const placement = await this.placementFor(p.namespaceId, model.name, region);
        // null: Redis, which knows, is unreachable: accepted all the same (see liveNodeCount).
        if ((await this.liveNodeCount(withNeeds(placement, request))) !== 0) return { model, placement };
        reason = errors.noNode(model.name, Math.ceil(this.d.networkConfig.heartbeat().intervalMs / 1000), wherePlaced(withNeeds(placement, request)));
      }
      refusal ??= reason;
    }
    throw refusal ?? errors.invalid('No model named.', 'model');
  }

  /** Where a namespace's job for `model` may run (see domain/eligibility.ts). */
  async placementFor(namespaceId: string, model: string, region: string | null): Promise<Placement> {
    const ns = await this.d.catalog.namespace(namespaceId);
    if (!ns) throw errors.unauthenticated(); // a key whose namespace is gone
    return { network: ns.network, model, region, subcloud: ns.subcloud };
  }

  /** The job an idempotency key already names, after checking the request is the same one. */
  private async replayOf(p: Principal, idem: { key: string; requestHash: Buffer; windowHours: number }): Promise<JobRow | null> {
    const found = await this.d.store.findIdempotencyKey(p.namespaceId, idem.key, idem.windowHours);
    if (!found) return null;
    if (!found.request_hash.equals(idem.requestHash)) {
      throw errors.conflict('This Idempotency-Key was already used with a different request; use a new key for a new request.');
    }
    return this.d.store.findJobInNamespace(found.job_id, p.namespaceId);
  }

  /**
   * Waits until the job is terminal (or `timeoutMs` passes, or the client goes away) and returns it with
   * its answer. Its 'finished' event (watched since before the job was published, when `watch` is given)
   * carries the answer; the row is read only when no event came within WAIT_POLL_MS (a lost wake-up),
   * and the output then from MongoDB.
   */
  async waitForTerminal(job: JobRow, timeoutMs: number, signal?: AbortSignal, watch?: Accepted['watch']): Promise<Outcome> {
    const until = Date.now() + timeoutMs;
    const own = watch ?? this.d.events.watchFinished(job.id);
    try {
      // A job published after its watch began cannot have finished unseen: no read is needed first.
      let read = !watch;
      let row = job;
      for (;;) {
        if (read) {
          // The watch is already on: an event that comes after this read is not missed.
          const fresh = await this.d.store.findJob(job.id);
          if (!fresh) throw errors.jobNotFound(job.id);
          row = fresh;
          if (isTerminal(row.status)) {
            // The row says completed as the settlement commits, while the output is stored beside it and
            // the completion event (which carries the answer) waits for that store: a copy not readable yet,
            // or MongoDB unreachable, means waiting for the event rather than failing the wait.
            const output = await this.outputOf(row).catch(() => null);
            if (output !== null || row.status !== 'completed') return { job: row, output };
            read = false;
          }
        } else read = true;
        const left = until - Date.now();
        if (left <= 0 || signal?.aborted) return { job: row, output: null };
        const event = await raceEvent(own.finished, Math.min(left, WAIT_POLL_MS), signal);
        // No event within the poll (a lost wake-up) or one from an older sender without the answer: the row says.
        if (event?.status) return outcomeFrom(row, event);
      }
    } finally {
      own.close();
    }
  }

  async findForNamespace(jobId: string, namespaceId: string): Promise<{ job: JobRow; payload: PayloadDoc | null }> {
    // A malformed id names no job: refused before PostgreSQL, which would answer it with an error.
    if (!isUuid(jobId)) throw errors.jobNotFound(jobId);
    const job = await this.d.store.findJobInNamespace(jobId, namespaceId);
    if (!job) throw errors.jobNotFound(jobId);
    const payload = job.status === 'completed' ? ((await this.d.payloads.find(jobId, namespaceId)) ?? (await this.zeroHeld(job))) : null;
    return { job: await this.withAttemptInFlight(job), payload };
  }

  /**
   * A zero-plan job's output held for its first read (then gone: read once), as a payload; null when none
   * is held (another plan, read already, or past SPACE_ZERO_HOLD_SECONDS).
   */
  private async zeroHeld(job: JobRow): Promise<PayloadDoc | null> {
    const held = await this.d.zeroHolds?.take(job.namespace_id, job.id).catch((err: unknown) => {
      this.d.logger.warn({ err, jobId: job.id }, 'zero plan: held result not read (Redis)');
      return null;
    });
    if (!held) return null;
    const at = new Date(held.at);
    return { _id: job.id, namespaceId: job.namespace_id, model: held.model, results: { [String(held.attempt)]: { output: held.output, usage: held.usage } }, trace: [], createdAt: at, expireAt: at };
  }

  /**
   * Cancels one of the namespace's jobs (POST /v1/jobs/{id}/cancel): a queued job releases its hold in
   * full; a running one ends at once, its node's slot is returned, and its client pays only for the
   * streamed text it received (lifecycle.endWithoutResult). A job that has already ended is answered as
   * it stands, unchanged: cancelling is idempotent, and never undoes a completion.
   */
  async cancel(jobId: string, namespaceId: string): Promise<JobRow> {
    if (!isUuid(jobId)) throw errors.jobNotFound(jobId);
    const job = await this.d.store.findJobInNamespace(jobId, namespaceId);
    if (!job) throw errors.jobNotFound(jobId);
    if (job.finished_at) return job;
    const ended = await this.d.lifecycle.end(jobId, endings.cancelled());
    if (ended) return ended;
    // It ended meanwhile, by another hand: answer as it stands.
    return (await this.d.store.findJobInNamespace(jobId, namespaceId)) ?? job;
  }

  /** A completed job's output as stored (null once expired). */
  async outputOf(job: JobRow): Promise<JobOutput | null> {
    if (job.status !== 'completed') return null;
    const payload = (await this.d.payloads.find(job.id, job.namespace_id)) ?? (await this.zeroHeld(job));
    return payload?.results?.[String(job.attempt)]?.output ?? null;
  }

  /**
   * The job as a reader should see it: a queued row whose attempt is in flight is running (the attempt
   * lives in Redis until it ends; redis/inflight.repository.ts).
   */
  async withAttemptInFlight(job: JobRow): Promise<JobRow> {
    if (job.status !== 'queued') return job;
    // While Redis is unreachable the row is the answer (queued, though its attempt may be running).
    if (this.d.redisReady && !this.d.redisReady()) {
      countDegraded('inflight_skipped');
      return job;
    }
    let inflight: Awaited<ReturnType<CloudDeps['inflight']['current']>>;
    try {
      inflight = await this.d.inflight.current(job.id);
    } catch (err) {
      if (!isRedisUnreachable(err)) throw err;
      countDegraded('inflight_skipped');
      return job;
    }
    if (!inflight || inflight.done || inflight.attempt <= job.attempt) return job;
    return { ...job, status: 'running', attempt: inflight.attempt, node_id: inflight.nodeId };
  }
}

/** The terminal row and answer a 'finished' event describes, on top of the row as accepted. */
function outcomeFrom(row: JobRow, e: FinishedEvent): Outcome {
  const status = e.status!;
  const done = new Date();
  if (status === 'completed' && e.completed) {
    const { attempt, usage, chargedMicro, output } = e.completed;
    return {
      job: { ...row, status, attempt, prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens, charged_micro: chargedMicro, finished_at: done },
      output,
    };
  }
  return { job: { ...row, status, charged_micro: 0, error_code: e.error?.code ?? null, error_message: e.error?.message ?? null, finished_at: done }, output: null };
}

/** The event, or null after `ms` or when `signal` aborts. */
function raceEvent(event: Promise<FinishedEvent | null>, ms: number, signal?: AbortSignal): Promise<FinishedEvent | null> {
  return new Promise((resolve) => {
    const done = (e: FinishedEvent | null) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(e);
    };
    const onAbort = () => done(null);
    const timer = setTimeout(() => done(null), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
    void event.then(done);
  });
}

/**
 * A retried request must be the same request: hashed over the model, what the node would run, and the
 * terms the caller chose (priority class, region, deadline), any of which changes the job and its price.
 */
function requestHash(models: readonly string[], request: JobRequest, terms: { priority?: PriorityClass; region?: string; deadlineMs?: number }): Buffer {
  // Default terms add nothing, so that keys stored before the terms counted still match their requests.
  const chosen = {
    ...(terms.priority !== undefined && terms.priority !== 'standard' ? { priority: terms.priority } : {}),
    ...(terms.region !== undefined ? { region: terms.region } : {}),
    ...(terms.deadlineMs !== undefined ? { deadlineMs: terms.deadlineMs } : {}),
  };
  // One model hashes as before fallbacks existed; a list of them is part of the request.
  const model = models.length === 1 ? models[0] : models;
  return Buffer.from(sha256Hex(canonicalJson({ model, request, ...chosen })), 'hex');
}

/** "on testnet in region eu-west": the placement's part of a no-node message (the model is named apart). */
function wherePlaced(p: Placement): string {
  return [`on ${p.network}`, p.region ? `in region ${p.region}` : '', p.subcloud ? `in subcloud ${p.subcloud}` : '', p.needs?.length ? `with ${p.needs.join(', ')}` : ''].filter(Boolean).join(' ');
}

/** The prices a job in `priority` is accepted under: the model's, with the class's surcharge. */
function prices(m: ModelRow, priority: PriorityClass): ModelPrices {
  return { inputPriceMicro: m.input_price_micro, outputPriceMicro: m.output_price_micro, minChargeMicro: m.min_charge_micro, surchargeBps: m.priority_surcharge_bps[priority] ?? 0 };
}

export function jobFailure(job: JobRow): AppError {
  return AppError.jobEnded(job.status === 'expired' ? 'expired' : 'failed', job.error_code, job.error_message);
}
