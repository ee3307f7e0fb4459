// Forwards jobs to an OpenAI-compatible chat-completions server (vLLM, Ollama, llama.cpp server...) with
// plain fetch: the openai package is a dev dependency only, and one POST does not need an SDK. A streamed
// job uses the server's own streaming (`stream: true` with `stream_options.include_usage`, so that the
// usage to bill arrives with the last event), passing each piece of text on as it comes. Completion jobs
// go to the server's `/completions` and embedding jobs to its `/embeddings` (vLLM, Ollama and llama.cpp
// server have both), with the same rules: no usage in the answer, no result.
import { z } from 'zod';
import type { JobOutput, JobRequest, Usage } from '../domain/protocol.js';
import type { InferenceRuntime } from './runtime.js';
import type { Capability } from '../domain/capabilities.js';
import { sseData } from './sse.js';

export interface OpenAICompatibleRuntimeOptions {
  /** The server's API base, including its version path, e.g. http://127.0.0.1:8000/v1. */
  baseUrl: string;
  apiKey?: string;
  /** What the server can do beyond chat, as its operator declares it (--runtime-capabilities). */
  capabilities?: readonly Capability[];
  /** Bound on GET /models, which has no caller-supplied signal. */
  modelsTimeoutMs?: number;
}

/** A non-2xx answer from the runtime server, with its status and the server's own error message. */
export class RuntimeHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'RuntimeHttpError';
  }
}

const usageResponseSchema = z.object({ prompt_tokens: z.number().int().min(0), completion_tokens: z.number().int().min(0) });

// Only the fields we use; servers add many more (ids, logprobs, timings) and differ in which.
const toolCallResponseSchema = z.object({ id: z.string(), type: z.literal('function').optional(), function: z.object({ name: z.string(), arguments: z.string() }) });
const completionResponseSchema = z.object({
  choices: z
    .array(
      z.object({
        message: z.object({ content: z.string().nullish(), tool_calls: z.array(toolCallResponseSchema).nullish() }).nullish(),
        finish_reason: z.string().nullish(),
        logprobs: z.object({ content: z.array(z.unknown()).nullish() }).passthrough().nullish(),
      }),
    )
    .min(1),
  usage: usageResponseSchema.nullish(),
});

// One streamed event: `choices` is empty in the final usage event; `usage` is null or absent before it.
const streamEventSchema = z.object({
  choices: z
    .array(
      z.object({
        delta: z
          .object({
            content: z.string().nullish(),
            // Streamed tool calls: the first piece of each (by index) names it, later ones add to its arguments.
            tool_calls: z
              .array(z.object({ index: z.number().int().min(0), id: z.string().nullish(), function: z.object({ name: z.string().nullish(), arguments: z.string().nullish() }).nullish() }))
              .nullish(),
          })
          .nullish(),
        finish_reason: z.string().nullish(),
        logprobs: z.object({ content: z.array(z.unknown()).nullish() }).passthrough().nullish(),
      }),
    )
    .nullish(),
  usage: usageResponseSchema.nullish(),
});

// The legacy completions endpoint: `text` where chat has `message.content` (and `delta.content` when streamed).
const textCompletionSchema = z.object({
  choices: z.array(z.object({ text: z.string().nullish(), finish_reason: z.string().nullish() })).nullish(),
  usage: usageResponseSchema.nullish(),
});

const embeddingsResponseSchema = z.object({
  data: z.array(z.object({ index: z.number().int().min(0), embedding: z.array(z.number()) })).min(1),
  usage: z.object({ prompt_tokens: z.number().int().min(0) }).nullish(),
});

const modelsResponseSchema = z.object({ data: z.array(z.object({ id: z.string() })) });

export class OpenAICompatibleRuntime implements InferenceRuntime {
  readonly name = 'openai';
  readonly capabilities: readonly Capability[];
  private readonly base: string;
  private readonly apiKey: string | undefined;
  private readonly modelsTimeoutMs: number;

