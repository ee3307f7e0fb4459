// Settlement: the PostgreSQL transactions that move a job's credits. Each runs the job's state change and
// its ledger postings in one transaction, fenced by the job's status and attempt, so a job is held once,
// settled at most once, and never charged for a failure.
//
// Holds and completions may be group-committed (postgres/group-commit.ts): concurrent calls then share
// transactions, each still getting the outcome it would get alone (jobs/settlement-batch.ts, whose bodies
// are also the single-operation path: one code path, batches of one or of many).
import type pg from 'pg';
import { withTransaction, type Db } from '../postgres/db.js';
import { endJobWithoutResult, type JobRow, type NewJob } from '../postgres/jobs.repository.js';
import { ledgerAccountId, postTransaction } from '../postgres/ledger.repository.js';
import { settleHold } from '../postgres/key-spend.repository.js';
import { quarantineJob } from '../postgres/quarantine.repository.js';
import { GroupCommit, type GroupCommitOptions, type ItemOutcome } from '../postgres/group-commit.js';
import type { Usage } from '../domain/protocol.js';
import { epochOf, type RcpClock } from '../domain/rcp.js';
import { completeBatch, holdBatch, runBatch, type CompletionRequest, type HoldRequest } from './settlement-batch.js';

export { IdempotencyKeyInUse } from './settlement-batch.js';

export class SettlementService {
  private readonly holds: GroupCommit<HoldRequest, JobRow> | null;
  private readonly completions: GroupCommit<CompletionRequest, JobRow | null> | null;

  /** `batching`: group-commit holds and completions with these limits; null (or maxItems 1): one transaction per operation. */
  constructor(
    private readonly db: Db,
    private readonly operatorShareBps: number,
    private readonly rcp: RcpClock,
    batching: GroupCommitOptions | null = null,
  ) {
    const on = batching !== null && batching.maxItems > 1;
    this.holds = on ? new GroupCommit((items) => this.batch(items, (tx, b) => holdBatch(tx, b), (i) => this.holdAlone(i)), batching) : null;
    this.completions = on
      ? new GroupCommit((items) => this.batch(items, (tx, b) => completeBatch(tx, b, this.operatorShareBps, this.epochNow()), (i) => this.completeAlone(i)), batching)
      : null;
  }

  /**
   * Inserts the job row, claims its idempotency key (if any) and takes its hold, in one transaction.
   * Throws insufficient_credits (or monthly_cap_reached), or IdempotencyKeyInUse, having written nothing.
   */
  async acceptWithHold(
    job: NewJob,
    keyMonthlyCapMicro: number | null,
    idempotency?: { key: string; requestHash: Buffer; windowHours: number },
  ): Promise<JobRow> {
    const request: HoldRequest = { job, keyMonthlyCapMicro, idempotency };
    return this.holds ? this.holds.submit(request) : this.holdAlone(request);
  }

  /**
   * Completes the job's current attempt: captures the actual cost (pays the node's operator their share
   * and the platform the rest) and releases the remainder of the hold. Returns null, changing nothing,
   * when the attempt is not current (late, duplicate or superseded result).
   */
  async complete(jobId: string, attempt: number, nodeId: string, usage: Usage, outputEmpty: boolean): Promise<JobRow | null> {
    const request: CompletionRequest = { jobId, attempt, nodeId, usage, outputEmpty };
    return this.completions ? this.completions.submit(request) : this.completeAlone(request);
  }

  /** Resolves when no grouped hold or completion is waiting or running (for shutdown). */
  async drained(): Promise<void> {
    await Promise.all([this.holds?.drained(), this.completions?.drained()]);
  }

  private holdAlone(request: HoldRequest): Promise<JobRow> {
    return withTransaction(this.db, async (tx) => only(await holdBatch(tx, [request])));
  }

  private completeAlone(request: CompletionRequest): Promise<JobRow | null> {
    return withTransaction(this.db, async (tx) => only(await completeBatch(tx, [request], this.operatorShareBps, this.epochNow())));
  }

  /** A batch of one runs alone (nothing to share, and no second try after a failure). */
  private async batch<I, O>(
    items: readonly I[],
    body: (tx: pg.PoolClient, items: readonly I[]) => Promise<Array<ItemOutcome<O>>>,
    alone: (item: I) => Promise<O>,
  ): Promise<Array<ItemOutcome<O>>> {
    if (items.length === 1) {
      return [
        await alone(items[0]!).then(
          (value): ItemOutcome<O> => ({ ok: true, value }),
          (error: unknown): ItemOutcome<O> => ({ ok: false, error }),
        ),
      ];
    }
    return runBatch(this.db, items, body, alone);
  }

  private epochNow(): number {
    return epochOf(this.rcp, Date.now());
  }

  /**
   * Ends an unfinished job without a result, releases its whole hold, and (failed or expired) puts it in
   * quarantine with its reason. Null when it had already ended.
   * When it cut a running attempt short, `interrupted_node_id` names the node whose slot the caller must
   * release.
   */
  async endWithoutResult(
    jobId: string,
    status: 'failed' | 'expired' | 'cancelled',
    code: string,
    message: string,
  ): Promise<(JobRow & { interrupted_node_id: string | null }) | null> {
    return withTransaction(this.db, async (tx) => {
      const row = await endJobWithoutResult(tx, jobId, status, code, message);
      if (!row) return null;
      const held = await ledgerAccountId(tx, 'ns_held', row.namespace_id);
      const available = await ledgerAccountId(tx, 'ns_available', row.namespace_id);
      await postTransaction(tx, { kind: 'release', jobId }, [
        { accountId: held, amount: -row.hold_micro },
        { accountId: available, amount: row.hold_micro },
      ]);
      await settleHold(tx, row.api_key_id, row.created_at, row.hold_micro, 0);
      if (status !== 'cancelled') await quarantineJob(tx, jobId, code);
      return row;
    });
  }
}

/** The outcome of a batch of one; an error is thrown, so that its transaction rolls back. */
function only<O>(outcomes: ReadonlyArray<ItemOutcome<O>>): O {
  const o = outcomes[0]!;
  if (!o.ok) throw o.error;
  return o.value;
}
