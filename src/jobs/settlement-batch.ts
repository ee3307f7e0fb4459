// The group-commit bodies of settlement (see settlement.service.ts and postgres/group-commit.ts): many
// holds, or many completions, in one PostgreSQL transaction, with the same outcome for each one as if it
// had run alone in its own transaction (SettlementService's single-operation path).
//
// Holds: the batch locks every namespace account it touches (in id order) and the capped keys' monthly
// rows, reads their balances, and decides each hold in submission order against the running balance and
// the running monthly spend: a hold that does not fit is refused on its own (insufficient_credits or
// monthly_cap_reached, exactly as alone) and the others go on. Only then does it write, for the accepted
// holds only: job rows, one set-based ledger posting, one monthly-spend update. The balance CHECKs and the
// deferred balance trigger still guard every row, so a wrong decision here fails the batch, never the
// ledger.
//
// Completions: the job rows whose attempt is current are locked in job-id order and completed (the same
// fence as alone: a duplicate or stale result finds no running attempt and gets null), then the ledger
// postings, monthly spend and contribution points of all of them are written, all set-based.
//
// Lock order, as everywhere: job rows, then namespace accounts (one statement, id order), then keys'
// monthly rows; the network-wide accounts take no lock.
import type pg from 'pg';
import { errors } from '../errors.js';
import { actualCost, splitCapture } from '../domain/pricing.js';
import type { Usage } from '../domain/protocol.js';
import type { Db } from '../postgres/db.js';
import type { ItemOutcome } from '../postgres/group-commit.js';
import { completeJobs, insertJobs, JobPastDeadlineError, lockRunningAttempts, type JobRow, type NewJob } from '../postgres/jobs.repository.js';
import { ledgerAccountId, lockAccounts, postTransactions, type LedgerPosting } from '../postgres/ledger.repository.js';
import { claimIdempotencyKey } from '../postgres/idempotency.repository.js';
import { operatorsOf } from '../postgres/nodes.repository.js';
import { commitHolds, keyMonthId, lockMonthlySpend, settleHolds, spendMonthOf, type KeyMonth } from '../postgres/key-spend.repository.js';
import { jobIdTime } from '../domain/job-ids.js';
import { recordJobPoints } from '../postgres/rcp.repository.js';
import { POINTS_PER_JOB } from '../domain/rcp.js';

export interface HoldRequest {
  job: NewJob;
  keyMonthlyCapMicro: number | null;
  idempotency?: { key: string; requestHash: Buffer; windowHours: number } | undefined;
}

/** The idempotency key was claimed by another request meanwhile; the accept transaction must roll back. */
export class IdempotencyKeyInUse extends Error {
  constructor(readonly key: string) {
    super(`idempotency key ${key} is in use`);
    this.name = 'IdempotencyKeyInUse';
  }
}

export interface CompletionRequest {
  jobId: string;
  attempt: number;
  nodeId: string;
  usage: Usage;
  outputEmpty: boolean;
}

/** The namespace's two accounts, created on first use. */
async function namespaceAccounts(tx: pg.PoolClient, namespaceId: string): Promise<{ available: number; held: number }> {
  return { available: await ledgerAccountId(tx, 'ns_available', namespaceId), held: await ledgerAccountId(tx, 'ns_held', namespaceId) };
}

async function accountsByNamespace(tx: pg.PoolClient, namespaceIds: Iterable<string>): Promise<Map<string, { available: number; held: number }>> {
  const byNamespace = new Map<string, { available: number; held: number }>();
  for (const ns of namespaceIds) if (!byNamespace.has(ns)) byNamespace.set(ns, await namespaceAccounts(tx, ns));
  return byNamespace;
}

