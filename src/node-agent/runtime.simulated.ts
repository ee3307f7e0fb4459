// A SIMULATOR, not inference: for demos, tests and load generation only. It answers every request with
// text derived from a hash of the request, so that the same request always yields the same output, usage
// and output hash, which is what end-to-end tests and benchmarks need to check the whole pipeline.
// Streamed, the same answer comes out word by word, spread evenly over the simulated generation time; a
// streamed request gets the same answer as the same request unstreamed.
// Embeddings are SIMULATED too: each input's vector is drawn from a hash of the model and that input (so
// the same text always has the same vector, and different texts almost surely differ), normalized to unit
// length; they carry no meaning, and similar texts are not close. `dimensions` sets their length
// (SIMULATED_EMBEDDING_DIMENSIONS by default).
// Tools and structured output are SIMULATED deterministically as well, so that clients' tool loops and
// structured-output helpers can be tested end to end:
//   - tools: it calls a tool when tool_choice requires one ('required': the first tool; a named
//     function: that one) and, with 'auto' (the default), when the conversation's last message is not a
//     tool's answer (so an agent loop calls once, then gets text); the arguments fill the tool's
//     `parameters` schema (simulated-json.ts); with tool_choice 'none' it never calls;
//   - response_format json_schema: the answer is its schema filled the same way; json_object: a JSON
//     object {"answer": "<the usual simulated text>"};
//   - logprobs: each word piece of the answer is a "token" with a log probability drawn from the hash
//     (and top_logprobs alternatives below it).
// Completion tokens of a tool call or JSON answer: a quarter of its UTF-8 bytes (at least 1, at most max_tokens).
import { canonicalJson, sha256Hex } from '../domain/signatures.js';
import type { ChatMessage, JobOutput, JobRequest, Usage } from '../domain/protocol.js';
import { abortReason, type InferenceRuntime } from './runtime.js';
import { CAPABILITIES } from '../domain/capabilities.js';
import { fillSchema } from './simulated-json.js';
import { deliveredText } from '../domain/job-results.js';

export interface SimulatedRuntimeOptions {
  models: string[];
  /** Simulated generation time per request (spread over the words when streaming). */
  latencyMs?: number;
  /** Tokens generated when max_tokens does not cap the answer. */
  completionTokens?: number;
}

// A small fixed vocabulary: the words carry no meaning, they only make the output look like text.
const WORDS = [
  'node', 'token', 'credit', 'ledger', 'epoch', 'model', 'queue', 'route', 'shard', 'signal',
  'proof', 'batch', 'cache', 'relay', 'vector', 'prompt', 'answer', 'stream', 'weight', 'layer',
  'gradient', 'kernel', 'tensor', 'lattice', 'beacon', 'harbor', 'meadow', 'river', 'summit', 'ember',
  'quartz', 'willow',
] as const;

/**
 * Prompt tokens as the simulator counts them: ceil(utf8 bytes / 4) + 4 per message. Always at most
 * utf8 bytes + 8 per message, the upper bound the server uses for its worst-case credit hold.
 */
export function simulatedPromptTokens(messages: readonly ChatMessage[]): number {
  let total = 0;
  for (const m of messages) total += Math.ceil(Buffer.byteLength(m.content, 'utf8') / 4) + 4;
  return total;
}

/** The length of a simulated embedding when the request names none. */
export const SIMULATED_EMBEDDING_DIMENSIONS = 64;

/** Simulated runtime; see the file comment: it never runs a model. Stop sequences are ignored. */
export class SimulatedRuntime implements InferenceRuntime {
  readonly name = 'simulated';
  /** It simulates everything (see the file comment). */
  readonly capabilities = CAPABILITIES;
  private readonly modelList: string[];
  private readonly latencyMs: number;
  private readonly completionTokens: number;

  constructor(opts: SimulatedRuntimeOptions) {
    if (opts.models.length === 0) throw new Error('the simulated runtime needs at least one model');
    this.modelList = [...opts.models];
    this.latencyMs = nonNegativeInt(opts.latencyMs ?? 0, 'latencyMs');
    this.completionTokens = nonNegativeInt(opts.completionTokens ?? 16, 'completionTokens');
  }

  async models(): Promise<string[]> {
    return [...this.modelList];
  }

