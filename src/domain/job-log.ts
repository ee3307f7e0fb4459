// A job's log (issue 10 part 3): what happened to one job, event by event, with the time each stage took,
// for reading after the fact (GET /v1/jobs/{id}/events, the admin API). Not to be confused with
// redis/job-events.ts, the live pub/sub that wakes waiters: this is the written record, kept in MongoDB.
//
// Events are recorded by whichever process sees them (cloud: accepted, queued; scheduler: dispatched;
// io: first token, completed; any: an attempt failed, the job ended without a result) through the JobLog
// port below, which never blocks nor throws: the writer behind it buffers and writes in batches, and drops
// (counting) what it cannot keep. The record carries the node's id for the admin; a consumer's view never
// does (DESIGN invariant 4: consumers never learn which node served them).

export const JOB_LOG_KINDS = ['accepted', 'queued', 'dispatched', 'first_token', 'attempt_failed', 'completed', 'failed', 'expired', 'cancelled'] as const;
export type JobLogKind = (typeof JOB_LOG_KINDS)[number];

/** Milliseconds spent in stages (metrics/job-stages.ts names), as the recording process measured them. */
export type StageMs = Partial<Record<string, number>>;

export interface JobLogEntry {
  jobId: string;
  /** The job's namespace: decides how long its log is kept (its retention plan, at least the log's own). */
  namespaceId: string;
  kind: JobLogKind;
  at: Date;
  attempt?: number;
  /** Kept for the admin only; never in a consumer's view. */
  nodeId?: string;
  model?: string;
  /** An attempt's outcome (failed, timeout, disconnected, invalid_result) or a job's error code. */
  outcome?: string;
  reason?: string;
  stageMs?: StageMs;
  /** Tokens of a completed attempt (the usage it was charged for). */
  usage?: { prompt_tokens: number; completion_tokens: number };
}

/** Where job log entries go: fire and forget (buffered, written in batches off the request's path). */
export interface JobLog {
  record(entry: JobLogEntry): void;
}

/** A log that keeps nothing (roles or tests built without one). */
export const NO_JOB_LOG: JobLog = { record: () => undefined };

/** Longest reason kept per event: a node's job_error message is its own text, bounded here. */
export const JOB_LOG_REASON_MAX = 500;

/**
 * The order of events at the same millisecond (recorded by different processes): the lifecycle's order,
 * so that a read sorts by time and then by this.
 */
export function kindRank(kind: string): number {
  const i = (JOB_LOG_KINDS as readonly string[]).indexOf(kind);
  return i < 0 ? JOB_LOG_KINDS.length : i;
}

/** Stage times as kept: non-negative milliseconds to the microsecond (NaN and negatives from clock skew become 0). */
export function cleanStageMs(stages: StageMs): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(stages)) if (v !== undefined) out[k] = Number.isFinite(v) && v > 0 ? Math.round(v * 1000) / 1000 : 0;
  return out;
}
