// The group-commit bodies of settlement (see jobs/settlement.service.ts and common/group-commit.ts): many
// holds, or many completions, in ONE PostgreSQL statement each (the functions accept_jobs and settle_jobs,
// migrations/0018_hot_path.sql), run as its own transaction: one round trip, one WAL flush, and a
// namespace's ledger rows locked for the length of one statement. Each item gets the outcome it would get
// alone; the functions decide in submission order against running balances and spends.
//
// Pricing stays in src/domain/pricing.ts: the caller computes each completion's charge and the operator's
// share from the job's terms, and the database checks what it must (usage within the job's bounds, the
// charge within the hold, balances never below zero).
import { errors } from '../errors.js';
import type { Usage } from '../domain/protocol.js';
import { jobIdTime } from '../domain/job-ids.js';
import type { Db, Queryable } from './db.js';
import type { ItemOutcome } from '../common/group-commit.js';
import { JobPastDeadlineError, type NewJob } from './jobs.repository.js';

export interface HoldRequest {
  job: NewJob;
  keyMonthlyCapMicro: number | null;
  idempotency?: { key: string; requestHash: Buffer; windowHours: number } | undefined;
}

/** The idempotency key was claimed by another request meanwhile; the caller replays that request's job. */
export class IdempotencyKeyInUse extends Error {
  constructor(readonly key: string) {
    super(`idempotency key ${key} is in use`);
    this.name = 'IdempotencyKeyInUse';
  }
}

/** SQLSTATE raised by accept_jobs when a concurrent request claimed one of the batch's idempotency keys. */
const IDEMPOTENCY_RACE = 'RT409';

export interface CompletionRequest {
  jobId: string;
  attempt: number;
  nodeId: string;
  usage: Usage;
  /** The charge (domain/pricing.ts actualCost) and the operator's part of it (splitCapture). */
  chargedMicro: number;
  operatorMicro: number;
  /** When the attempt was dispatched, if known (its latency feeds the node's score). */
  startedAt: Date | null;
}

export type CompletionOutcome = 'completed' | 'stale' | 'usage_out_of_bounds';

/** Takes the holds that fit and refuses the others one by one (see accept_jobs). */
export async function holdBatch(q: Queryable, items: readonly HoldRequest[]): Promise<Array<ItemOutcome<void>>> {
  const col = <T>(f: (i: HoldRequest) => T) => items.map(f);
  const r = await q.query<{ o_index: number; o_outcome: string; o_amount: number | null }>({
    name: 'accept_jobs',
    text: `SELECT o_index, o_outcome, o_amount FROM accept_jobs($1::uuid[], $2::timestamptz[], $3::uuid[], $4::uuid[], $5::text[], $6::int[], $7::int[],
             $8::int[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::timestamptz[], $14::text[], $15::text[], $16::text[], $17::text[],
             $18::int[], $19::int[], $20::int[], $21::bigint[], $22::text[], $23::bytea[], $24::int)`,
    values: [
      col((i) => i.job.id),
      col((i) => jobIdTime(i.job.id)),
      col((i) => i.job.namespaceId),
      col((i) => i.job.apiKeyId),
      col((i) => i.job.model),
      col((i) => i.job.maxAttempts),
      col((i) => i.job.maxTokens),
      col((i) => i.job.promptTokensBound),
      col((i) => i.job.holdMicro),
      col((i) => i.job.inputPriceMicro),
      col((i) => i.job.outputPriceMicro),
      col((i) => i.job.minChargeMicro),
      col((i) => i.job.deadlineAt),
      col((i) => i.job.network ?? 'mainnet'),
      col((i) => i.job.region ?? null),
      col((i) => i.job.subcloud ?? null),
      col((i) => i.job.priority ?? 'standard'),
      col((i) => i.job.surchargeBps ?? 0),
      col((i) => i.job.configVersion ?? null),
      col((i) => i.job.attemptTimeoutMs ?? null),
      col((i) => i.keyMonthlyCapMicro),
      col((i) => i.idempotency?.key ?? null),
      col((i) => i.idempotency?.requestHash ?? null),
      items.find((i) => i.idempotency)?.idempotency?.windowHours ?? 24,
    ],
  });
  return r.rows
    .sort((a, b) => a.o_index - b.o_index)
    .map((row): ItemOutcome<void> => {
      const item = items[row.o_index - 1]!;
      const amount = Number(row.o_amount ?? 0);
      switch (row.o_outcome) {
        case 'accepted':
          return { ok: true, value: undefined };
        case 'insufficient_credits':
          return { ok: false, error: errors.insufficientCredits(item.job.holdMicro, amount) };
        case 'monthly_cap_reached':
          return { ok: false, error: errors.monthlyCapReached(item.job.holdMicro, amount) };
        case 'past_deadline':
          return { ok: false, error: new JobPastDeadlineError(item.job.id) };
        case 'idempotency_key_in_use':
          return { ok: false, error: new IdempotencyKeyInUse(item.idempotency?.key ?? '') };
        default:
          return { ok: false, error: new Error(`accept_jobs answered an unknown outcome '${row.o_outcome}'`) };
      }
    });
}

