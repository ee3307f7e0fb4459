// In-memory SettlementStore (jobs/settlement.service.ts) for the fast tests, over the job flow's fake
// tables (job-tables.ts). A batch is one statement: decided item by item in submission order against
// running balances and spends, all of it written or (a thrown failure) none. It keeps the outcomes the
// service observes (accepted or its refusal; completed, stale or usage_out_of_bounds) and the postings a
// reader of the ledger would see; the engine's own truths (locks, partitions) stay in integration tests.
import { errors } from '../../src/errors.js';
import { capture, hold, posting, release, type Posting } from '../../src/domain/postings.js';
import type { ItemOutcome } from '../../src/common/group-commit.js';
import { JobPastDeadlineError, jobRowOf, type JobRow } from '../../src/postgres/jobs.repository.js';
import { IdempotencyKeyInUse, type CompletionOutcome, type CompletionRequest, type HoldRequest } from '../../src/postgres/settlement-batch.repository.js';
import type { EndedJob, SettlementStore, SettlementTx } from '../../src/jobs/settlement.service.js';
import type { JobTables } from './job-tables.js';

export class FakeSettlementStore implements SettlementStore {
  /** The size of each statement run, by kind: a batch of n items is one entry n. */
  readonly statements = { hold: [] as number[], complete: [] as number[] };
  /** The epoch and points of each completion statement (rcp_records). */
  readonly completionClock: Array<{ epoch: number; pointsPerJob: number }> = [];

  constructor(readonly tables: JobTables) {}

  private get db() {
    return this.tables.db;
  }

  holdBatch(items: readonly HoldRequest[]): Promise<Array<ItemOutcome<void>>> {
    return this.db.transaction(() => {
      this.db.call('holdBatch');
      this.statements.hold.push(items.length);
      return Promise.resolve(items.map((item) => this.holdItem(item)));
    });
  }

  async holdOne(item: HoldRequest): Promise<void> {
    const outcome = await this.db.transaction(() => {
      this.db.call('holdOne');
      this.statements.hold.push(1);
      return Promise.resolve(this.holdItem(item));
    });
    if (!outcome.ok) throw outcome.error;
  }

  completeBatch(items: readonly CompletionRequest[], epoch: number, pointsPerJob: number): Promise<Array<ItemOutcome<CompletionOutcome>>> {
    return this.db.transaction(() => {
      this.db.call('completeBatch');
      this.statements.complete.push(items.length);
      this.completionClock.push({ epoch, pointsPerJob });
      const settled = new Set<string>();
      return Promise.resolve(items.map((item): ItemOutcome<CompletionOutcome> => ({ ok: true, value: this.completeItem(item, epoch, pointsPerJob, settled) })));
    });
  }

  completeOne(item: CompletionRequest, epoch: number, pointsPerJob: number): Promise<CompletionOutcome> {
    return this.db.transaction(() => {
      this.db.call('completeOne');
      this.statements.complete.push(1);
      this.completionClock.push({ epoch, pointsPerJob });
      return Promise.resolve(this.completeItem(item, epoch, pointsPerJob, new Set()));
    });
  }

  transaction<T>(fn: (tx: SettlementTx) => Promise<T>): Promise<T> {
    const s = this.tables.state;
    const call = (op: string) => this.db.call(op);
    return this.db.transaction(() =>
      fn({
        endJobWithoutResult: (jobId, status, code, message) => {
          call('endJobWithoutResult');
          const row = s.jobs.get(jobId);
          if (!row || row.finished_at) return Promise.resolve(null);
          // An attempt an older version started is on the row (running); the others are in Redis only.
          const interrupted = row.status === 'running' ? row.node_id : null;
          Object.assign(row, { status, error_code: code, error_message: message, charged_micro: 0, finished_at: new Date() });
          return Promise.resolve({ ...publicRow(row), interrupted_node_id: interrupted } satisfies EndedJob);
        },
        chargeDelivered: <R extends JobRow>(row: R, d: { attempt: number; nodeId: string; usage: { prompt_tokens: number; completion_tokens: number }; chargedMicro: number }) => {
          call('chargeDelivered');
          const charged = {
            charged_micro: d.chargedMicro,
            node_id: d.nodeId,
            attempt: Math.max(row.attempt, d.attempt),
            prompt_tokens: d.usage.prompt_tokens,
            completion_tokens: d.usage.completion_tokens,
          };
          Object.assign(s.jobs.get(row.id)!, charged);
          return Promise.resolve({ ...row, ...charged });
        },
        post: (p: Posting) => {
          call('post');
          write(s.postings, p);
          return Promise.resolve();
        },
        operatorOf: (nodeId) => {
          call('operatorOf');
          return Promise.resolve(s.nodes.get(nodeId) ?? null);
        },
        settleHold: (keyId, _createdAt, holdMicro, chargedMicro) => {
          call('settleHold');
          s.keySpend.set(keyId, (s.keySpend.get(keyId) ?? 0) + chargedMicro - holdMicro);
          return Promise.resolve();
        },
        quarantine: (jobId, reason) => {
          call('quarantine');
          s.quarantine.push({ jobId, reason });
          return Promise.resolve();
        },
        enqueueJobEnded: (row) => {
          call('enqueueJobEnded');
          if (row.status === 'failed' || row.status === 'expired') s.webhookJobFailed.push(row.id);
          return Promise.resolve();
        },
      }),
    );
  }

