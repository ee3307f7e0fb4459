// The settlement service's store (jobs/settlement.service.ts SettlementStore) on PostgreSQL: the
// group-committed hold and completion statements (settlement-batch.repository.ts) bound to the pool, and
// the repository functions of a job's end without a result bound to one transaction inside `transaction`.
// It matches the port by shape (checked where the service is built, src/app.ts), so this engine folder
// need not import the service's. Built once per pool: the hot path's closures are these, never one per job.
import type { Posting } from '../domain/postings.js';
import type { ItemOutcome } from '../common/group-commit.js';
import { withTransaction, type Db, type Tx } from './db.js';
import { chargeDelivered, endJobWithoutResult, type JobRow } from './jobs.repository.js';
import { settleHold } from './key-spend.repository.js';
import { post } from './ledger.repository.js';
import { operatorOf } from './nodes.repository.js';
import { quarantineJob } from './quarantine.repository.js';
import { completeBatch, holdBatch, holdError, runBatch, type CompletionRequest, type HoldRequest } from './settlement-batch.repository.js';
import { enqueueJobEnded } from './webhooks.repository.js';

export function settlementStore(db: Db) {
  const holdOne = async (request: HoldRequest): Promise<void> => {
    try {
      only(await holdBatch(db, [request]));
    } catch (err) {
      throw holdError(err, request);
    }
  };
  const completeOne = async (request: CompletionRequest, epoch: number, pointsPerJob: number) =>
    only(await completeBatch(db, [request], epoch, pointsPerJob));
  const inTransaction = (tx: Tx) => ({
    endJobWithoutResult: (jobId: string, status: 'failed' | 'expired' | 'cancelled', code: string, message: string) =>
      endJobWithoutResult(tx, jobId, status, code, message),
    chargeDelivered: <R extends JobRow>(row: R, d: Parameters<typeof chargeDelivered>[2]) => chargeDelivered(tx, row, d),
    post: async (p: Posting) => void (await post(tx, p)),
    operatorOf: (nodeId: string) => operatorOf(tx, nodeId),
    settleHold: (keyId: string, jobCreatedAt: Date, holdMicro: number, chargedMicro: number) => settleHold(tx, keyId, jobCreatedAt, holdMicro, chargedMicro),
    quarantine: (jobId: string, reason: string) => quarantineJob(tx, jobId, reason),
    enqueueJobEnded: (row: JobRow) => enqueueJobEnded(tx, row),
  });
  return {
    // A batch the server refused (a constraint, a lock timeout) runs again item by item (runBatch).
    holdBatch: (items: readonly HoldRequest[]) => runBatch(db, items, holdBatch, holdOne),
    holdOne,
    completeBatch: (items: readonly CompletionRequest[], epoch: number, pointsPerJob: number) =>
      runBatch(db, items, (q, b) => completeBatch(q, b, epoch, pointsPerJob), (i) => completeOne(i, epoch, pointsPerJob)),
    completeOne,
    transaction: <T>(fn: (tx: ReturnType<typeof inTransaction>) => Promise<T>) => withTransaction(db, (tx) => fn(inTransaction(tx))),
  };
}

/** The outcome of a batch of one, or its error thrown. */
function only<O>(outcomes: ReadonlyArray<ItemOutcome<O>>): O {
  const o = outcomes[0]!;
  if (!o.ok) throw o.error;
  return o.value;
}
