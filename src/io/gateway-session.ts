// A node's socket on this gateway instance, as the gateway and its chunk streams (io/chunk-stream.ts)
// share it: the attempts it runs, its streamed attempts, and the per-job order its messages are handled
// in; with the two ways of answering on it.
import type { WebSocket } from 'ws';
import type { ErrorCode } from '../errors.js';
import type { GatewayMessage, JobChunkMessage } from '../domain/protocol.js';
import type { AttemptContext } from './results.service.js';

/** A streamed attempt on this socket: its chunk budget, the next chunk expected, the chunks waiting to be appended. */
export interface StreamState {
  maxChunks: number;
  next: number;
  pending: JobChunkMessage[];
}

export interface Session {
  socket: WebSocket;
  nodeId: string;
  /** As registered: the participation rules check it at every heartbeat. */
  agentVersion: string;
  /** The config digest last recorded in Redis for this node (undefined: none recorded yet). */
  recordedDigest: string | null | undefined;
  /** jobId -> the attempt this socket is running (its terms, from the dispatch). */
  inflight: Map<string, AttemptContext>;
  /** `jobId#attempt` -> the streamed attempts dispatched to this socket and not ended: chunk budget, next seq. */
  streams: Map<string, StreamState>;
  /** Per job, the tail of its chain of messages being handled (see inJobOrder). */
  jobOrder: Map<string, Promise<void>>;
  /** When the node's last whole message arrived (ms): a registered socket silent past the heartbeat TTL is closed. */
  lastMessageAt: number;
}

/**
 * Forgets a job's attempt on this socket, unless a newer attempt of the job has replaced it; returns what
 * the socket knew of it (null: this socket does not run that attempt).
 */
export function forgetAttempt(session: Session, jobId: string, attempt: number): AttemptContext | null {
  session.streams.delete(attemptKey(jobId, attempt));
  const known = session.inflight.get(jobId);
  if (known?.attempt !== attempt) return null;
  session.inflight.delete(jobId);
  return known;
}

export function attemptKey(jobId: string, attempt: number): string {
  return `${jobId}#${attempt}`;
}

/**
 * Runs `work` after every earlier message of the same job on this socket has been handled. Called
 * synchronously on a frame's arrival (before any await in onMessage), so the chain follows arrival order.
 */
export function inJobOrder(session: Session, jobId: string, work: () => Promise<void>): Promise<void> {
  const previous = session.jobOrder.get(jobId) ?? Promise.resolve();
  const current = previous.then(work);
  const tail = current.catch(() => undefined); // the caller reports the failure; the chain goes on
  session.jobOrder.set(jobId, tail);
  void tail.then(() => {
    if (session.jobOrder.get(jobId) === tail) session.jobOrder.delete(jobId);
  });
  return current;
}

export function send(socket: WebSocket, msg: GatewayMessage): void {
  if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(msg));
}

/** Answers a refused message with its code (ERROR_CATALOGUE); `close`: a refused registration also closes the socket. */
export function reject(socket: WebSocket, code: ErrorCode, message: string, close = false): null {
  send(socket, { type: 'error', code, message });
  if (close) socket.close(4003, code);
  return null;
}
