// Finalizing an attempt from a node's signed message: a result completes the job (output to MongoDB,
// settlement in PostgreSQL, then one Redis script that returns the node's slot and tells every instance,
// with the answer in the event), a job_error fails the attempt so the scheduler retries. Every step is
// idempotent and fenced by (job, attempt): a replayed, late or forged message changes nothing.
//
// The success path reads nothing back: the gateway that dispatched the attempt knows its terms (the job's
// ticket came with the dispatch; redis/job-events.ts DispatchEnvelope) and that this node runs it. A
// result posted over HTTP by a node whose socket dropped is checked against the job's in-flight record
// (Redis) and its row (PostgreSQL) instead.
import { outputHash, type JobErrorMessage, type ResultMessage } from '../domain/protocol.js';
import { verifyMessageAsync } from '../domain/verify-pool.js';
import { stageSince, stageTimer } from '../metrics/job-stages.js';
import type { Logger } from 'pino';
import { termsOf, type JobTerms } from '../domain/job-ticket.js';
import { cutByClientDeadline, endings } from '../domain/job-states.js';
import { completionTokenBound } from '../domain/usage-bounds.js';
import { deliveredText, resultMismatch, type ResultExpectation } from '../domain/job-results.js';
import type { UsageRules } from '../catalog/usage-rules.js';
import type { JobRow } from '../postgres/jobs.repository.js';
import type { PayloadsRepository } from '../mongo/payloads.repository.js';
import type { ZeroHolds } from '../redis/zero-holds.repository.js';
import type { InflightRepository } from '../redis/inflight.repository.js';
import type { SettlementService } from '../jobs/settlement.service.js';
import type { AttemptOutcome, JobLifecycle } from '../jobs/lifecycle.service.js';
import type { JobStreams } from '../redis/job-streams.js';
import { NO_JOB_LOG, type JobLog, type StageMs } from '../domain/job-log.js';
import { NO_NODE_STATS, type NodeStatsSink } from '../domain/node-stats.js';

export type ResultVerdict =
  | { accepted: true }
  | { accepted: false; reason: 'bad_signature' | 'output_hash_mismatch' | 'usage_out_of_bounds' | 'stream_mismatch' | 'result_mismatch' | 'stale_attempt' | 'unknown_job' };

/** What the gateway knows of an attempt it dispatched to a node's socket. */
export interface AttemptContext {
  attempt: number;
  namespaceId: string;
  model: string;
  terms: JobTerms;
  /** When the attempt was dispatched (ms). */
  startedAt: number;
  /** The job's own deadline (ms), set by its client; null when not known (a dispatch of an older version). */
  jobDeadlineAt: number | null;
  /** The job streams (its chunks must add up to the result). */
  streamed: boolean;
  /** What the dispatched request asks the result to be (domain/job-results.ts); null when not at hand. */
  expects: ResultExpectation | null;
}

/** Tries at storing a result's output (each may wait out the driver's server selection), and the pause between them. */
const RESULT_STORE_TRIES = 2;
const RESULT_STORE_RETRY_MS = 200;

/**
 * What the results service needs from PostgreSQL (only for a result from elsewhere than the socket its
 * attempt was dispatched to: the success path reads nothing): the port its fast tests fake
 * (test/fakes/jobs.store.ts); on the engine postgres/jobs.store.ts.
 */
export interface ResultsStore {
  findJob(jobId: string): Promise<JobRow | null>;
}

export interface ResultsDeps {
  store: ResultsStore;
  settlement: Pick<SettlementService, 'complete'>;
  /** MongoDB: each completed attempt's output (not under the zero plan). */
  payloads: Pick<PayloadsRepository, 'saveResult'>;
  inflight: Pick<InflightRepository, 'completed' | 'current'>;
  lifecycle: Pick<JobLifecycle, 'failAttempt' | 'end'>;
  streams: Pick<JobStreams, 'text'>;
  usageRules: Pick<UsageRules, 'ruleFor'>;
  /**
   * The retention class a namespace's outputs are written under now (its plan, from the catalogue's
   * in-process copy); null for the `zero` plan, whose outputs are never written to MongoDB.
   */
  retentionHoursFor: (namespaceId: string) => Promise<number | null>;
  /** Where the zero plan's outputs wait for their first read (redis/zero-holds.repository.ts). */
  zeroHolds?: Pick<ZeroHolds, 'hold'>;
  logger: Logger;
  /** The job log: each completion with its stage times (written behind, never waited for). */
  jobLog?: JobLog;
  /** Node stats: each completion's tokens over the time the backbone saw it take. */
  nodeStats?: NodeStatsSink;
}

export class ResultsService {
  constructor(private readonly d: ResultsDeps) {}

