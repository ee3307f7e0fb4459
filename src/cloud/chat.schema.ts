// The accepted shape of `POST /v1/chat/completions`, OpenAI's wire format. Fields that OpenAI clients
// send but that do not change what a node computes (user, metadata, store...) are accepted and ignored;
// fields whose meaning the network cannot honour yet are refused with a clear 400 rather than ignored.
import { z } from 'zod';
import {
  MAX_TOOLS,
  responseFormatSchema,
  STOP_MAX_CHARS,
  STOP_MAX_SEQUENCES,
  toolCallSchema,
  toolChoiceSchema,
  toolSchema,
  type ChatMessage,
  type JobRequest,
} from '../domain/protocol.js';
import { compileSchema } from '../domain/json-output.js';
import { text } from '../domain/wire-strings.js';
import { modelChoiceFields } from './model-choice.schema.js';

const textPart = z.object({ type: z.literal('text'), text: text() });
const content = z.union([text(), z.array(textPart).min(1)]);
const stopSequence = text().max(STOP_MAX_CHARS);

const message = z.object({
  role: z.enum(['system', 'user', 'assistant', 'tool', 'developer']),
  // Absent or null on an assistant turn that only calls tools.
  content: z.union([content, z.null()]).optional(),
  name: text().max(64).optional(),
  tool_calls: z.array(toolCallSchema).max(MAX_TOOLS).optional(),
  tool_call_id: text().min(1).max(128).optional(),
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
    // Tools and structured output: run only on nodes that declare the capability (domain/capabilities.ts).
    tools: z.array(toolSchema).max(MAX_TOOLS).optional(),
    tool_choice: toolChoiceSchema.optional(),
    parallel_tool_calls: z.boolean().optional(),
    response_format: responseFormatSchema.optional(),
    logprobs: z.boolean().nullish(),
    top_logprobs: z.number().int().min(0).max(20).nullish(),
  })
  // Other fields are accepted and ignored only if they cannot change the answer (metadata, store, ...);
  // those that would (the deprecated functions, audio) are refused by `unsupportedField` below.
  .passthrough();

/** Fields whose meaning the network cannot honour yet: refused rather than silently ignored. */
const UNSUPPORTED: Record<string, (v: unknown) => boolean> = {
  functions: (v) => Array.isArray(v) && v.length > 0,
  function_call: (v) => v !== undefined && v !== null && v !== 'none',
  audio: (v) => v !== undefined && v !== null,
  modalities: (v) => Array.isArray(v) && v.some((m) => m !== 'text'),
};

/** The first field of the request that asks for something the network cannot do yet, if any. */
export function unsupportedField(body: Record<string, unknown>): string | null {
  for (const [field, used] of Object.entries(UNSUPPORTED)) if (field in body && used(body[field])) return field;
  return null;
}

export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;

/**
 * What the schema cannot say about tools and structured output: a tool_choice that names no tool of the
 * request, tool names used twice, a JSON Schema that does not compile (its answers could not be checked),
 * top_logprobs without logprobs. Null when the request is consistent.
 */
export function structuredOutputProblem(req: ChatCompletionRequest): { message: string; param: string } | null {
  const tools = req.tools ?? [];
  const names = new Set(tools.map((t) => t.function.name));
  if (names.size !== tools.length) return { message: 'Each tool must have its own name.', param: 'tools' };
  const choice = req.tool_choice;
  if (choice !== undefined && choice !== 'none' && tools.length === 0) return { message: `tool_choice is only allowed when tools are given.`, param: 'tool_choice' };
  if (typeof choice === 'object' && !names.has(choice.function.name)) return { message: `tool_choice names '${choice.function.name}', which is not among the tools.`, param: 'tool_choice' };
  for (const t of tools) {
    const compiled = t.function.parameters ? compileSchema(t.function.parameters) : null;
    if (compiled && 'error' in compiled) return { message: `The parameters of tool '${t.function.name}' are not a valid JSON Schema: ${compiled.error}`, param: 'tools' };
  }
  if (req.response_format?.type === 'json_schema' && req.response_format.json_schema.schema) {
    const compiled = compileSchema(req.response_format.json_schema.schema);
    if ('error' in compiled) return { message: `response_format.json_schema.schema is not a valid JSON Schema: ${compiled.error}`, param: 'response_format' };
  }
  if ((req.top_logprobs ?? 0) > 0 && req.logprobs !== true) return { message: 'top_logprobs requires logprobs: true.', param: 'top_logprobs' };
  return null;
}

/** The job a node will run: messages flattened to text, limits resolved. */
export function toJobRequest(req: ChatCompletionRequest, defaultMaxTokens: number): JobRequest {
  const messages: ChatMessage[] = req.messages.map((m) => ({
    role: m.role,
    content: m.content === null || m.content === undefined ? '' : typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join(''),
    ...(m.name !== undefined ? { name: m.name } : {}),
    ...(m.tool_calls !== undefined && m.tool_calls.length > 0 ? { tool_calls: m.tool_calls } : {}),
    ...(m.tool_call_id !== undefined ? { tool_call_id: m.tool_call_id } : {}),
  }));
  const tools = req.tools !== undefined && req.tools.length > 0 ? req.tools : undefined;
  return {
    messages,
    max_tokens: req.max_completion_tokens ?? req.max_tokens ?? defaultMaxTokens,
    ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
    ...(req.top_p !== undefined ? { top_p: req.top_p } : {}),
    ...(req.stop !== undefined ? { stop: typeof req.stop === 'string' ? [req.stop] : req.stop } : {}),
    ...(req.seed !== undefined ? { seed: req.seed } : {}),
    ...(req.stream === true ? { stream: true } : {}),
    // Tool settings only with tools (tool_choice 'none' without them changes nothing); a text format is the default.
    ...(tools ? { tools } : {}),
    ...(tools && req.tool_choice !== undefined ? { tool_choice: req.tool_choice } : {}),
    ...(tools && req.parallel_tool_calls !== undefined ? { parallel_tool_calls: req.parallel_tool_calls } : {}),
    ...(req.response_format !== undefined && req.response_format.type !== 'text' ? { response_format: req.response_format } : {}),
    ...(req.logprobs === true ? { logprobs: true, ...(req.top_logprobs ? { top_logprobs: req.top_logprobs } : {}) } : {}),
  };
}
