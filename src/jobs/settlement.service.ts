// Settlement: the PostgreSQL statements that move a job's credits. Each runs the job's state change and
// its ledger postings in one transaction, fenced by the job's state and attempt, so a job is held once,
// settled at most once, and never charged for a failure.
//
// Holds and completions are one statement each (postgres/settlement-batch.repository.ts) and may be group-committed
// (common/group-commit.ts): concurrent calls then share a statement, each still getting the outcome it
// would get alone (one code path, batches of one or of many). The statements are behind SettlementStore
// (postgres/settlement.store.ts on the engine; test/fakes/settlement.store.ts in the fast tests).
import { ledgerBatchItems } from '../metrics/engine-metrics.js';
import { jobRowOf, type JobRow, type NewJob } from '../postgres/jobs.repository.js';
import * as postings from '../domain/postings.js';
import { GroupCommit, type GroupCommitOptions, type ItemOutcome } from '../common/group-commit.js';
import { actualCost, splitCapture } from '../domain/pricing.js';
import type { Usage } from '../domain/protocol.js';
import { termsOf, type JobTerms } from '../domain/job-ticket.js';
import { epochOf, POINTS_PER_JOB, type RcpClock } from '../domain/rcp.js';
import type { CompletionOutcome, CompletionRequest, HoldRequest } from '../postgres/settlement-batch.repository.js';

export { IdempotencyKeyInUse, type CompletionOutcome, type CompletionRequest } from '../postgres/settlement-batch.repository.js';

/** A node's result to settle: its attempt, usage, and the job's terms from its ticket (domain/job-ticket.ts). */
export interface SettleInput {
  jobId: string;
  attempt: number;
  nodeId: string;
  usage: Usage;
  outputEmpty: boolean;
  terms: JobTerms;
  startedAt?: Date | null;
}

/**
 * What a client received of an attempt's answer before the job ended by its own doing (its deadline):
 * billed, though the job did not complete. `usage` is the backbone's count, never the node's claim.
 */
export interface DeliveredPart {
  attempt: number;
  nodeId: string;
  usage: Usage;
}

/** A job row as a job's end without a result returns it: with the node of the attempt it cut short, if any. */
export type EndedJob = JobRow & { interrupted_node_id: string | null };

/**
 * What settlement needs from PostgreSQL: the port its fast tests fake (test/fakes/settlement.store.ts); on
 * the engine it is postgres/settlement.store.ts. Holds and completions are one statement per batch, each
 * item getting the outcome it would get alone (a refusal is that item's error; a broken connection fails
 * the whole batch); `...One` runs a batch of one, resolving with its outcome or throwing its refusal.
 */
export interface SettlementStore {
  holdBatch(items: readonly HoldRequest[]): Promise<ReadonlyArray<ItemOutcome<void>>>;
  holdOne(item: HoldRequest): Promise<void>;
  completeBatch(items: readonly CompletionRequest[], epoch: number, pointsPerJob: number): Promise<ReadonlyArray<ItemOutcome<CompletionOutcome>>>;
  completeOne(item: CompletionRequest, epoch: number, pointsPerJob: number): Promise<CompletionOutcome>;
  /** All of `fn` or none of it: a job's end, its postings, its key's spend, quarantine and webhook outbox. */
  transaction<T>(fn: (tx: SettlementTx) => Promise<T>): Promise<T>;
}

export interface SettlementTx {
  /** Ends the job if unfinished (charging nothing yet); null when it had already ended. */
  endJobWithoutResult(jobId: string, status: 'failed' | 'expired' | 'cancelled', code: string, message: string): Promise<EndedJob | null>;
  /** Records on the row just ended what its client was charged for the part it received. */
  chargeDelivered<R extends JobRow>(row: R, d: DeliveredPart & { chargedMicro: number }): Promise<R>;
  /** Writes a posting built by domain/postings.ts (a posting with no lines writes nothing). */
  post(p: postings.Posting): Promise<void>;
  /** The node's operator account, or null: none on record. */
  operatorOf(nodeId: string): Promise<string | null>;
  /** Replaces the job's hold by its charge in its key's monthly spend. */
  settleHold(keyId: string, jobCreatedAt: Date, holdMicro: number, chargedMicro: number): Promise<void>;
  quarantine(jobId: string, reason: string): Promise<void>;
  /** The job.failed webhook messages of a job just ended (failed or expired; none for a cancelled one). */
  enqueueJobEnded(row: JobRow): Promise<void>;
}

export interface Settled {
  outcome: CompletionOutcome;
  /** What the job was charged (0 unless completed). */
  chargedMicro: number;
}