  /**
   * Finalizes a result. `dispatched`: the attempt as the gateway that dispatched it to this node's socket
   * knows it; null for a result from elsewhere (HTTP), which is then checked against the records.
   * `signatureChecked`: the caller verified the signature already (each is checked once).
   */
  async acceptResult(msg: ResultMessage, dispatched: AttemptContext | null, signatureChecked = false): Promise<ResultVerdict> {
    const arrivedAt = Date.now();
    const stages = stageTimer();
    const stageMs: StageMs = {};
    if (!signatureChecked && !(await verifyMessageAsync(msg, msg.nodeId))) return { accepted: false, reason: 'bad_signature' };
    if (!signatureChecked) stageMs.verify = stages.lap('verify');
    if (outputHash(msg.output) !== msg.outputHash) return { accepted: false, reason: 'output_hash_mismatch' };
    const ctx = dispatched ?? (await this.contextFromRecords(msg.jobId, msg.attempt, msg.nodeId));
    if (ctx === 'unknown_job') return { accepted: false, reason: 'unknown_job' };
    if (ctx === null || ctx.attempt !== msg.attempt) return { accepted: false, reason: 'stale_attempt' };

    // A streamed attempt: its signed output must be exactly what it streamed, which the client may have
    // read already; anything else would store and bill an answer the client did not get. An attempt that
    // streamed nothing (an agent or runtime that cannot stream) is fine: its relay sends the whole output
    // as one piece. The gateway handles a job's chunks and its result in arrival order, so the stream is
    // complete here.
    if (ctx.streamed) {
      const streamed = await this.d.streams.text(msg.jobId, msg.attempt);
      if (streamed !== null && streamed !== msg.output.content) {
        await this.failAttempt(msg.jobId, msg.attempt, msg.nodeId, 'invalid_result', 'the result differs from the text the node streamed', ctx.startedAt);
        return { accepted: false, reason: 'stream_mismatch' };
      }
    }

    // An answer of the wrong shape (text for an embedding job, vectors of the wrong count or length).
    const mismatch = resultMismatch(ctx.expects, msg.output, msg.usage);
    if (mismatch !== null) {
      await this.failAttempt(msg.jobId, msg.attempt, msg.nodeId, 'invalid_result', mismatch, ctx.startedAt);
      return { accepted: false, reason: 'result_mismatch' };
    }

    // The claim is the bill: it must fit what the output can hold, counted here (domain/usage-bounds.ts).
    const rule = await this.d.usageRules.ruleFor(ctx.model);
    if (rule && msg.usage.completion_tokens > completionTokenBound(rule, deliveredText(msg.output))) {
      await this.failAttempt(msg.jobId, msg.attempt, msg.nodeId, 'invalid_result', 'completion tokens beyond what the output holds', ctx.startedAt);
      return { accepted: false, reason: 'usage_out_of_bounds' };
    }

    // The output to MongoDB and the settlement to PostgreSQL go together, and the job is reported completed
    // (below) only once both are done: whoever is told "completed" finds its output stored. Keyed by
    // attempt, so a superseded attempt racing this one never overwrites the winner's output (the job row
    // names the attempt whose output counts).
    const stored = this.storeResult(msg, ctx).then((ms) => {
      if (ms !== null) stageMs.store_result = ms;
    });
    const settleStart = Date.now();
    let settled: Awaited<ReturnType<SettlementService['complete']>>;
    try {
      settled = await this.d.settlement.complete({
        jobId: msg.jobId,
        attempt: msg.attempt,
        nodeId: msg.nodeId,
        usage: msg.usage,
        outputEmpty: msg.output.content === '' && msg.output.embeddings === undefined && msg.output.tool_calls === undefined,
        terms: ctx.terms,
        startedAt: new Date(ctx.startedAt),
      });
    } finally {
      stageMs.settle = stageSince('settle', settleStart);
    }
    if (settled.outcome === 'usage_out_of_bounds') {
      // Usage is the node's claim, and the bill: beyond what the request allowed it is an invalid result.
      await this.failAttempt(msg.jobId, msg.attempt, msg.nodeId, 'invalid_result', 'usage beyond the request bounds', ctx.startedAt);
      return { accepted: false, reason: 'usage_out_of_bounds' };
    }
    if (settled.outcome === 'stale') return { accepted: false, reason: 'stale_attempt' };
    await stored;

    const completeStart = Date.now();
    await this.d.inflight.completed(msg.nodeId, msg.jobId, {
      kind: 'finished',
      jobId: msg.jobId,
      status: 'completed',
      completed: { attempt: msg.attempt, output: msg.output, usage: msg.usage, chargedMicro: settled.chargedMicro },
    }, { model: ctx.model, tokens: msg.usage.completion_tokens, bytes: Buffer.byteLength(deliveredText(msg.output), 'utf8') });
    stageMs.complete = stageSince('complete', completeStart);
    // The node's time as the backbone saw it: from the dispatch to the result's arrival here.
    const nodeMs = Math.max(0, arrivedAt - ctx.startedAt);
    (this.d.jobLog ?? NO_JOB_LOG).record({
      jobId: msg.jobId,
      namespaceId: ctx.namespaceId,
      kind: 'completed',
      at: new Date(),
      attempt: msg.attempt,
      nodeId: msg.nodeId,
      model: ctx.model,
      usage: { prompt_tokens: msg.usage.prompt_tokens, completion_tokens: msg.usage.completion_tokens },
      stageMs: { node: nodeMs, ...stageMs },
    });
    (this.d.nodeStats ?? NO_NODE_STATS).attemptCompleted(msg.nodeId, ctx.model, msg.usage.completion_tokens, nodeMs);
    return { accepted: true };
  }

