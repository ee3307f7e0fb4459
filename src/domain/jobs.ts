// Job states and the rules that move between them. A job ends in exactly one terminal state.
export const TERMINAL_STATUSES = ['completed', 'failed', 'expired', 'cancelled'] as const;
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];
export type JobStatus = 'queued' | 'running' | TerminalStatus;

export function isTerminal(status: JobStatus): status is TerminalStatus {
  return (TERMINAL_STATUSES as readonly string[]).includes(status);
}

/** How long an Idempotency-Key on a submission names its job. */
export const IDEMPOTENCY_WINDOW_HOURS = 24;

/** Backoff before the next attempt: exponential from `baseMs`, capped, with jitter to avoid herds. */
export function retryDelayMs(attempt: number, baseMs: number, capMs = 5_000): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + Math.random() * (exp / 2));
}

/**
 * How close to the job's deadline an attempt may end without a result and still count as cut by the
 * deadline: node clocks differ from ours, and a node that stops at its copy of the deadline reports a
 * little before or after ours. Nothing could have finished the job elsewhere in that time anyway.
 */
export const DEADLINE_SLACK_MS = 1_000;

/**
 * Whether an attempt ending without a result at `now` was cut by the job's own deadline (set by the
 * client), which makes it the client's outcome: the job expires, and the node is not blamed.
 */
export function cutByClientDeadline(now: number, jobDeadlineAt: number | null | undefined): boolean {
  return jobDeadlineAt !== null && jobDeadlineAt !== undefined && now >= jobDeadlineAt - DEADLINE_SLACK_MS;
}
