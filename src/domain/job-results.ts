// Whether a node's result answers the request it was dispatched: an embedding job must come back with one
// vector per input (of the asked length), a text job with text. A result that does not is an invalid
// result (io/results.service.ts): retried on another node, and counted against the one that sent it.
// The usage side of the same rule: an embedding produces no completion tokens, so a node that claims any
// for one claims what it did not deliver.
import { jobKind, type JobKind, type JobOutput, type JobRequest, type Usage } from './protocol.js';

/** What the gateway expects of an attempt's result, from the request it dispatched. */
export interface ResultExpectation {
  kind: JobKind;
  /** Embeddings: the number of inputs (one vector each). */
  inputs: number;
  /** Embeddings: the vector length asked for; null: the model's own (but the same for every vector). */
  dimensions: number | null;
}

export function expectationOf(request: JobRequest): ResultExpectation {
  return { kind: jobKind(request), inputs: request.messages.length, dimensions: request.dimensions ?? null };
}

/**
 * Why `output` does not answer its request, or null when it does. `expected` null: the request is not at
 * hand (a result posted over HTTP after its socket dropped), so only what the output itself shows is checked.
 */
export function resultMismatch(expected: ResultExpectation | null, output: JobOutput, usage: Usage): string | null {
  const vectors = output.embeddings;
  const embedding = expected ? expected.kind === 'embedding' : vectors !== undefined;
  if (!embedding) return vectors === undefined ? null : 'embeddings returned for a text job';
  if (vectors === undefined) return 'an embedding job answered without embeddings';
  if (output.content !== '') return 'an embedding job answered with text';
  if (usage.completion_tokens !== 0) return 'completion tokens claimed for an embedding job';
  if (expected && vectors.length !== expected.inputs) return `${vectors.length} embeddings for ${expected.inputs} inputs`;
  const length = expected?.dimensions ?? vectors[0]?.length;
  if (vectors.some((v) => v.length !== length)) return `embeddings of other than ${length} dimensions`;
  return null;
}