  /**
   * Stores an attempt's output, trying again on failure (RESULT_STORE_TRIES in all). Never throws: a job
   * whose settlement committed is reported completed even when MongoDB refused its copy every time, so
   * that the client gets the answer it was charged for; that copy is then missing for reads after the
   * fact, which the error logged here says.
   */
  private async storeResult(msg: ResultMessage, ctx: AttemptContext): Promise<number | null> {
    const start = Date.now();
    const retentionHours = await this.d.retentionHoursFor(ctx.namespaceId);
    if (retentionHours === null) {
      // The zero plan: nothing goes to MongoDB; the output travels in the completion event, and is held in
      // Redis for a client that polls for it instead (read once, or gone at its TTL).
      await this.d.zeroHolds
        ?.hold(ctx.namespaceId, msg.jobId, { attempt: msg.attempt, model: ctx.model, output: msg.output, usage: msg.usage, at: Date.now() })
        .catch((err: unknown) => this.d.logger.warn({ err, jobId: msg.jobId }, 'zero plan: result not held for polling (Redis)'));
      return null;
    }
    const doc = {
      jobId: msg.jobId,
      namespaceId: ctx.namespaceId,
      model: ctx.model,
      attempt: msg.attempt,
      output: msg.output,
      usage: msg.usage,
      nodeId: msg.nodeId,
      retentionHours,
    };
    for (let tries = 1; ; tries++) {
      try {
        await this.d.payloads.saveResult(doc);
        return stageSince('store_result', start);
      } catch (err) {
        if (tries >= RESULT_STORE_TRIES) {
          this.d.logger.error({ err, jobId: msg.jobId, attempt: msg.attempt }, 'result output not stored in MongoDB; the job completes without its stored copy');
          return null;
        }
        await new Promise((resolve) => setTimeout(resolve, RESULT_STORE_RETRY_MS * tries));
      }
    }
  }

  /**
   * Ends an attempt the node itself gave up on (the signature is the caller's to check). Given up at the
   * job's deadline, it was cut by the client's deadline: the job expires and the node is not blamed (no
   * failure counted, no cooldown); otherwise the attempt fails and the job is retried. A message from
   * elsewhere (HTTP, `dispatched` null) counts only if the records say that this node runs the attempt,
   * so that a node cannot end another node's attempt of a job it once ran.
   */
  async acceptJobError(msg: JobErrorMessage, dispatched: AttemptContext | null): Promise<boolean> {
    const ctx = dispatched ?? (await this.contextFromRecords(msg.jobId, msg.attempt, msg.nodeId));
    if (ctx === null || ctx === 'unknown_job') return false;
    if (cutByClientDeadline(Date.now(), ctx.jobDeadlineAt)) {
      return (await this.d.lifecycle.end(msg.jobId, endings.deadlineExceeded())) !== null;
    }
    return this.failAttempt(msg.jobId, msg.attempt, msg.nodeId, 'failed', msg.message, ctx.startedAt);
  }

  /**
   * Fails an attempt the gateway dispatched to this node's socket, for a reason it observed (a
   * disconnect, an invalid stream or result). No-op unless the attempt may still end.
   */
  failAttempt(jobId: string, attempt: number, nodeId: string, outcome: AttemptOutcome, reason: string, startedAt: number): Promise<boolean> {
    return this.d.lifecycle.failAttempt(jobId, attempt, nodeId, outcome, reason, new Date(startedAt));
  }

  /**
   * The attempt as the records know it, when `nodeId` runs attempt `attempt` of the job: its in-flight
   * record in Redis (or, for an attempt an older version started, the job's row) must say so. Null when
   * they do not (a stale attempt); 'unknown_job' for a job that does not exist.
   */
  private async contextFromRecords(jobId: string, attempt: number, nodeId: string): Promise<AttemptContext | 'unknown_job' | null> {
    const [inflight, job] = await Promise.all([this.d.inflight.current(jobId), this.d.store.findJob(jobId)]);
    if (!job) return 'unknown_job';
    if (job.finished_at) return null;
    const running =
      (inflight !== null && !inflight.done && inflight.attempt === attempt && inflight.nodeId === nodeId && job.status !== 'running' && job.attempt < attempt) ||
      (job.status === 'running' && job.attempt === attempt && job.node_id === nodeId);
    if (!running) return null;
    return {
      attempt,
      namespaceId: job.namespace_id,
      model: job.model,
      terms: termsOf(job),
      startedAt: inflight?.startedAt ?? Date.now(),
      jobDeadlineAt: job.deadline_at.getTime(),
      // Whether it streamed is not known here: check the stream in case it did.
      streamed: true,
      expects: null,
    };
  }
}
