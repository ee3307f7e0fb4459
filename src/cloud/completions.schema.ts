// The accepted shape of `POST /v1/completions` (OpenAI's legacy text completions): one prompt in, one
// text out. What would change the answer and the network cannot honour (several prompts or choices,
// echo, suffix, logprobs, best_of) is refused with a clear 400 rather than ignored.
import { z } from 'zod';
import { STOP_MAX_CHARS, STOP_MAX_SEQUENCES, type JobRequest } from '../domain/protocol.js';
import { text } from '../domain/wire-strings.js';
import { modelChoiceFields } from './model-choice.schema.js';

const stopSequence = text().max(STOP_MAX_CHARS);

/** OpenAI's default for a completion that names no max_tokens. */
export const COMPLETION_DEFAULT_MAX_TOKENS = 16;

export const completionRequestSchema = z
  .object({
    ...modelChoiceFields,
    prompt: z.union([text().min(1), z.array(text().min(1)).length(1, 'one prompt per request')]),
    max_tokens: z.number().int().positive().optional(),
    temperature: z.number().min(0).max(2).optional(),
    top_p: z.number().min(0).max(1).optional(),
    stop: z.union([stopSequence, z.array(stopSequence).max(STOP_MAX_SEQUENCES)]).optional(),
    seed: z.number().int().optional(),
    n: z.literal(1).optional(),
    best_of: z.literal(1).optional(),
    echo: z.literal(false).optional(),
    logprobs: z.null().optional(),
    suffix: z.null().optional(),
    stream: z.boolean().optional(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).optional(),
    user: text().optional(),
    service_tier: z.enum(['auto', 'default', 'priority', 'flex']).optional(),
  })
  .passthrough();

export type CompletionRequest = z.infer<typeof completionRequestSchema>;

/** The job a node will run: the prompt as its one message. */
export function completionJobRequest(req: CompletionRequest): JobRequest {
  return {
    kind: 'completion',
    messages: [{ role: 'user', content: typeof req.prompt === 'string' ? req.prompt : req.prompt.join('') }],
    max_tokens: req.max_tokens ?? COMPLETION_DEFAULT_MAX_TOKENS,
    ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
    ...(req.top_p !== undefined ? { top_p: req.top_p } : {}),
    ...(req.stop !== undefined ? { stop: typeof req.stop === 'string' ? [req.stop] : req.stop } : {}),
    ...(req.seed !== undefined ? { seed: req.seed } : {}),
    ...(req.stream === true ? { stream: true } : {}),
  };
}
