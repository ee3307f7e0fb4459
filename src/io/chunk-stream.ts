// A streamed attempt's chunks on a node's socket (see io/gateway.ts, "Streaming"): appended in order to the
// attempt's Redis Stream (redis/job-streams.ts), within the attempt's chunk budget; a chunk out of order
// or over budget fails the attempt as an invalid result. The gateway calls `chunks` on each job_chunk's
// turn in its job's order (gateway-session.ts inJobOrder).
import type { WebSocket } from 'ws';
import type { JobChunkMessage } from '../domain/protocol.js';
import type { JobStreams } from '../redis/job-streams.js';
import { STREAM_MAX_BYTES } from '../domain/streaming.js';
import { NO_JOB_LOG, type JobLog } from '../domain/job-log.js';
import type { ResultsService } from './results.service.js';
import { attemptKey, reject, type Session } from './gateway-session.js';

export class ChunkStreams {
  constructor(
    private readonly d: {
      streams: Pick<JobStreams, 'append'>;
      results: Pick<ResultsService, 'failAttempt'>;
      /** The job log: an attempt's first streamed token (written behind). */
      jobLog?: JobLog;
    },
  ) {}

  /**
   * Appends the chunks queued for `msg`'s attempt (msg's own and those that arrived while earlier work of
   * the job ran) to its stream, in one round trip; when an earlier turn took `msg` along, there is nothing
   * left to do. A chunk for an attempt this socket does not run is refused and dropped; one out of order
   * or over budget fails the attempt as an invalid result (the stream can no longer match any result), and
   * the attempt's later chunks are refused. A stream Redis lost fails the attempt too, but not as the
   * node's fault.
   */
  async chunks(socket: WebSocket, session: Session, msg: JobChunkMessage): Promise<void> {
    const key = attemptKey(msg.jobId, msg.attempt);
    const stream = session.streams.get(key);
    if (!stream) return void reject(socket, 'unknown_stream', 'no streamed attempt of that job runs on this connection');
    const batch = stream.pending.splice(0);
    if (batch.length === 0) return;
    // A job's messages are handled one at a time (inJobOrder), so `next` is exact: the batch's chunks in
    // order go on, and the first out of order stops it.
    let inOrder = 0;
    while (inOrder < batch.length && batch[inOrder]!.seq === stream.next + inOrder) inOrder++;
    const appended =
      inOrder === 0
        ? { outcome: 'out_of_order' as const, appended: 0 }
        : await this.d.streams.append(msg.jobId, msg.attempt, stream.next, batch.slice(0, inOrder).map((c) => c.delta), { maxChunks: stream.maxChunks, maxBytes: STREAM_MAX_BYTES });
    if (stream.next === 0 && appended.appended > 0) this.firstToken(session, msg);
    stream.next += appended.appended;
    const outcome = appended.outcome === 'ok' && inOrder < batch.length ? 'out_of_order' : appended.outcome;
    if (outcome === 'ok') return;
    session.streams.delete(key);
    // The attempt's fate first, then the word to the node: a node that hangs up on the error must not
    // turn its invalid stream into a mere disconnect.
    const blame = outcome === 'stream_lost' ? 'disconnected' : 'invalid_result';
    const dispatched = session.inflight.get(msg.jobId);
    if (dispatched?.attempt === msg.attempt) {
      await this.d.results.failAttempt(msg.jobId, msg.attempt, session.nodeId, blame, `stream chunk refused: ${outcome}`, dispatched.startedAt);
    }
    reject(socket, 'invalid_chunk', `chunk ${batch[appended.appended]!.seq} refused: ${outcome}`);
  }

  /** Logs an attempt's first streamed token, with the time from its dispatch (what a streaming client waits). */
  private firstToken(session: Session, msg: JobChunkMessage): void {
    const ctx = session.inflight.get(msg.jobId);
    if (ctx?.attempt !== msg.attempt) return;
    const at = new Date();
    (this.d.jobLog ?? NO_JOB_LOG).record({
      jobId: msg.jobId,
      namespaceId: ctx.namespaceId,
      kind: 'first_token',
      at,
      attempt: msg.attempt,
      nodeId: session.nodeId,
      stageMs: { first_token: Math.max(0, at.getTime() - ctx.startedAt) },
    });
  }
}