  constructor(opts: OpenAICompatibleRuntimeOptions) {
    const url = new URL(opts.baseUrl); // throws on a malformed URL, at construction rather than per job
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`runtime URL must be http(s): ${opts.baseUrl}`);
    this.base = url.href.replace(/\/+$/, '');
    this.apiKey = opts.apiKey;
    this.modelsTimeoutMs = opts.modelsTimeoutMs ?? 10_000;
    this.capabilities = [...(opts.capabilities ?? [])];
  }

  async models(): Promise<string[]> {
    const body = await this.call('GET', '/models', undefined, AbortSignal.timeout(this.modelsTimeoutMs));
    const parsed = modelsResponseSchema.safeParse(body);
    if (!parsed.success) throw new Error(`runtime GET /models: unexpected response shape (${parsed.error.issues[0]?.message ?? 'invalid'})`);
    return parsed.data.data.map((m) => m.id);
  }

  async complete(model: string, request: JobRequest, signal: AbortSignal, onDelta?: (text: string) => void): Promise<{ output: JobOutput; usage: Usage }> {
    if (request.kind === 'embedding') return this.embed(model, request, signal);
    if (request.kind === 'completion') return this.completeText(model, request, signal, onDelta);
    const payload = {
      model,
      messages: request.messages,
      max_tokens: request.max_tokens,
      temperature: request.temperature,
      top_p: request.top_p,
      stop: request.stop,
      seed: request.seed,
      // Tools and structured output, as the job carries them (sent only to nodes that declared them).
      tools: request.tools,
      tool_choice: request.tool_choice,
      parallel_tool_calls: request.parallel_tool_calls,
      response_format: request.response_format,
      logprobs: request.logprobs,
      top_logprobs: request.top_logprobs,
      stream: onDelta !== undefined,
      ...(onDelta ? { stream_options: { include_usage: true } } : {}),
    };
    if (onDelta) return this.completeStreamed(payload, signal, onDelta);
    const body = await this.call('POST', '/chat/completions', payload, signal);
    const parsed = completionResponseSchema.safeParse(body);
    if (!parsed.success) throw new Error(`runtime POST /chat/completions: unexpected response shape (${parsed.error.issues[0]?.message ?? 'invalid'})`);
    const { choices, usage } = parsed.data;
    // Refuse rather than invent numbers: usage is what the consumer is billed and the operator is paid for.
    if (!usage) throw new Error('runtime POST /chat/completions: the response carries no usage');
    const choice = choices[0];
    const toolCalls = choice?.message?.tool_calls ?? [];
    return {
      output: {
        content: choice?.message?.content ?? '',
        finish_reason: mapFinishReason(choice?.finish_reason),
        ...(toolCalls.length > 0 ? { tool_calls: toolCalls.map((c) => ({ id: c.id, type: 'function' as const, function: c.function })) } : {}),
        ...(choice?.logprobs?.content ? { logprobs: { content: choice.logprobs.content } as JobOutput['logprobs'] } : {}),
      },
      usage: { prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens },
    };
  }

  /** An embedding job: POST /embeddings with the inputs in order, the vectors back in the same order. */
  private async embed(model: string, request: JobRequest, signal: AbortSignal): Promise<{ output: JobOutput; usage: Usage }> {
    const where = 'runtime POST /embeddings';
    const payload = { model, input: request.messages.map((m) => m.content), encoding_format: 'float', ...(request.dimensions !== undefined ? { dimensions: request.dimensions } : {}) };
    const parsed = embeddingsResponseSchema.safeParse(await this.call('POST', '/embeddings', payload, signal));
    if (!parsed.success) throw new Error(`${where}: unexpected response shape (${parsed.error.issues[0]?.message ?? 'invalid'})`);
    if (!parsed.data.usage) throw new Error(`${where}: the response carries no usage`);
    const embeddings = [...parsed.data.data].sort((a, b) => a.index - b.index).map((d) => d.embedding);
    return { output: { content: '', finish_reason: 'stop', embeddings }, usage: { prompt_tokens: parsed.data.usage.prompt_tokens, completion_tokens: 0 } };
  }

  /** A completion job: POST /completions with the prompt (the job's one message), streamed when asked. */
  private async completeText(model: string, request: JobRequest, signal: AbortSignal, onDelta?: (text: string) => void): Promise<{ output: JobOutput; usage: Usage }> {
    const where = `runtime POST /completions${onDelta ? ' (stream)' : ''}`;
    const payload = {
      model,
      prompt: request.messages.map((m) => m.content).join(''),
      max_tokens: request.max_tokens,
      temperature: request.temperature,
      top_p: request.top_p,
      stop: request.stop,
      seed: request.seed,
      stream: onDelta !== undefined,
      ...(onDelta ? { stream_options: { include_usage: true } } : {}),
    };
    let content = '';
    let finishReason: string | null | undefined;
    let usage: Usage | undefined;
    const take = (event: unknown) => {
      if (isRecord(event) && (event.error !== undefined || event.object === 'error')) throw new Error(`${where}: the server reported an error: ${serverMessage(JSON.stringify(event))}`);
      const parsed = textCompletionSchema.safeParse(event);
      if (!parsed.success) throw new Error(`${where}: unexpected response shape (${parsed.error.issues[0]?.message ?? 'invalid'})`);
      const choice = parsed.data.choices?.[0];
      if (choice?.text) {
        content += choice.text;
        onDelta?.(choice.text);
      }
      if (choice?.finish_reason) finishReason = choice.finish_reason;
      if (parsed.data.usage) usage = { prompt_tokens: parsed.data.usage.prompt_tokens, completion_tokens: parsed.data.usage.completion_tokens };
    };
    if (onDelta) {
      const res = await this.open('POST', '/completions', payload, signal, 'text/event-stream');
      if (!res.body) throw new Error(`${where}: the response has no body`);
      for await (const data of sseData(res.body)) {
        if (data === '[DONE]') break;
        let event: unknown;
        try {
          event = JSON.parse(data) as unknown;
        } catch {
          throw new Error(`${where}: an event is not JSON`);
        }
        take(event);
      }
    } else {
      take(await this.call('POST', '/completions', payload, signal));
    }
    if (!usage) throw new Error(`${where}: the response carries no usage`);
    return { output: { content, finish_reason: mapFinishReason(finishReason) }, usage };
  }

  private async completeStreamed(payload: unknown, signal: AbortSignal, onDelta: (text: string) => void): Promise<{ output: JobOutput; usage: Usage }> {
    const where = 'runtime POST /chat/completions (stream)';
    const res = await this.open('POST', '/chat/completions', payload, signal, 'text/event-stream');
    if (!res.body) throw new Error(`${where}: the response has no body`);
    let content = '';
    let finishReason: string | null | undefined;
    let usage: Usage | undefined;
    let ended = false;
    const calls: Array<{ id: string; name: string; arguments: string }> = [];
    const logprobs: unknown[] = [];
    for await (const data of sseData(res.body)) {
      if (data === '[DONE]') {
        ended = true;
        break;
      }
      let event: unknown;
      try {
        event = JSON.parse(data) as unknown;
      } catch {
        throw new Error(`${where}: an event is not JSON`);
      }
      // Servers report a failure mid-stream as an event: {error: {...}} (OpenAI, vLLM) or {object: "error", message} (older vLLM).
      if (isRecord(event) && (event.error !== undefined || event.object === 'error')) throw new Error(`${where}: the server reported an error: ${serverMessage(data)}`);
      const parsed = streamEventSchema.safeParse(event);
      if (!parsed.success) throw new Error(`${where}: unexpected event shape (${parsed.error.issues[0]?.message ?? 'invalid'})`);
      const choice = parsed.data.choices?.[0];
      const piece = choice?.delta?.content;
      if (piece) {
        content += piece;
        onDelta(piece);
      }
      for (const piece of choice?.delta?.tool_calls ?? []) {
        const call = (calls[piece.index] ??= { id: '', name: '', arguments: '' });
        if (piece.id) call.id = piece.id;
        if (piece.function?.name) call.name += piece.function.name;
        if (piece.function?.arguments) call.arguments += piece.function.arguments;
      }
      if (choice?.logprobs?.content) logprobs.push(...choice.logprobs.content);
      if (choice?.finish_reason) finishReason = choice.finish_reason;
      if (parsed.data.usage) usage = { prompt_tokens: parsed.data.usage.prompt_tokens, completion_tokens: parsed.data.usage.completion_tokens };
    }
    if (!ended && finishReason === undefined) throw new Error(`${where}: the stream ended before the answer did`);
    // Refuse rather than invent numbers, as for a plain completion.
    if (!usage) throw new Error(`${where}: the stream carries no usage (does the server support stream_options.include_usage?)`);
    const toolCalls = calls.filter((c) => c !== undefined).map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: c.arguments } }));
    return {
      output: {
        content,
        finish_reason: mapFinishReason(finishReason),
        ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
        ...(logprobs.length > 0 ? { logprobs: { content: logprobs } as JobOutput['logprobs'] } : {}),
      },
      usage,
    };
  }

  private async call(method: 'GET' | 'POST', path: string, payload: unknown, signal: AbortSignal): Promise<unknown> {
    const text = await (await this.open(method, path, payload, signal, 'application/json')).text();
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new Error(`runtime ${method} ${path}: the response is not JSON`);
    }
  }

  /** Sends the request; resolves with a 2xx response (body unread), rejects with RuntimeHttpError otherwise. */
  private async open(method: 'GET' | 'POST', path: string, payload: unknown, signal: AbortSignal, accept: string): Promise<Response> {
    const headers: Record<string, string> = { accept };
    if (payload !== undefined) headers['content-type'] = 'application/json';
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method,
        headers,
        body: payload === undefined ? undefined : JSON.stringify(payload),
        signal,
      });
    } catch (err) {
      if (signal.aborted) throw err;
      // fetch's own message is only "fetch failed"; the cause says why (refused, DNS, reset...).
      throw new Error(`runtime ${method} ${path} unreachable at ${this.base}: ${describeCause(err)}`, { cause: err });
    }
    if (!res.ok) {
      const text = await res.text();
      throw new RuntimeHttpError(res.status, `runtime ${method} ${path} answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}: ${serverMessage(text)}`);
    }
    return res;
  }
}

function mapFinishReason(reason: string | null | undefined): JobOutput['finish_reason'] {
  if (reason === 'length' || reason === 'content_filter' || reason === 'tool_calls') return reason;
  // 'stop', 'eos', null...: the answer ended on its own terms.
  return 'stop';
}

/** The error message from the usual shapes: OpenAI/vLLM/llama.cpp {error:{message}}, Ollama {error}, old vLLM {message}. */
function serverMessage(text: string): string {
  let message: unknown;
  try {
    const body = JSON.parse(text) as unknown;
    if (isRecord(body)) {
      const error = body.error;
      message = isRecord(error) ? error.message : (error ?? body.message ?? body.detail);
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  const out = typeof message === 'string' && message !== '' ? message : text.trim() || '(empty body)';
  return out.length > 500 ? `${out.slice(0, 500)}...` : out;
}

function describeCause(err: unknown): string {
  if (err instanceof Error) {
    const cause: unknown = err.cause;
    if (cause instanceof Error) return cause.message;
    return err.message;
  }
  return String(err);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
