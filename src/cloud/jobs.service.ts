// Accepting a chat-completion job and answering for it: validate, price the worst case, persist (payload
// to MongoDB, job row + hold to PostgreSQL in one transaction), publish with confirms, then wait for the
// terminal state (synchronous mode) or answer at once (asynchronous mode).
import type { Config } from '../config.js';
import { AppError, errors } from '../errors.js';
import { IDEMPOTENCY_WINDOW_HOURS, isTerminal } from '../domain/jobs.js';
import { promptTokenUpperBound, worstCaseCost, type ModelPrices } from '../domain/pricing.js';
import type { PriorityClass } from '../domain/priority.js';
import type { JobRequest } from '../domain/protocol.js';
import type { Db } from '../postgres/db.js';
import { findJob, findJobInNamespace, JobPastDeadlineError, type JobRow } from '../postgres/jobs.repository.js';
import { balanceOf } from '../postgres/ledger.repository.js';
import { findModel, type ModelRow } from '../postgres/models.repository.js';
import type { PayloadsRepository, PayloadDoc } from '../mongo/payloads.repository.js';
import type { PresenceRepository } from '../redis/presence.repository.js';
import type { JobEvents } from '../redis/job-events.js';
import { IdempotencyKeyInUse, type SettlementService } from '../jobs/settlement.service.js';
import { findIdempotencyKey } from '../postgres/idempotency.repository.js';
import { canonicalJson, sha256Hex } from '../domain/signatures.js';
import { newJobId } from '../domain/job-ids.js';
import type { JobLifecycle } from '../jobs/lifecycle.service.js';
import type { Principal } from './auth.service.js';
import { findNamespace } from '../postgres/accounts.repository.js';
import type { Placement } from '../domain/eligibility.js';
import type { CurrentNetworkConfig } from '../network/network-config.service.js';

export interface CloudDeps {
  config: Config;
  db: Db;
  settlement: SettlementService;
  payloads: PayloadsRepository;
  presence: PresenceRepository;
  events: JobEvents;
  lifecycle: JobLifecycle;
  /** The job parameters in force (maximum tokens, attempts, execution timeout). */
  networkConfig: CurrentNetworkConfig;
}

/** Re-read the job row at least this often while waiting, in case a pub/sub wake-up was lost. */
const WAIT_POLL_MS = 1_000;

export class JobsService {
  constructor(private readonly d: CloudDeps) {}

  /**
   * Accepts a job, or, for an Idempotency-Key already used by this namespace within the window, returns
   * that key's job (`replayed`), creating and charging nothing.
   */
  async accept(
    p: Principal,
    modelName: string,
    request: JobRequest,
    opts: { idempotencyKey?: string; deadlineMs?: number; region?: string; priority?: PriorityClass } = {},
  ): Promise<{ job: JobRow; replayed: boolean }> {
    const idempotencyKey = opts.idempotencyKey;
    const { config } = this.d;
    const idempotency = idempotencyKey === undefined ? undefined : { key: idempotencyKey, requestHash: requestHash(modelName, request), windowHours: IDEMPOTENCY_WINDOW_HOURS };
    if (idempotency) {
      const replay = await this.replayOf(p, idempotency);
      if (replay) return { job: replay, replayed: true };
    }
    // The network config version in force decides the job's terms, which its row keeps (attempts,
    // execution timeout, the version): a later version never changes an accepted job.
    const terms = this.d.networkConfig.jobs();
    const configVersion = this.d.networkConfig.current()?.version ?? null;
    if (request.max_tokens > terms.maxTokens) {
      throw errors.invalid(`max_tokens (${request.max_tokens}) exceeds the network's maximum of ${terms.maxTokens} tokens.`, 'max_tokens');
    }
    const model = await findModel(this.d.db, modelName);
    if (!model) throw errors.modelNotFound(modelName);
    if (request.max_tokens > model.context_tokens) {
      throw errors.invalid(`max_tokens (${request.max_tokens}) exceeds the model's context of ${model.context_tokens} tokens.`, 'max_tokens');
    }
    // The job's placement: its namespace's network and subcloud now (read from PostgreSQL, so that an
    // admin's binding applies to the next job), and the region asked for; stored on the job row.
    const placement = await this.placementFor(p.namespaceId, model.name, opts.region ?? null);
    if ((await this.d.presence.liveNodeCount(placement, 1)) === 0) {
      throw errors.noNode(model.name, Math.ceil(this.d.networkConfig.heartbeat().intervalMs / 1000), wherePlaced(placement));
    }
    const priority = opts.priority ?? 'standard';
    const jobPrices = prices(model, priority);
    const promptBound = promptTokenUpperBound(request.messages);
    let hold: number;
    try {
      hold = worstCaseCost(jobPrices, promptBound, request.max_tokens);
    } catch (err) {
      if (err instanceof RangeError) throw errors.invalid('The request could cost more than any account can hold; lower max_tokens.', 'max_tokens');
      throw err;
    }
    // Cheap pre-check so that a namespace that plainly cannot pay costs no writes; the hold below is the
    // authoritative check, under a row lock.
    const available = await balanceOf(this.d.db, 'ns_available', p.namespaceId);
    if (available < hold) throw errors.insufficientCredits(hold, available);

    const now = Date.now();
    const id = newJobId(now);
    const deadline = new Date(now + (opts.deadlineMs ?? config.JOB_DEADLINE_MS));
    await this.d.payloads.insertInput({
      jobId: id,
      namespaceId: p.namespaceId,
      model: model.name,
      input: request,
      expireAt: new Date(now + config.PAYLOAD_RETENTION_HOURS * 3_600_000),
    });
    let row: JobRow;
    try {
      row = await this.d.settlement.acceptWithHold({
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
      }, p.monthlyCapMicro, idempotency);
    } catch (err) {
      // Not accepted: leave nothing behind (the payload would expire anyway, but need not wait for it).
      await this.d.payloads.delete(id).catch(() => undefined);
      if (err instanceof IdempotencyKeyInUse && idempotency) {
        const replay = await this.replayOf(p, idempotency);
        if (replay) return { job: replay, replayed: true };
      }
      if (err instanceof JobPastDeadlineError) throw errors.acceptTooLate(err);
      throw err;
    }
    await this.d.lifecycle.publish(row);
    return { job: row, replayed: false };
  }

