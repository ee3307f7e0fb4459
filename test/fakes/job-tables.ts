// The job flow's PostgreSQL tables as its services can observe them, in memory, for the fast tier
// (docs/testing.md): job rows, their ended attempts, the ledger's postings (built by domain/postings.ts,
// so each sums to zero by construction), keys' monthly spend, quarantine, the webhook outbox. One
// FakeDatabase holds them, shared by the fake settlement store and the fake jobs store, as the engine's
// tables are shared by their adapters. Fakes keep only what the services observe; no SQL is re-implemented.
import type { JobRow, NewJob } from '../../src/postgres/jobs.repository.js';
import { jobRowOf } from '../../src/postgres/jobs.repository.js';
import { hold, topup, type LedgerAccountKind, type Posting } from '../../src/domain/postings.js';
import { newJobId } from '../../src/domain/job-ids.js';
import { FakeDatabase } from './fake-database.js';

export const NAMESPACE = '00000000-0000-4000-8000-00000000000a';
export const API_KEY = '00000000-0000-4000-8000-00000000000b';

/**
 * A job as accept builds it: prompt bound 50 and max_tokens 100 at 2 and 3 micro-credits per token, a
 * minimum charge of 10, so a hold of 400 (the worst case); a minute to its deadline; three attempts.
 */
export function newJob(o: Partial<NewJob> = {}): NewJob {
  return {
    id: newJobId(),
    namespaceId: NAMESPACE,
    apiKeyId: API_KEY,
    model: 'm',
    maxAttempts: 3,
    maxTokens: 100,
    promptTokensBound: 50,
    holdMicro: 400,
    inputPriceMicro: 2,
    outputPriceMicro: 3,
    minChargeMicro: 10,
    deadlineAt: new Date(Date.now() + 60_000),
    ...o,
  };
}

export type FakeJobRow = JobRow & { streamed_attempt: number | null };

export interface JobTablesState {
  jobs: Map<string, FakeJobRow>;
  /** Attempts that ended (job_attempts), in order. */
  attempts: Array<{ jobId: string; attempt: number; nodeId: string; outcome: string; reason: string }>;
  postings: Posting[];
  /** node id -> its operator account (nodes). */
  nodes: Map<string, string>;
  /** api key id -> committed micro-credits this month (holds plus charges). */
  keySpend: Map<string, number>;
  idempotencyKeys: Map<string, string>;
  quarantine: Array<{ jobId: string; reason: string }>;
  /** job.failed webhook messages written (the outbox), by job. */
  webhookJobFailed: string[];
  /** Contribution points per completed job (rcp_records). */
  points: Array<{ nodeId: string; epoch: number; points: number; jobId: string }>;
  models: string[];
  published: Map<string, Date>;
}

export class JobTables {
  readonly db = new FakeDatabase<JobTablesState>({
    jobs: new Map(),
    attempts: [],
    postings: [],
    nodes: new Map(),
    keySpend: new Map(),
    idempotencyKeys: new Map(),
    quarantine: [],
    webhookJobFailed: [],
    points: [],
    models: [],
    published: new Map(),
  });

  get state(): JobTablesState {
    return this.db.state;
  }

  /** Credits a namespace (a top-up from the network's funding account). */
  fund(namespaceId: string, micro: number): void {
    this.state.postings.push(topup(namespaceId, micro));
  }

  addNode(nodeId: string, operator: string): void {
    this.state.nodes.set(nodeId, operator);
  }

  /** A job accepted with its hold taken (as accept_jobs leaves it, funds unchecked): queued, no attempt yet. */
  addJob(job: NewJob): FakeJobRow {
    const row: FakeJobRow = { ...jobRowOf(job), streamed_attempt: null };
    this.state.jobs.set(job.id, row);
    this.state.postings.push(hold(job.id, job.namespaceId, job.holdMicro));
    this.state.keySpend.set(job.apiKeyId, (this.state.keySpend.get(job.apiKeyId) ?? 0) + job.holdMicro);
    return row;
  }

  job(jobId: string): FakeJobRow {
    const row = this.state.jobs.get(jobId);
    if (!row) throw new Error(`no job ${jobId} in the fake tables`);
    return row;
  }

  /** An account's balance: the sum of every posting line on it. */
  balance(kind: LedgerAccountKind, owner: string | null): number {
    let sum = 0;
    for (const p of this.state.postings) for (const l of p.lines) if (l.account.kind === kind && l.account.owner === owner) sum += l.amount;
    return sum;
  }

  /** The sum over every ledger account: zero at every moment (DESIGN invariant 3). */
  ledgerSum(): number {
    return this.state.postings.reduce((s, p) => s + p.lines.reduce((t, l) => t + l.amount, 0), 0);
  }

  /** The kinds of the postings written for a job, in order. */
  postingsOf(jobId: string): string[] {
    return this.state.postings.filter((p) => p.jobId === jobId).map((p) => p.kind);
  }
}
