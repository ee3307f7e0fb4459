// Settlement: the PostgreSQL transactions that move a job's credits. Each runs the job's state change and
// its ledger postings in one transaction, fenced by the job's status and attempt, so a job is held once,
// settled at most once, and never charged for a failure.
import { errors } from '../errors.js';
import { actualCost, splitCapture } from '../domain/pricing.js';
import type { Usage } from '../domain/protocol.js';
import { withTransaction, type Db } from '../postgres/db.js';
import { completeJob, endJobWithoutResult, insertJob, lockRunningAttempt, type JobRow, type NewJob } from '../postgres/jobs.repository.js';
import { balanceOf, InsufficientBalanceError, ledgerAccountId, lockAccounts, postTransaction } from '../postgres/ledger.repository.js';
import { operatorOf } from '../postgres/nodes.repository.js';
import { claimIdempotencyKey } from '../postgres/idempotency.repository.js';
import { commitHold, monthlySpend, settleHold } from '../postgres/key-spend.repository.js';
import { quarantineJob } from '../postgres/quarantine.repository.js';
import { recordJobPoints } from '../postgres/rcp.repository.js';
import { epochOf, POINTS_PER_JOB, type RcpClock } from '../domain/rcp.js';

/** The hold would take the key past its monthly cap; the accept transaction rolled back. */
class MonthlyCapReached extends Error {}

/** The idempotency key was claimed by another request meanwhile; the accept transaction rolled back. */
export class IdempotencyKeyInUse extends Error {
  constructor(readonly key: string) {
    super(`idempotency key ${key} is in use`);
    this.name = 'IdempotencyKeyInUse';
  }
}

export class SettlementService {
  constructor(
    private readonly db: Db,
    private readonly operatorShareBps: number,
    private readonly rcp: RcpClock,
  ) {}

  /**
   * Inserts the job row, claims its idempotency key (if any) and takes its hold, in one transaction.
   * Throws insufficient_credits, or IdempotencyKeyInUse, having written nothing.
   */
  async acceptWithHold(
    job: NewJob,
    keyMonthlyCapMicro: number | null,
    idempotency?: { key: string; requestHash: Buffer; windowHours: number },
  ): Promise<JobRow> {
    try {
      return await withTransaction(this.db, async (tx) => {
        const available = await ledgerAccountId(tx, 'ns_available', job.namespaceId);
        const held = await ledgerAccountId(tx, 'ns_held', job.namespaceId);
        const row = await insertJob(tx, job);
        if (idempotency && !(await claimIdempotencyKey(tx, { namespaceId: job.namespaceId, jobId: job.id, ...idempotency }))) {
          throw new IdempotencyKeyInUse(idempotency.key);
        }
        await postTransaction(tx, { kind: 'hold', jobId: job.id }, [
          { accountId: available, amount: -job.holdMicro },
          { accountId: held, amount: job.holdMicro },
        ]);
        // After the namespace's accounts, as in settlement: one lock order everywhere.
        if (!(await commitHold(tx, job.apiKeyId, row.created_at, job.holdMicro, keyMonthlyCapMicro))) {
          throw new MonthlyCapReached();
        }
        return row;
      });
    } catch (err) {
      if (err instanceof InsufficientBalanceError) {
        throw errors.insufficientCredits(job.holdMicro, await balanceOf(this.db, 'ns_available', job.namespaceId));
      }
      if (err instanceof MonthlyCapReached) {
        const spent = await monthlySpend(this.db, job.apiKeyId, new Date());
        throw errors.monthlyCapReached(job.holdMicro, Math.max(0, (keyMonthlyCapMicro ?? 0) - spent));
      }
      throw err;
    }
  }

  /**
   * Completes the job's current attempt: captures the actual cost (pays the node's operator their share
   * and the platform the rest) and releases the remainder of the hold. Returns null, changing nothing,
   * when the attempt is not current (late, duplicate or superseded result).
   */
  async complete(jobId: string, attempt: number, nodeId: string, usage: Usage, outputEmpty: boolean): Promise<JobRow | null> {
    return withTransaction(this.db, async (tx) => {
      // Lock the row first to read its prices and hold; the fenced UPDATE below is the real guard.
      const current = await lockRunningAttempt(tx, jobId, attempt, nodeId);
      if (!current) return null;
      const prices = { inputPriceMicro: current.input_price_micro, outputPriceMicro: current.output_price_micro, minChargeMicro: current.min_charge_micro };
      const charged = actualCost(prices, usage, current.hold_micro, outputEmpty);
      const row = await completeJob(tx, jobId, attempt, { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens, chargedMicro: charged });
      if (!row) return null;

      const operator = await operatorOf(tx, nodeId);
      if (!operator) throw new Error(`node ${nodeId} has no operator`);
      const held = await ledgerAccountId(tx, 'ns_held', row.namespace_id);
      const available = await ledgerAccountId(tx, 'ns_available', row.namespace_id);
      const earnings = await ledgerAccountId(tx, 'operator_earnings', operator);
      const platform = await ledgerAccountId(tx, 'platform_revenue', null);
      // Lock order, the same in every transaction that moves credits: the namespace's own accounts, then
      // the key's monthly spend row. The network-wide accounts credited by the capture (operator
      // earnings, platform revenue) take no row lock at all: their balances are derived from entries.
      await lockAccounts(tx, [held, available]);
      await postTransaction(tx, { kind: 'release', jobId }, [
        { accountId: held, amount: -(row.hold_micro - charged) },
        { accountId: available, amount: row.hold_micro - charged },
      ]);
      await settleHold(tx, row.api_key_id, row.created_at, row.hold_micro, charged);
      const split = splitCapture(charged, this.operatorShareBps);
      await postTransaction(tx, { kind: 'capture', jobId }, [
        { accountId: held, amount: -charged },
        { accountId: earnings, amount: split.operator },
        { accountId: platform, amount: split.platform },
      ]);
      await recordJobPoints(tx, nodeId, epochOf(this.rcp, Date.now()), jobId, POINTS_PER_JOB);
      return row;
    });
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
