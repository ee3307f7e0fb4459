// The scheduler's decisions about a job, without an engine (scheduler/scheduler.service.ts carries them
// out): what to do next with a job that has its ticket, when to give up on finding a node, how a silent
// attempt is read, and the reasons a job ends without a result. Each reason's code is what the consumer
// sees in the job's error and in the quarantine.
import { cutByClientDeadline } from './jobs.js';

/** How a job ends without a result: its status, the code and the sentence its consumer reads. */
export interface JobEnding {
  status: 'failed' | 'expired';
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
