// `stream: true` on POST /v1/chat/completions (and /v1/completions, whose chunks are `text_completion`
// objects carrying `text` instead of a `delta`): the answer as OpenAI-format server-sent events.
//
//   data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},...}],...}
//   data: {... "delta":{"content":"Hello"} ...}                         one per chunk the node streamed
//   data: {... "delta":{}, "finish_reason":"stop" ..., "resultity":{job_id, credits_charged}}
//   data: {... "choices":[], "usage":{...}}                              only with stream_options.include_usage
//   data: [DONE]
//
// Errors found before the job is accepted are ordinary JSON errors with their status (the route answers
// them before this runs). Once the headers are out, a failure is one `data: {"error":{...}}` event (the
// shape the official clients raise as an APIError), and the stream ends without [DONE]. Comments
// (`: keep-alive`) go out while nothing else does, so that proxies do not drop a connection waiting for
// a busy network.
import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import { AppError, formatCredits } from '../errors.js';
import type { JobRow } from '../postgres/jobs.repository.js';
import type { FinishedWatch, StreamEvent, StreamRelay } from './stream-relay.service.js';
import { openAiError } from '../http/errors.http.js';
import type { ToolCall } from '../domain/protocol.js';

const KEEP_ALIVE_MS = 15_000;

/** `chat`: `chat.completion.chunk` objects; `text_completion`: the legacy completions' chunks. */
export type StreamFormat = 'chat' | 'text_completion';

export interface StreamOptions {
  format?: StreamFormat;
  includeUsage: boolean;
  /** When to stop relaying a job that is still not finished (ms since the epoch). */
  until: number;
  /** The job's 'finished' watch, begun before its publish; the relay closes it. */
  finished?: FinishedWatch | null;
}

/** Takes over the reply and streams the job's answer; resolves when the stream has ended (or the client left). */
export async function sendChatStream(reply: FastifyReply, relay: StreamRelay, job: JobRow, opts: StreamOptions): Promise<void> {
  const raw = reply.raw;
  const gone = new AbortController();
  raw.on('close', () => gone.abort());
  reply.hijack();
  // What the route set (x-resultity-job-id, idempotent-replayed); hijacking the reply skips Fastify's own sending.
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) raw.setHeader(name, value);
  raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no', // nginx: do not buffer the stream
  });
  const sse = new SseWriter(raw);
  const chunk = opts.format === 'text_completion' ? textChunkFactory(job, opts.includeUsage) : chunkFactory(job, opts.includeUsage);
  // A chat stream opens with the assistant's role; a text completion has none to announce.
  if (opts.format !== 'text_completion') await sse.data(chunk({ role: 'assistant', content: '' }, null));

  const events = relay.follow(job, opts.until, gone.signal, opts.finished);
  try {
    for (;;) {
      const next = await withKeepAlive(events.next(), () => sse.comment('keep-alive'));
      if (next.done || gone.signal.aborted) break;
      const e: StreamEvent = next.value;
      if (e.kind === 'delta') {
        await sse.data(chunk({ content: e.text }, null));
      } else if (e.kind === 'completed') {
        // Tool calls come whole with the signed result (a node streams text only): one delta carries them,
        // in the shape OpenAI streams them (index, id, type and name, then the arguments).
        if (e.output.tool_calls && opts.format !== 'text_completion') {
          await sse.data(chunk({ tool_calls: e.output.tool_calls.map((c, index) => ({ index, ...c })) }, null));
        }
        const finish = chunk({}, e.finishReason);
        await sse.data({
          ...finish,
          // Log probabilities come with the result too: all of them on the last choice chunk.
          ...(e.output.logprobs ? { choices: finish.choices.map((c) => ({ ...c, logprobs: e.output.logprobs })) } : {}),
          resultity: { job_id: e.job.id, credits_charged: formatCredits(e.job.charged_micro ?? 0) },
        });
        if (opts.includeUsage) await sse.data({ ...chunk({}, null), choices: [], usage: usageOf(e.job) });
        await sse.data('[DONE]');
        break;
      } else {
        await sse.data(errorBody(e.error));
        break;
      }
    }
  } catch (err) {
    reply.log.error({ err, jobId: job.id }, 'streaming a job failed');
    await sse.data(errorBody(new AppError('internal_error', `The stream broke off; the job goes on: poll GET /v1/jobs/${job.id}.`)));
  } finally {
    await events.return(undefined);
    sse.end();
  }
}

type Delta = { role?: 'assistant'; content?: string; tool_calls?: Array<ToolCall & { index: number }> };

/** Builds the job's `chat.completion.chunk` objects. Never names the node. */
function chunkFactory(job: JobRow, includeUsage: boolean) {
  const base = { id: job.id, object: 'chat.completion.chunk' as const, created: Math.floor(job.created_at.getTime() / 1000), model: job.model };
  return (delta: Delta, finishReason: string | null) => ({
    ...base,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    // With include_usage OpenAI puts "usage": null on every chunk but the last.
    ...(includeUsage ? { usage: null } : {}),
  });
}

/** Builds the job's `text_completion` chunks (POST /v1/completions with stream: true). */
function textChunkFactory(job: JobRow, includeUsage: boolean) {
  const base = { id: job.id, object: 'text_completion' as const, created: Math.floor(job.created_at.getTime() / 1000), model: job.model };
  return (delta: Delta, finishReason: string | null) => ({
    ...base,
    choices: [{ index: 0, text: delta.content ?? '', logprobs: null, finish_reason: finishReason }],
    ...(includeUsage ? { usage: null } : {}),
  });
}

function usageOf(job: JobRow) {
  const prompt = job.prompt_tokens ?? 0;
  const completion = job.completion_tokens ?? 0;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

function errorBody(err: AppError) {
  return openAiError(err.kind, err.code, err.message, err.details.param ?? null);
}

/** Awaits `next`, running `keepAlive` every KEEP_ALIVE_MS until it settles. */
async function withKeepAlive<T>(next: Promise<T>, keepAlive: () => Promise<void>): Promise<T> {
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const tick = new Promise<'tick'>((resolve) => {
      timer = setTimeout(() => resolve('tick'), KEEP_ALIVE_MS);
    });
    const winner = await Promise.race([next, tick]);
    clearTimeout(timer);
    if (winner !== 'tick') return next;
    await keepAlive();
  }
}

/** Writes server-sent events, waiting when the client reads slower than the answer comes; silent once the client is gone. */
class SseWriter {
  constructor(private readonly res: ServerResponse) {}

  data(payload: unknown): Promise<void> {
    return this.write(`data: ${typeof payload === 'string' ? payload : JSON.stringify(payload)}\n\n`);
  }

  comment(text: string): Promise<void> {
    return this.write(`: ${text}\n\n`);
  }

  end(): void {
    if (this.open) this.res.end();
  }

  private get open(): boolean {
    return !this.res.destroyed && !this.res.writableEnded;
  }

  private async write(text: string): Promise<void> {
    if (!this.open || this.res.write(text)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.res.off('drain', done);
        this.res.off('close', done);
        resolve();
      };
      this.res.on('drain', done);
      this.res.on('close', done);
    });
  }
}