/** Takes the holds that fit, refuses the others one by one; see the head of this file. */
export async function holdBatch(tx: pg.PoolClient, items: readonly HoldRequest[]): Promise<Array<ItemOutcome<JobRow>>> {
  const accounts = await accountsByNamespace(tx, items.map((i) => i.job.namespaceId));
  const balance = await lockAccounts(tx, [...accounts.values()].flatMap((a) => [a.available, a.held]));
  // Each hold counts in its job's spend month (key-spend.repository.ts: spendMonthOf).
  const keyMonthOf = (job: NewJob): KeyMonth => ({ keyId: job.apiKeyId, month: spendMonthOf(jobIdTime(job.id)) });
  const capped = new Map(items.filter((i) => i.keyMonthlyCapMicro !== null).map((i) => [keyMonthId(keyMonthOf(i.job)), keyMonthOf(i.job)]));
  const spent = await lockMonthlySpend(tx, [...capped.values()]);

  const outcomes: Array<ItemOutcome<JobRow> | null> = [];
  const accepted: Array<{ index: number; item: HoldRequest }> = [];
  items.forEach((item, index) => {
    const { job, keyMonthlyCapMicro: cap } = item;
    const available = accounts.get(job.namespaceId)!.available;
    const left = balance.get(available) ?? 0;
    // Checked in the order of the single-operation path: credits first, then the key's cap.
    if (left < job.holdMicro) {
      outcomes.push({ ok: false, error: errors.insufficientCredits(job.holdMicro, left) });
      return;
    }
    const spentId = keyMonthId(keyMonthOf(job));
    const spentByKey = spent.get(spentId) ?? 0;
    if (cap !== null && spentByKey + job.holdMicro > cap) {
      outcomes.push({ ok: false, error: errors.monthlyCapReached(job.holdMicro, Math.max(0, cap - spentByKey)) });
      return;
    }
    balance.set(available, left - job.holdMicro);
    spent.set(spentId, spentByKey + job.holdMicro);
    outcomes.push(null);
    accepted.push({ index, item });
  });

  const rows = await insertJobs(tx, accepted.map((a) => a.item.job));
  for (const [n, { index, item }] of accepted.entries()) {
    const row = rows[n];
    // Past its deadline already (a stalled accept): fails the transaction like a lost claim below, so a
    // batch runs its holds alone and only this one is refused.
    if (!row) throw new JobPastDeadlineError(item.job.id);
    outcomes[index] = { ok: true, value: row };
    // A lost claim must undo this job's row: only a rollback can, so it fails the whole transaction (a
    // batch then runs each of its holds alone; see runBatch).
    const idem = item.idempotency;
    if (idem && !(await claimIdempotencyKey(tx, { namespaceId: item.job.namespaceId, jobId: item.job.id, ...idem }))) throw new IdempotencyKeyInUse(idem.key);
  }
  await postTransactions(
    tx,
    accepted.map(({ item: { job } }): LedgerPosting => {
      const a = accounts.get(job.namespaceId)!;
      return {
        kind: 'hold',
        jobId: job.id,
        entries: [
          { accountId: a.available, amount: -job.holdMicro },
          { accountId: a.held, amount: job.holdMicro },
        ],
      };
    }),
  );
  await commitHolds(
    tx,
    accepted.map(({ item: { job } }) => ({ ...keyMonthOf(job), holdMicro: job.holdMicro })),
  );
  return outcomes.map((o) => o!);
}

