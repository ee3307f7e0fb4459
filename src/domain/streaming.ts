// Limits of a streamed answer (a job whose request has `stream: true`), shared by the node agent that
// cuts the answer into chunks and the gateway that stores them in Redis. They bound the memory one
// attempt's stream can take there, whatever the node sends.

/** The longest single chunk, in UTF-16 code units (what the protocol schema counts). */
export const STREAM_MAX_DELTA_CHARS = 64 * 1024;

/** All of an attempt's chunks together, in UTF-8 bytes: the most a result message could carry anyway. */
export const STREAM_MAX_BYTES = 4 * 1024 * 1024;

/**
 * How many chunks one attempt may send. A chunk normally carries at least one token, so max_tokens plus
 * a little slack for runtimes that send a leading or trailing piece of their own; the agent merges
 * whatever its runtime produces beyond this into the last chunk.
 */
export function streamMaxChunks(maxTokens: number): number {
  return maxTokens + 16;
}