  async complete(model: string, request: JobRequest, signal: AbortSignal, onDelta?: (text: string) => void): Promise<{ output: JobOutput; usage: Usage }> {
    if (!this.modelList.includes(model)) throw new Error(`model not served by this runtime: ${model}`);
    if (request.kind === 'embedding') {
      await sleep(this.latencyMs, signal);
      const dimensions = request.dimensions ?? SIMULATED_EMBEDDING_DIMENSIONS;
      return {
        output: { content: '', finish_reason: 'stop', embeddings: request.messages.map((m) => simulatedEmbedding(model, m.content, dimensions)) },
        usage: { prompt_tokens: simulatedPromptTokens(request.messages), completion_tokens: 0 },
      };
    }
    const capped = request.max_tokens < this.completionTokens;
    const completion = Math.min(request.max_tokens, this.completionTokens);
    // How the answer is delivered does not change it.
    const { stream: _delivery, ...asked } = request;
    const digest = sha256Hex(canonicalJson({ model, request: asked }));
    const text = `simulated answer ${digest.slice(0, 8)}: ${words(digest, completion)}`;
    const structured = structuredAnswer(request, digest, text);
    const output: JobOutput = structured ?? { content: text, finish_reason: capped ? 'length' : 'stop' };
    const completionTokens = structured ? Math.max(1, Math.min(request.max_tokens, Math.ceil(Buffer.byteLength(deliveredText(structured), 'utf8') / 4))) : completion;
    if (request.logprobs === true && output.content !== '') output.logprobs = simulatedLogprobs(output.content, digest, request.top_logprobs ?? 0);
    if (onDelta && output.content !== '') {
      const parts = wordPieces(output.content);
      for (const [i, part] of parts.entries()) {
        // Spread evenly, the rounding error going to the last piece, so the total is latencyMs.
        await sleep(Math.floor((this.latencyMs * (i + 1)) / parts.length) - Math.floor((this.latencyMs * i) / parts.length), signal);
        onDelta(part);
      }
    } else {
      await sleep(this.latencyMs, signal);
    }
    return { output, usage: { prompt_tokens: simulatedPromptTokens(request.messages), completion_tokens: completionTokens } };
  }
}

/** The simulated tool call or JSON answer the request asks for (see the file comment), or null for plain text. */
function structuredAnswer(request: JobRequest, digest: string, text: string): JobOutput | null {
  const tools = request.tools ?? [];
  const choice = request.tool_choice ?? 'auto';
  if (tools.length > 0 && choice !== 'none') {
    const named = typeof choice === 'object' ? tools.find((t) => t.function.name === choice.function.name) : undefined;
    const answered = request.messages[request.messages.length - 1]?.role === 'tool';
    const tool = named ?? (choice === 'required' || !answered ? tools[0] : undefined);
    if (tool) {
      const args = fillSchema(tool.function.parameters ?? { type: 'object' }, digest);
      return {
        content: '',
        finish_reason: 'tool_calls',
        tool_calls: [{ id: `call_${digest.slice(0, 24)}`, type: 'function', function: { name: tool.function.name, arguments: JSON.stringify(args) } }],
      };
    }
  }
  const format = request.response_format;
  if (format?.type === 'json_schema') return { content: JSON.stringify(fillSchema(format.json_schema.schema ?? { type: 'object' }, digest)), finish_reason: 'stop' };
  if (format?.type === 'json_object') return { content: JSON.stringify({ answer: text }), finish_reason: 'stop' };
  return null;
}

/** Log probabilities for each word piece of `content`, drawn from the hash (see the file comment). */
function simulatedLogprobs(content: string, digest: string, top: number): NonNullable<JobOutput['logprobs']> {
  return {
    content: wordPieces(content).map((token, i) => {
      const logprob = -(parseInt(sha256Hex(`${digest}:${i}`).slice(0, 4), 16) / 0xffff) * 2;
      const entry = { token, logprob, bytes: [...Buffer.from(token, 'utf8')] };
      return { ...entry, top_logprobs: [entry, ...Array.from({ length: Math.max(0, top - 1) }, (_, k) => ({ token: ` ${WORDS[k % WORDS.length] ?? 'token'}`, logprob: logprob - 1 - k, bytes: null }))].slice(0, top) };
    }),
  };
}

/** A unit vector of `dimensions` components drawn from hashes of the model and the text: deterministic, meaningless. */
export function simulatedEmbedding(model: string, text: string, dimensions: number): number[] {
  const raw: number[] = [];
  let block = sha256Hex(canonicalJson({ model, text }));
  while (raw.length < dimensions) {
    for (let i = 0; i + 4 <= block.length && raw.length < dimensions; i += 4) raw.push(parseInt(block.slice(i, i + 4), 16) / 0x8000 - 1);
    block = sha256Hex(block);
  }
  const norm = Math.hypot(...raw) || 1;
  // Rounded to 6 places: the vector travels as JSON, and a shorter number is as good for a simulation.
  return raw.map((x) => Math.round((x / norm) * 1e6) / 1e6);
}

/** `text` as the pieces a tokenizer-ish stream would send: each word with the spaces before it. */
function wordPieces(text: string): string[] {
  return text.match(/\s*\S+|\s+$/g) ?? [text];
}

/** `count` words chosen by successive hashes of `seed`: deterministic and independent of Math.random. */
function words(seed: string, count: number): string {
  const out: string[] = [];
  let block = seed;
  while (out.length < count) {
    for (let i = 0; i + 2 <= block.length && out.length < count; i += 2) {
      out.push(WORDS[parseInt(block.slice(i, i + 2), 16) % WORDS.length] ?? 'token');
    }
    block = sha256Hex(block);
  }
  return out.join(' ');
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(abortReason(signal));
  if (ms === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function nonNegativeInt(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0) throw new Error(`${what} must be a non-negative integer, got ${n}`);
  return n;
}
