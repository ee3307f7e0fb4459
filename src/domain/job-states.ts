// Job states and the rules that move between them, without an engine. A job ends in exactly one terminal
// state. The scheduler (scheduler/scheduler.service.ts) carries out the steps decided here: what to do
// next with a job that has its ticket, when to give up on finding a node, how a silent attempt is read,
// and the reasons a job ends without a result (each reason's code is what the consumer sees, and is in
// the error catalogue, src/errors.ts).
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

/** How a job ends without a result: its status, the code and the sentence its consumer reads. */
export interface JobEnding {
  status: 'failed' | 'expired' | 'cancelled';
  code: string;
  message: string;
}

export const endings = {
  deadlineExceeded: (): JobEnding => ({ status: 'expired', code: 'deadline_exceeded', message: 'The job passed its deadline before a node completed it.' }),
  attemptsExhausted: (maxAttempts: number): JobEnding => ({ status: 'failed', code: 'attempts_exhausted', message: `No node completed the job in ${maxAttempts} attempts.` }),
  noNodeAvailable: (placement: string, graceMs: number): JobEnding => ({
    status: 'failed',
    code: 'no_node_available',
    message: `No online node eligible for ${placement} for ${graceMs} ms.`,
  }),
  payloadMissing: (): JobEnding => ({ status: 'failed', code: 'payload_missing', message: 'The job input is no longer stored.' }),
  cancelled: (): JobEnding => ({ status: 'cancelled', code: 'cancelled', message: 'The job was cancelled by its client.' }),
  streamInterrupted: (): JobEnding => ({
    status: 'failed',
    code: 'stream_interrupted',
    message: 'The node streaming this answer failed after part of it was sent; no credits were charged.',
  }),
} as const;

/**
 * How long a job waits for a node before its handler looks at its deadline again; while no node serves
 * its placement at all, how often it checks whether one came (the no-node grace's clock).
 */
export const PLACEMENT_RECHECK_MS = 2_000;
export const NO_NODE_RECHECK_MS = 250;

export type NextStep = { kind: 'end'; ending: JobEnding } | { kind: 'place'; waitMs: number };

/**
 * The step of a job about to start attempt `next`: ended by its deadline, then by its attempts, else
 * placed on a node, waiting at most until its deadline (and less while no eligible node was seen).
 */
export function nextStep(job: { deadlineAt: number; maxAttempts: number }, next: number, now: number, nodesSeen: boolean): NextStep {
  if (job.deadlineAt <= now) return { kind: 'end', ending: endings.deadlineExceeded() };
  if (next > job.maxAttempts) return { kind: 'end', ending: endings.attemptsExhausted(job.maxAttempts) };
  return { kind: 'place', waitMs: Math.max(1, Math.min(job.deadlineAt - now, nodesSeen ? PLACEMENT_RECHECK_MS : NO_NODE_RECHECK_MS)) };
}

/**
 * After a wait for a node that gave none: `liveNodes` eligible nodes are online (busy or not). The grace
 * clock starts when none is, resets when one is, and the job fails once none has been for `graceMs`.
 */
export function afterNoPlacement(noNodeSince: number | null, liveNodes: number, now: number, graceMs: number): { noNodeSince: number | null; giveUp: boolean } {
  const since = liveNodes > 0 ? null : (noNodeSince ?? now);
  return { noNodeSince: since, giveUp: since !== null && now - since >= graceMs };
}

/**
 * An attempt that ended with no word from its node: cut by the job's own deadline (the client's
 * outcome: the job expires, the node is not blamed), or the node's timeout (the attempt fails, a retry
 * follows).
 */
export function afterSilence(now: number, jobDeadlineAt: number): 'expire' | 'timeout' {
  return cutByClientDeadline(now, jobDeadlineAt) ? 'expire' : 'timeout';
}