  /** Where a namespace's job for `model` may run (see domain/eligibility.ts). */
  async placementFor(namespaceId: string, model: string, region: string | null): Promise<Placement> {
    const ns = await findNamespace(this.d.db, namespaceId);
    if (!ns) throw errors.unauthenticated(); // a key whose namespace is gone
    return { network: ns.network, model, region, subcloud: ns.subcloud };
  }

  /** The job an idempotency key already names, after checking the request is the same one. */
  private async replayOf(p: Principal, idem: { key: string; requestHash: Buffer; windowHours: number }): Promise<JobRow | null> {
    const found = await findIdempotencyKey(this.d.db, p.namespaceId, idem.key, idem.windowHours);
    if (!found) return null;
    if (!found.request_hash.equals(idem.requestHash)) {
      throw errors.conflict('This Idempotency-Key was already used with a different request; use a new key for a new request.');
    }
    return findJobInNamespace(this.d.db, found.job_id, p.namespaceId);
  }

  /** Waits until the job is terminal (or `timeoutMs` passes, or the client goes away); returns the latest row. */
  async waitForTerminal(jobId: string, timeoutMs: number, signal?: AbortSignal): Promise<JobRow> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const row = await findJob(this.d.db, jobId);
      if (!row) throw errors.jobNotFound(jobId);
      const left = until - Date.now();
      if (isTerminal(row.status) || left <= 0 || signal?.aborted) return row;
      await this.d.events.waitFor(jobId, (e) => e.kind === 'finished', Math.min(left, WAIT_POLL_MS), signal);
    }
  }

  async findForNamespace(jobId: string, namespaceId: string): Promise<{ job: JobRow; payload: PayloadDoc | null }> {
    if (!/^[0-9a-f-]{36}$/i.test(jobId)) throw errors.jobNotFound(jobId);
    const job = await findJobInNamespace(this.d.db, jobId, namespaceId);
    if (!job) throw errors.jobNotFound(jobId);
    const payload = job.status === 'completed' ? await this.d.payloads.find(jobId, namespaceId) : null;
    return { job, payload };
  }

  async payloadFor(job: JobRow): Promise<PayloadDoc | null> {
    return this.d.payloads.find(job.id, job.namespace_id);
  }
}

/** A retried request must be the same request: hashed over the model and what the node would run. */
function requestHash(model: string, request: JobRequest): Buffer {
  return Buffer.from(sha256Hex(canonicalJson({ model, request })), 'hex');
}

/** "on testnet in region eu-west": the placement's part of a no-node message (the model is named apart). */
function wherePlaced(p: Placement): string {
  return [`on ${p.network}`, p.region ? `in region ${p.region}` : '', p.subcloud ? `in subcloud ${p.subcloud}` : ''].filter(Boolean).join(' ');
}

/** The prices a job in `priority` is accepted under: the model's, with the class's surcharge. */
function prices(m: ModelRow, priority: PriorityClass): ModelPrices {
  return { inputPriceMicro: m.input_price_micro, outputPriceMicro: m.output_price_micro, minChargeMicro: m.min_charge_micro, surchargeBps: m.priority_surcharge_bps[priority] ?? 0 };
}

export function jobFailure(job: JobRow): AppError {
  if (job.status === 'expired') return new AppError('job_expired', job.error_code ?? 'job_expired', job.error_message ?? 'The job expired.');
  return new AppError('job_failed', job.error_code ?? 'job_failed', job.error_message ?? 'The job failed; no credits were charged.');
}