  /** One hold, decided against the balances and spends as the items before it left them. */
  private holdItem(item: HoldRequest): ItemOutcome<void> {
    const s = this.tables.state;
    const { job } = item;
    if (job.deadlineAt.getTime() <= Date.now()) return { ok: false, error: new JobPastDeadlineError(job.id) };
    if (item.idempotency && s.idempotencyKeys.has(item.idempotency.key)) return { ok: false, error: new IdempotencyKeyInUse(item.idempotency.key) };
    const spent = s.keySpend.get(job.apiKeyId) ?? 0;
    if (item.keyMonthlyCapMicro !== null && spent + job.holdMicro > item.keyMonthlyCapMicro) {
      return { ok: false, error: errors.monthlyCapReached(job.holdMicro, Math.max(0, item.keyMonthlyCapMicro - spent)) };
    }
    const available = this.tables.balance('ns_available', job.namespaceId);
    if (available < job.holdMicro) return { ok: false, error: errors.insufficientCredits(job.holdMicro, available) };
    s.jobs.set(job.id, { ...jobRowOf(job), streamed_attempt: null });
    write(s.postings, hold(job.id, job.namespaceId, job.holdMicro));
    s.keySpend.set(job.apiKeyId, spent + job.holdMicro);
    if (item.idempotency) s.idempotencyKeys.set(item.idempotency.key, job.id);
    return { ok: true, value: undefined };
  }

  /** One completion, fenced by the job's state and attempt as settle_jobs fences it. */
  private completeItem(item: CompletionRequest, epoch: number, pointsPerJob: number, settled: Set<string>): CompletionOutcome {
    const s = this.tables.state;
    const row = s.jobs.get(item.jobId);
    if (!row || row.finished_at || settled.has(item.jobId)) return 'stale';
    const current = (row.status !== 'running' && row.attempt < item.attempt) || (row.status === 'running' && row.attempt === item.attempt && row.node_id === item.nodeId);
    if (!current) return 'stale';
    if (item.usage.prompt_tokens > row.prompt_tokens_bound || item.usage.completion_tokens > row.max_tokens) return 'usage_out_of_bounds';
    settled.add(item.jobId);
    Object.assign(row, {
      status: 'completed',
      attempt: item.attempt,
      node_id: item.nodeId,
      prompt_tokens: item.usage.prompt_tokens,
      completion_tokens: item.usage.completion_tokens,
      charged_micro: item.chargedMicro,
      finished_at: new Date(),
    });
    s.attempts.push({ jobId: item.jobId, attempt: item.attempt, nodeId: item.nodeId, outcome: 'completed', reason: '' });
    write(s.postings, release(item.jobId, row.namespace_id, row.hold_micro - item.chargedMicro));
    const operator = s.nodes.get(item.nodeId) ?? null;
    // The operator's part as the caller computed it (settle_jobs takes it as given); all of it to the
    // platform when the node has no operator on record.
    write(
      s.postings,
      operator
        ? posting('capture', item.jobId, [
            { account: { kind: 'ns_held', owner: row.namespace_id }, amount: -item.chargedMicro },
            { account: { kind: 'operator_earnings', owner: operator }, amount: item.operatorMicro },
            { account: { kind: 'platform_revenue', owner: null }, amount: item.chargedMicro - item.operatorMicro },
          ])
        : capture(item.jobId, row.namespace_id, item.chargedMicro, null, 0),
    );
    s.keySpend.set(row.api_key_id, (s.keySpend.get(row.api_key_id) ?? 0) + item.chargedMicro - row.hold_micro);
    s.points.push({ nodeId: item.nodeId, epoch, points: pointsPerJob, jobId: item.jobId });
    return 'completed';
  }
}

/** A posting with no lines is not written (postgres/ledger.repository.ts post). */
function write(ledger: Posting[], p: Posting): void {
  if (p.lines.length > 0) ledger.push(p);
}

/** A fake row as the engine returns it (without the columns no service reads). */
function publicRow(row: JobRow & { streamed_attempt?: number | null }): JobRow {
  const { streamed_attempt: _omitted, ...rest } = row;
  return rest;
}