export class SettlementService {
  private readonly holds: GroupCommit<HoldRequest, void> | null;
  private readonly completions: GroupCommit<CompletionRequest, CompletionOutcome> | null;

  /** `batching`: group-commit holds and completions with these limits; null (or maxItems 1): one statement per operation. */
  constructor(
    private readonly store: SettlementStore,
    private readonly operatorShareBps: number,
    private readonly rcp: RcpClock,
    batching: GroupCommitOptions | null = null,
  ) {
    const on = batching !== null && batching.maxItems > 1;
    const observed = (operation: 'hold' | 'settle') => ({ ...batching!, onBatch: (size: number) => ledgerBatchItems.observe({ operation }, size) });
    this.holds = on ? new GroupCommit((items) => store.holdBatch(items), observed('hold')) : null;
    this.completions = on ? new GroupCommit((items) => store.completeBatch(items, this.epochNow(), POINTS_PER_JOB), observed('settle')) : null;
  }

  /**
   * Inserts the job row, claims its idempotency key (if any) and takes its hold, in one statement.
   * Throws insufficient_credits (or monthly_cap_reached), IdempotencyKeyInUse or JobPastDeadlineError,
   * having written nothing.
   */
  async acceptWithHold(
    job: NewJob,
    keyMonthlyCapMicro: number | null,
    idempotency?: { key: string; requestHash: Buffer; windowHours: number },
  ): Promise<JobRow> {
    const request: HoldRequest = { job, keyMonthlyCapMicro, idempotency };
    await (this.holds ? this.holds.submit(request) : this.store.holdOne(request));
    return jobRowOf(job);
  }

  /**
   * Completes the job with attempt `attempt`'s result, if that attempt may still settle: captures the
   * charge (the operator's part to the node's operator, the rest to the platform) and releases the rest
   * of the hold. 'stale' (nothing changed) for a late, duplicate or superseded result;
   * 'usage_out_of_bounds' (nothing changed) when the usage passes the job's bounds.
   */
  async complete(result: SettleInput): Promise<Settled> {
    const chargedMicro = actualCost(result.terms, result.usage, result.terms.holdMicro, result.outputEmpty);
    const request: CompletionRequest = {
      jobId: result.jobId,
      attempt: result.attempt,
      nodeId: result.nodeId,
      usage: result.usage,
      chargedMicro,
      operatorMicro: splitCapture(chargedMicro, this.operatorShareBps).operator,
      startedAt: result.startedAt ?? null,
    };
    const outcome = await (this.completions ? this.completions.submit(request) : this.store.completeOne(request, this.epochNow(), POINTS_PER_JOB));
    return { outcome, chargedMicro: outcome === 'completed' ? chargedMicro : 0 };
  }

  /** Resolves when no grouped hold or completion is waiting or running (for shutdown). */
  async drained(): Promise<void> {
    await Promise.all([this.holds?.drained(), this.completions?.drained()]);
  }

  private epochNow(): number {
    return epochOf(this.rcp, Date.now());
  }

  /**
   * Ends an unfinished job without a result, releases its hold, and (failed or expired) puts it in
   * quarantine with its reason. Null when it had already ended. `delivered`: the part of an answer its
   * client received before the job ended by the client's doing, which is charged like a completion (the
   * operator's share to the node's operator) and the rest of the hold released; otherwise nothing is charged.
   * When it cut a running attempt short, `interrupted_node_id` names the node whose slot the caller must
   * release.
   */
  async endWithoutResult(
    jobId: string,
    status: 'failed' | 'expired' | 'cancelled',
    code: string,
    message: string,
    delivered: DeliveredPart | null = null,
  ): Promise<EndedJob | null> {
    return this.store.transaction(async (tx) => {
      const ended = await tx.endJobWithoutResult(jobId, status, code, message);
      if (!ended) return null;
      const charged = delivered ? actualCost(termsOf(ended), delivered.usage, ended.hold_micro) : 0;
      const row = charged > 0 && delivered ? await tx.chargeDelivered(ended, { ...delivered, chargedMicro: charged }) : ended;
      await tx.post(postings.release(jobId, ended.namespace_id, ended.hold_micro - charged));
      if (charged > 0 && delivered) {
        await tx.post(postings.capture(jobId, ended.namespace_id, charged, await tx.operatorOf(delivered.nodeId), this.operatorShareBps));
      }
      await tx.settleHold(ended.api_key_id, ended.created_at, ended.hold_micro, charged);
      if (status !== 'cancelled') await tx.quarantine(jobId, code);
      // Its job.failed webhook messages, in this transaction (the outbox: none lost, none for a rollback).
      await tx.enqueueJobEnded(row);
      return row;
    });
  }
}
