// The seam between the node agent (which talks to the network and signs) and the thing that actually
// produces tokens (a simulator, or an OpenAI-compatible server such as vLLM, Ollama or llama.cpp server).
import type { JobOutput, JobRequest, Usage } from '../domain/protocol.js';
import type { Capability } from '../domain/capabilities.js';

export interface InferenceRuntime {
  /** Short, stable name reported to the gateway at registration (at most 64 characters are sent). */
  name: string;
  /**
   * What it can do beyond plain chat (domain/capabilities.ts), declared to the network with every
   * registration and heartbeat: jobs that need a capability are sent only to nodes that declare it.
   */
  readonly capabilities?: readonly Capability[];
  /** The models this runtime can serve right now. */
  models(): Promise<string[]>;
  /**
   * Runs one chat completion. Must reject promptly once `signal` aborts (deadline passed, node stopping),
   * so that the node's capacity is freed and no late work is billed.
   * With `onDelta` (a streamed job), calls it with each new piece of text as it is generated, in order;
   * the pieces put together must equal the returned `output.content` exactly (the network refuses a
   * result that differs from what was streamed). A runtime that cannot stream may ignore it: the whole
   * answer then reaches the client at the end.
   */
  complete(model: string, request: JobRequest, signal: AbortSignal, onDelta?: (text: string) => void): Promise<{ output: JobOutput; usage: Usage }>;
}

/** The error to reject with once `signal` has aborted: its reason, or an AbortError when it has none. */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const err = new Error(typeof reason === 'string' ? reason : 'aborted');
  err.name = 'AbortError';
  return err;
}