/** A PostgreSQL error (a SQLSTATE): the server refused the statement, so it wrote nothing. */
export function refusedByServer(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code);
}

/** accept_jobs's error when an idempotency key was taken meanwhile, as the caller's error; others unchanged. */
export function holdError(err: unknown, request: HoldRequest): unknown {
  if ((err as { code?: unknown }).code === IDEMPOTENCY_RACE) return new IdempotencyKeyInUse(request.idempotency?.key ?? '');
  return err;
}

/** Completes the jobs whose attempt may still settle (see settle_jobs); one outcome per item. */
export async function completeBatch(q: Queryable, items: readonly CompletionRequest[], epoch: number, pointsPerJob: number): Promise<Array<ItemOutcome<CompletionOutcome>>> {
  const col = <T>(f: (i: CompletionRequest) => T) => items.map(f);
  const createdAt = await creationTimes(q, items.map((i) => i.jobId));
  const r = await q.query<{ o_index: number; o_outcome: CompletionOutcome }>({
    name: 'settle_jobs',
    text: `SELECT o_index, o_outcome FROM settle_jobs($1::uuid[], $2::timestamptz[], $3::int[], $4::text[], $5::int[], $6::int[], $7::bigint[], $8::bigint[],
             $9::timestamptz[], $10::bigint, $11::bigint)`,
    values: [
      col((i) => i.jobId),
      col((i) => createdAt.get(i.jobId) ?? null),
      col((i) => i.attempt),
      col((i) => i.nodeId),
      col((i) => i.usage.prompt_tokens),
      col((i) => i.usage.completion_tokens),
      col((i) => i.chargedMicro),
      col((i) => i.operatorMicro),
      col((i) => i.startedAt),
      epoch,
      pointsPerJob,
    ],
  });
  return r.rows.sort((a, b) => a.o_index - b.o_index).map((row) => ({ ok: true, value: row.o_outcome }));
}

/**
 * Each job's creation time, its partition key: the time in its id (UUIDv7), or, for an id without one (a
 * job accepted before ids carried it), read from its row (one more statement, for those only).
 * settle_jobs finds a job by both.
 */
async function creationTimes(q: Queryable, ids: readonly string[]): Promise<Map<string, Date | string>> {
  const times = new Map<string, Date | string>();
  const unknown: string[] = [];
  for (const id of ids) {
    const t = jobIdTime(id);
    if (t) times.set(id, t);
    else unknown.push(id);
  }
  if (unknown.length > 0) {
    // As text: a Date keeps milliseconds, and now() has microseconds.
    const r = await q.query<{ id: string; created_at: string }>(`SELECT id, created_at::text AS created_at FROM jobs WHERE id = ANY($1::uuid[])`, [unknown]);
    for (const row of r.rows) times.set(row.id, row.created_at);
  }
  return times;
}

/**
 * Runs one batch statement. When the server refused it (a constraint, a lock timeout, a lost idempotency
 * race), nothing was written, and each item runs again on its own through `alone`, so that one item's
 * failure is that item's outcome only. When the connection broke instead (the statement may or may not
 * have committed), every item fails, as a single operation would: running them again could write them
 * twice.
 */
export async function runBatch<I, O>(
  db: Db,
  items: readonly I[],
  body: (q: Queryable, items: readonly I[]) => Promise<Array<ItemOutcome<O>>>,
  alone: (item: I) => Promise<O>,
): Promise<Array<ItemOutcome<O>>> {
  try {
    return await body(db, items);
  } catch (err) {
    if (!refusedByServer(err)) throw err;
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