/** Completes the jobs whose attempt is current (null for the others); see the head of this file. */
export async function completeBatch(
  tx: pg.PoolClient,
  items: readonly CompletionRequest[],
  operatorShareBps: number,
  epoch: number,
): Promise<Array<ItemOutcome<JobRow | null>>> {
  const outcomes: Array<ItemOutcome<JobRow | null>> = items.map(() => ({ ok: true, value: null }));
  // Each locked row goes to the first item that claims its current attempt; a duplicate result (in this
  // batch or settled before) finds none and gets null, as alone.
  const running = new Map((await lockRunningAttempts(tx, items)).map((row) => [row.id, row]));
  const claims: Array<{ index: number; current: JobRow; charged: number; nodeId: string }> = [];
  items.forEach(({ jobId, attempt, nodeId, usage, outputEmpty }, index) => {
    const current = running.get(jobId);
    if (!current || current.attempt !== attempt || current.node_id !== nodeId) return;
    running.delete(jobId);
    const prices = { inputPriceMicro: current.input_price_micro, outputPriceMicro: current.output_price_micro, minChargeMicro: current.min_charge_micro, surchargeBps: current.surcharge_bps };
    claims.push({ index, current, charged: actualCost(prices, usage, current.hold_micro, outputEmpty), nodeId });
  });
  const completed = new Map(
    (
      await completeJobs(
        tx,
        claims.map(({ index, current, charged }) => ({
          jobId: current.id,
          attempt: current.attempt,
          promptTokens: items[index]!.usage.prompt_tokens,
          completionTokens: items[index]!.usage.completion_tokens,
          chargedMicro: charged,
        })),
      )
    ).map((row) => [row.id, row]),
  );
  const done: Array<{ row: JobRow; charged: number; nodeId: string }> = [];
  for (const { index, current, charged, nodeId } of claims) {
    const row = completed.get(current.id);
    if (!row) continue;
    outcomes[index] = { ok: true, value: row };
    done.push({ row, charged, nodeId });
  }
  if (done.length === 0) return outcomes;

  const operatorByNode = await operatorsOf(tx, [...new Set(done.map((d) => d.nodeId))]);
  const operators = new Map<string, number>();
  for (const { nodeId } of done) {
    if (operators.has(nodeId)) continue;
    const operator = operatorByNode.get(nodeId);
    if (!operator) throw new Error(`node ${nodeId} has no operator`);
    operators.set(nodeId, await ledgerAccountId(tx, 'operator_earnings', operator));
  }
  const platform = await ledgerAccountId(tx, 'platform_revenue', null);
  const accounts = await accountsByNamespace(tx, done.map((d) => d.row.namespace_id));
  await lockAccounts(tx, [...accounts.values()].flatMap((a) => [a.held, a.available]));

  await postTransactions(
    tx,
    done.flatMap(({ row, charged, nodeId }): LedgerPosting[] => {
      const a = accounts.get(row.namespace_id)!;
      const split = splitCapture(charged, operatorShareBps);
      return [
        {
          kind: 'release',
          jobId: row.id,
          entries: [
            { accountId: a.held, amount: -(row.hold_micro - charged) },
            { accountId: a.available, amount: row.hold_micro - charged },
          ],
        },
        {
          kind: 'capture',
          jobId: row.id,
          entries: [
            { accountId: a.held, amount: -charged },
            { accountId: operators.get(nodeId)!, amount: split.operator },
            { accountId: platform, amount: split.platform },
          ],
        },
      ];
    }),
  );
  await settleHolds(
    tx,
    done.map(({ row, charged }) => ({ keyId: row.api_key_id, jobCreatedAt: row.created_at, holdMicro: row.hold_micro, chargedMicro: charged })),
  );
  await recordJobPoints(tx, epoch, POINTS_PER_JOB, done.map(({ row, nodeId }) => ({ nodeId, jobId: row.id })));
  return outcomes;
}

/**
 * Runs `body` over the batch in one transaction. When the batch fails before its COMMIT was sent, or the
 * server refused the COMMIT (so nothing was written), each item runs again on its own through `alone`,
 * so that one item's failure (a constraint, a lock timeout) is that item's outcome only. When the COMMIT
 * itself was lost (the connection broke: the batch may or may not have been written), every item fails,
 * as a single operation would: running them again could write them twice.
 */
export async function runBatch<I, O>(
  db: Db,
  items: readonly I[],
  body: (tx: pg.PoolClient, items: readonly I[]) => Promise<Array<ItemOutcome<O>>>,
  alone: (item: I) => Promise<O>,
): Promise<Array<ItemOutcome<O>>> {
  const client = await db.connect();
  let committing = false;
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const outcomes = await body(client, items);
    committing = true;
    await client.query('COMMIT');
    return outcomes;
  } catch (err) {
    const refusedByServer = typeof (err as { code?: unknown }).code === 'string';
    await client.query('ROLLBACK').catch((e: unknown) => {
      broken = e instanceof Error ? e : new Error(String(e));
    });
    if (committing && !refusedByServer) throw err;
  } finally {
    // A connection that could not even roll back is not given back to the pool.
    client.release(broken);
  }
  return Promise.all(
    items.map((item) =>
      alone(item).then(
        (value): ItemOutcome<O> => ({ ok: true, value }),
        (error: unknown): ItemOutcome<O> => ({ ok: false, error }),
      ),
    ),
  );
}
