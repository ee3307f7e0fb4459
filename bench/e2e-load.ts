// The e2e benchmark's load generator, in a process of its own (forked by bench/e2e.ts): closed loops of
// C clients against the backbone's public API (each client its own API key, so its own namespace), in
// synchronous or streaming mode; and, as references on the same engines, the naive floor pipeline
// (floor.ts) and BullMQ bare (bullmq.ts). The measured window's edges are announced to the parent as
// they happen (`window` events), so that it can read its counters at the same moments.
import { performance } from 'node:perf_hooks';
import { serveParent } from './ipc.js';
import { closedLoop, type LoadOptions, type LoadResult } from './load.js';
import { runFloor, floorRunId, type FloorOptions } from './floor.js';
import { runBullmq } from './bullmq.js';

export interface LoadParams {
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  maxOps: number;
  drainMs: number;
}

export interface ApiParams extends LoadParams {
  url: string;
  apiKeys: string[];
  model: string;
  maxTokens: number;
  /** A tag in each prompt, so that runs never send the same request twice. */
  tag: string;
}

/** What a run returns: the load result and, for streaming, each successful request's time to first token (ms, ascending). */
export interface RunOutput {
  result: LoadResult;
  ttft: Float64Array | null;
}

let current: AbortController | null = null;

const ipc = serveParent(
  {
    async sync(p: ApiParams): Promise<RunOutput> {
      return { result: await closedLoop(loadOptions(p), (i, worker, signal) => chat(p, i, worker, signal)), ttft: null };
    },
    async stream(p: ApiParams): Promise<RunOutput> {
      const ttft: number[] = [];
      let phase: 'warmup' | 'measure' | 'done' = 'warmup';
      const opts = loadOptions(p);
      const result = await closedLoop({ ...opts, onWindow: (edge) => ((phase = edge === 'start' ? 'measure' : 'done'), opts.onWindow?.(edge)) }, async (i, worker, signal) => {
        const first = await chatStream(p, i, worker, signal);
        if (phase === 'measure') ttft.push(first);
      });
      return { result, ttft: Float64Array.from(ttft).sort() };
    },
    async floor(p: LoadParams & FloorOptions): Promise<RunOutput> {
      return { result: await runFloor(p, floorRunId(), loadOptions(p)), ttft: null };
    },
    async bullmq(p: LoadParams): Promise<RunOutput> {
      return { result: (await runBullmq(loadOptions(p))).result, ttft: null };
    },
    /** One request, outside any window: does the pipeline work at all? */
    async probe(p: ApiParams): Promise<string> {
      await chat(p, 0, 0, AbortSignal.timeout(30_000));
      return 'ok';
    },
    abort(): void {
      current?.abort();
    },
  },
  () => {
    current?.abort();
    setTimeout(() => process.exit(0), 2_000).unref();
  },
);

function loadOptions(p: LoadParams): LoadOptions {
  current = new AbortController();
  return {
    concurrency: p.concurrency,
    warmupMs: p.warmupMs,
    durationMs: p.durationMs,
    maxOps: p.maxOps,
    drainMs: p.drainMs,
    signal: current.signal,
    onWindow: (edge) => ipc.emit('window', edge),
  };
}

function body(p: ApiParams, i: number, stream: boolean): string {
  return JSON.stringify({
    model: p.model,
    messages: [{ role: 'user', content: `bench ${p.tag} request ${i}` }],
    max_tokens: p.maxTokens,
    ...(stream ? { stream: true } : {}),
  });
}

async function chat(p: ApiParams, i: number, worker: number, signal: AbortSignal): Promise<void> {
  const res = await fetch(`${p.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${p.apiKeys[worker]!}`, 'content-type': 'application/json' },
    body: body(p, i, false),
    signal,
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`);
  const parsed = JSON.parse(text) as { object?: string; choices?: Array<{ message?: { content?: string | null } }> };
  const content = parsed.choices?.[0]?.message?.content ?? '';
  if (parsed.object !== 'chat.completion' || !content.startsWith('simulated answer')) throw new Error(`unexpected answer: ${text.slice(0, 200)}`);
}

/** Streams one completion to its end; resolves with the time (ms) from the request to the first content token. */
async function chatStream(p: ApiParams, i: number, worker: number, signal: AbortSignal): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${p.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${p.apiKeys[worker]!}`, 'content-type': 'application/json', accept: 'text/event-stream' },
    body: body(p, i, true),
    signal,
  });
  if (res.status !== 200 || !res.body) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
  const decoder = new TextDecoder();
  let buffered = '';
  let firstToken = NaN;
  let content = '';
  let done = false;
  for await (const chunk of res.body) {
    buffered += decoder.decode(chunk as Uint8Array, { stream: true });
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (!line.startsWith('data:')) continue;
      const data = line.slice(5).trim();
      if (data === '[DONE]') {
        done = true;
        continue;
      }
      const event = JSON.parse(data) as { error?: { message?: string }; choices?: Array<{ delta?: { content?: string | null } }> };
      if (event.error) throw new Error(`stream error: ${event.error.message ?? data.slice(0, 200)}`);
      const piece = event.choices?.[0]?.delta?.content ?? '';
      if (piece !== '' && Number.isNaN(firstToken)) firstToken = performance.now() - t0;
      content += piece;
    }
  }
  if (!done) throw new Error('the stream ended without [DONE]');
  if (!content.startsWith('simulated answer')) throw new Error(`unexpected streamed answer: ${content.slice(0, 200)}`);
  return firstToken;
}
