// The accepted shape of `POST /v1/embeddings`, OpenAI's wire format. Inputs are text: token-id arrays
// (which OpenAI also takes) mean a tokenizer the network cannot promise every node shares, so they are
// refused with a clear 400 rather than guessed at.
import { z } from 'zod';
import { EMBEDDING_MAX_DIMENSIONS, EMBEDDING_MAX_INPUTS, type JobRequest } from '../domain/protocol.js';
import { text } from '../domain/wire-strings.js';
import { modelChoiceFields } from './model-choice.schema.js';

const input = text().min(1, 'an input must not be empty');

export const embeddingRequestSchema = z
  .object({
    ...modelChoiceFields,
    input: z.union([input, z.array(input).min(1).max(EMBEDDING_MAX_INPUTS)]),
    /** `float` (the default): arrays of numbers; `base64`: each vector as little-endian float32, base64-encoded. */
    encoding_format: z.enum(['float', 'base64']).optional(),
    dimensions: z.number().int().min(1).max(EMBEDDING_MAX_DIMENSIONS).optional(),
    user: text().optional(),
  })
  .passthrough();

export type EmbeddingRequest = z.infer<typeof embeddingRequestSchema>;

/**
 * The job a node will run: one message per input, in order. `max_tokens` is 1 because every job row
 * bounds its completion (migration 0001); an embedding's result may claim none (domain/job-results.ts).
 */
export function embeddingJobRequest(req: EmbeddingRequest): JobRequest {
  const inputs = typeof req.input === 'string' ? [req.input] : req.input;
  return {
    kind: 'embedding',
    messages: inputs.map((content) => ({ role: 'user' as const, content })),
    max_tokens: 1,
    ...(req.dimensions !== undefined ? { dimensions: req.dimensions } : {}),
  };
}

/** A vector as OpenAI's `base64` encoding sends it: its components as little-endian float32. */
export function base64Embedding(vector: readonly number[]): string {
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((x, i) => bytes.writeFloatLE(x, i * 4));
  return bytes.toString('base64');
}
