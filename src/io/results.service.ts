// Finalizing an attempt from a node's signed message: a result completes the job (output to MongoDB,
// settlement in PostgreSQL, wake-up over Redis), a job_error fails the attempt so the scheduler retries.
// Every step is idempotent and fenced by (job, attempt, node): a replayed, late or forged message
// changes nothing.
import { outputHash, type JobErrorMessage, type ResultMessage } from '../domain/protocol.js';
import { verifyMessage } from '../domain/signatures.js';
import type { Db } from '../postgres/db.js';
import { findJob } from '../postgres/jobs.repository.js';
import type { PayloadsRepository } from '../mongo/payloads.repository.js';
import type { PresenceRepository } from '../redis/presence.repository.js';
import type { JobEvents } from '../redis/job-events.js';
import type { SettlementService } from '../jobs/settlement.service.js';
import type { AttemptOutcome, JobLifecycle } from '../jobs/lifecycle.service.js';
import type { NodeFlagsService } from '../network/node-flags.service.js';
import type { JobStreams } from '../redis/job-streams.js';

export type ResultVerdict =
  | { accepted: true }
  | { accepted: false; reason: 'bad_signature' | 'output_hash_mismatch' | 'usage_out_of_bounds' | 'stream_mismatch' | 'stale_attempt' | 'unknown_job' };

export class ResultsService {
  constructor(
    private readonly d: {
      db: Db;
      settlement: SettlementService;
      payloads: PayloadsRepository;
      presence: PresenceRepository;
      events: JobEvents;
      lifecycle: JobLifecycle;
      nodeFlags: NodeFlagsService;
      streams: JobStreams;
    },
  ) {}

  /** Checks a result's signature and output hash without touching any state. */
  verify(msg: ResultMessage): 'ok' | 'bad_signature' | 'output_hash_mismatch' {
    if (!verifyMessage(msg, msg.nodeId)) return 'bad_signature';
    if (outputHash(msg.output) !== msg.outputHash) return 'output_hash_mismatch';
    return 'ok';
  }

  async acceptResult(msg: ResultMessage): Promise<ResultVerdict> {
    const check = this.verify(msg);
    if (check !== 'ok') return { accepted: false, reason: check };
    const job = await findJob(this.d.db, msg.jobId);
    if (!job) return { accepted: false, reason: 'unknown_job' };
    if (job.status !== 'running' || job.attempt !== msg.attempt || job.node_id !== msg.nodeId) return { accepted: false, reason: 'stale_attempt' };
    // Usage is the node's claim, and the bill: beyond what the request allowed it is an invalid result.
    if (msg.usage.completion_tokens > job.max_tokens || msg.usage.prompt_tokens > job.prompt_tokens_bound) {
      await this.failCurrentAttempt(msg.jobId, msg.attempt, msg.nodeId, 'invalid_result', 'usage beyond the request bounds');
      return { accepted: false, reason: 'usage_out_of_bounds' };
    }

    // A streamed attempt: its signed output must be exactly what it streamed, which the client may have
    // read already; anything else would store and bill an answer the client did not get. An attempt that
    // streamed nothing (an agent or runtime that cannot stream) is fine: its relay sends the whole output
    // as one piece. The gateway handles a job's chunks and its result in arrival order, so the stream is
    // complete here.
    const streamed = await this.d.streams.text(msg.jobId, msg.attempt);
    if (streamed !== null && streamed !== msg.output.content) {
      await this.failCurrentAttempt(msg.jobId, msg.attempt, msg.nodeId, 'invalid_result', 'the result differs from the text the node streamed');
      return { accepted: false, reason: 'stream_mismatch' };
    }

    // Output first: a job PostgreSQL calls completed must have its output stored. Keyed by attempt, so a
    // superseded attempt racing this one can never overwrite the output of the attempt that wins.
    await this.d.payloads.saveResult(msg.jobId, msg.attempt, msg.output, msg.usage, { attempt: msg.attempt, nodeId: msg.nodeId, at: new Date(), outcome: 'completed' });
    const row = await this.d.settlement.complete(msg.jobId, msg.attempt, msg.nodeId, msg.usage, msg.output.content === '');
    if (!row) return { accepted: false, reason: 'stale_attempt' };

    await this.d.presence.release(msg.nodeId, msg.jobId);
    await this.d.nodeFlags.recordSuccess(msg.nodeId);
    await this.d.events.publish({ kind: 'finished', jobId: msg.jobId });
    return { accepted: true };
  }

  /** Fails an attempt the node itself gave up on. */
  async acceptJobError(msg: JobErrorMessage): Promise<boolean> {
    if (!verifyMessage(msg, msg.nodeId)) return false;
    return this.failCurrentAttempt(msg.jobId, msg.attempt, msg.nodeId, 'failed', msg.message);
  }

  /**
   * Fails an attempt for a reason the gateway observed (a disconnect, an invalid result). No-op unless the
   * attempt is the job's current one and runs on this node.
   */
  async failCurrentAttempt(jobId: string, attempt: number, nodeId: string, outcome: AttemptOutcome, reason: string): Promise<boolean> {
    const job = await findJob(this.d.db, jobId);
    if (!job || job.node_id !== nodeId) return false;
    return this.d.lifecycle.failAttempt(jobId, attempt, nodeId, outcome, reason);
  }
}
