// The accepted shape of `POST /v1/chat/completions`, OpenAI's wire format. Fields that OpenAI clients
// send but that do not change what a node computes (user, metadata, store...) are accepted and ignored;
// fields whose meaning the network cannot honour yet are refused with a clear 400 rather than ignored.
import { z } from 'zod';
import { STOP_MAX_CHARS, STOP_MAX_SEQUENCES, type ChatMessage, type JobRequest } from '../domain/protocol.js';
import { text } from '../domain/wire-strings.js';
import { modelChoiceFields } from './model-choice.schema.js';

const textPart = z.object({ type: z.literal('text'), text: text() });
const content = z.union([text(), z.array(textPart).min(1)]);
const stopSequence = text().max(STOP_MAX_CHARS);

const message = z.object({
  role: z.enum(['system', 'user', 'assistant', 'tool', 'developer']),
  content: z.union([content, z.null()]),
  name: text().max(64).optional(),
});

export const chatCompletionRequestSchema = z
  .object({
    ...modelChoiceFields,
    messages: z.array(message).min(1).max(1024),
    max_tokens: z.number().int().positive().optional(),
    max_completion_tokens: z.number().int().positive().optional(),
    temperature: z.number().min(0).max(2).optional(),
    top_p: z.number().min(0).max(1).optional(),
    stop: z.union([stopSequence, z.array(stopSequence).max(STOP_MAX_SEQUENCES)]).optional(),
    seed: z.number().int().optional(),
    n: z.literal(1).optional(),
    stream: z.boolean().optional(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).optional(),
    user: text().optional(),
    // OpenAI's processing tier, mapped onto the network's priority classes (src/domain/priority.ts).
    service_tier: z.enum(['auto', 'default', 'priority', 'flex']).optional(),
  })
  // Other fields are accepted and ignored only if they cannot change the answer (metadata, store, ...);
  // those that would (tools, JSON mode, logprobs) are refused by `unsupportedField` below.
  .passthrough();

/** Fields whose meaning the network cannot honour yet: refused rather than silently ignored. */
const UNSUPPORTED: Record<string, (v: unknown) => boolean> = {
  tools: (v) => Array.isArray(v) && v.length > 0,
  functions: (v) => Array.isArray(v) && v.length > 0,
  tool_choice: (v) => v !== undefined && v !== null && v !== 'none',
  function_call: (v) => v !== undefined && v !== null && v !== 'none',
  response_format: (v) => typeof v === 'object' && v !== null && (v as { type?: unknown }).type !== 'text',
  logprobs: (v) => v === true,
  top_logprobs: (v) => typeof v === 'number' && v > 0,
  audio: (v) => v !== undefined && v !== null,
  modalities: (v) => Array.isArray(v) && v.some((m) => m !== 'text'),
};

/** The first field of the request that asks for something the network cannot do yet, if any. */
export function unsupportedField(body: Record<string, unknown>): string | null {
  for (const [field, used] of Object.entries(UNSUPPORTED)) if (field in body && used(body[field])) return field;
  return null;
}

export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;

/** The job a node will run: messages flattened to text, limits resolved. */
export function toJobRequest(req: ChatCompletionRequest, defaultMaxTokens: number): JobRequest {
  const messages: ChatMessage[] = req.messages.map((m) => ({
    role: m.role,
    content: m.content === null ? '' : typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join(''),
    ...(m.name !== undefined ? { name: m.name } : {}),
  }));
  return {
    messages,
    max_tokens: req.max_completion_tokens ?? req.max_tokens ?? defaultMaxTokens,
    ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
    ...(req.top_p !== undefined ? { top_p: req.top_p } : {}),
    ...(req.stop !== undefined ? { stop: typeof req.stop === 'string' ? [req.stop] : req.stop } : {}),
    ...(req.seed !== undefined ? { seed: req.seed } : {}),
    ...(req.stream === true ? { stream: true } : {}),
  };
}
