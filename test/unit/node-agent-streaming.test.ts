// The node agent's side of streaming, with nothing running: the runtimes' streamed answers (the simulator,
// and an OpenAI-compatible server faked over HTTP), the SSE reader, and how a streamed text is cut into
// job_chunk messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { jobChunkSchema, type JobChunkMessage, type JobRequest } from '../../src/domain/protocol.js';
import { STREAM_MAX_DELTA_CHARS, streamMaxChunks } from '../../src/domain/streaming.js';
import { SimulatedRuntime } from '../../src/node-agent/runtime.simulated.js';
import { OpenAICompatibleRuntime, RuntimeHttpError } from '../../src/node-agent/runtime.openai.js';
import { sseData } from '../../src/node-agent/sse.js';
import { ChunkStream } from '../../src/node-agent/chunks.js';

const never = new AbortController().signal;
const request: JobRequest = { messages: [{ role: 'user', content: 'hello' }], max_tokens: 12 };

void test('simulated runtime: streams the answer word by word, the same answer as unstreamed', async () => {
  const runtime = new SimulatedRuntime({ models: ['sim-1'], latencyMs: 60, completionTokens: 10 });
  const deltas: string[] = [];
  const streamed = await runtime.complete('sim-1', { ...request, stream: true }, never, (d) => deltas.push(d));
  const plain = await runtime.complete('sim-1', request, never);
  assert.equal(deltas.join(''), streamed.output.content);
  assert.deepEqual(streamed, plain);
  // "simulated", " answer", " <digest>:", then one piece per word.
  assert.equal(deltas.length, 3 + 10);
  assert.ok(deltas.slice(1).every((d) => d.startsWith(' ')));
});

void test('simulated runtime: a streamed job stops when its signal aborts', async () => {
  const runtime = new SimulatedRuntime({ models: ['sim-1'], latencyMs: 5_000, completionTokens: 50 });
  const controller = new AbortController();
  const deltas: string[] = [];
  const running = runtime.complete('sim-1', request, controller.signal, (d) => {
    deltas.push(d);
    if (deltas.length === 1) controller.abort(new Error('deadline exceeded'));
  });
  await assert.rejects(running, /deadline exceeded/);
  assert.equal(deltas.length, 1);
});

async function sseServer(respond: (res: ServerResponse, body: Record<string, unknown>) => void) {
  const bodies: Array<Record<string, unknown>> = [];
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString('utf8')));
    req.on('end', () => {
      const body = JSON.parse(text) as Record<string, unknown>;
      bodies.push(body);
      respond(res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    runtime: new OpenAICompatibleRuntime({ baseUrl: `http://127.0.0.1:${port}/v1` }),
    bodies,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const chunk = (content: string | null, finish: string | null = null) =>
  JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: content === null ? {} : { content }, finish_reason: finish }], usage: null });
const usageEvent = JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 } });

/** Writes `text` in small pieces that cut lines, CRLFs and multi-byte characters in two. */
async function writeAwkwardly(res: ServerResponse, text: string): Promise<void> {
  const bytes = Buffer.from(text, 'utf8');
  for (let i = 0; i < bytes.length; i += 5) {
    res.write(bytes.subarray(i, i + 5));
    await new Promise((r) => setImmediate(r));
  }
  res.end();
}

void test('openai runtime: a streamed job uses the server stream with include_usage and passes each piece on', async () => {
  const events = [chunk(''), chunk('Bon'), chunk('jour, '), chunk('café ☕'), chunk(null, 'length'), usageEvent, '[DONE]'];
  const srv = await sseServer((res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    void writeAwkwardly(res, `: a comment\r\n\r\n${events.map((e) => `data: ${e}\r\n\r\n`).join('')}`);
  });
  try {
    const deltas: string[] = [];
    const answer = await srv.runtime.complete('m', request, never, (d) => deltas.push(d));
    assert.deepEqual(deltas, ['Bon', 'jour, ', 'café ☕']);
    assert.deepEqual(answer, { output: { content: 'Bonjour, café ☕', finish_reason: 'length' }, usage: { prompt_tokens: 7, completion_tokens: 3 } });
    assert.equal(srv.bodies[0]?.stream, true);
    assert.deepEqual(srv.bodies[0]?.stream_options, { include_usage: true });
  } finally {
    await srv.close();
  }
});

void test('openai runtime: a stream without usage, with an error event, cut short, or refused is an error', async () => {
  const cases: Array<{ name: string; respond: (res: ServerResponse) => void; expect: RegExp | ((e: unknown) => boolean) }> = [
    {
      name: 'no usage',
      respond: (res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).end(`data: ${chunk('hi', 'stop')}\n\ndata: [DONE]\n\n`),
      expect: /carries no usage/,
    },
    {
      name: 'error event',
      respond: (res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).end(`data: ${chunk('hi')}\n\ndata: {"error":{"message":"CUDA out of memory"}}\n\n`),
      expect: /CUDA out of memory/,
    },
    {
      name: 'cut short',
      respond: (res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).end(`data: ${chunk('hi')}\n\n`),
      expect: /ended before the answer did/,
    },
    {
      name: 'refused',
      respond: (res) => res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"message":"max_tokens is too large"}}'),
      expect: (e) => e instanceof RuntimeHttpError && e.status === 400 && /max_tokens is too large/.test(e.message),
    },
  ];
  for (const c of cases) {
    const srv = await sseServer((res) => c.respond(res));
    try {
      const deltas: string[] = [];
      await assert.rejects(srv.runtime.complete('m', request, never, (d) => deltas.push(d)), c.expect, c.name);
    } finally {
      await srv.close();
    }
  }
});

void test('sse reader: multi-line data, comments, other fields, CRLF and a last event without its blank line', async () => {
  const text = ': hello\n\nevent: x\ndata: one\ndata:two\nid: 3\n\r\ndata: {"a":1}\r\n\r\ndata: last';
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const bytes = new TextEncoder().encode(text);
      for (let i = 0; i < bytes.length; i += 3) controller.enqueue(bytes.subarray(i, i + 3));
      controller.close();
    },
  });
  const out: string[] = [];
  for await (const data of sseData(body)) out.push(data);
  assert.deepEqual(out, ['one\ntwo', '{"a":1}', 'last']);
});

void test('chunk stream: numbers pieces from 0, keeps within the chunk budget, never splits a surrogate pair', () => {
  const sent: JobChunkMessage[] = [];
  const job = { jobId: randomUUID(), attempt: 2, request: { ...request, max_tokens: 4 } };
  const stream = new ChunkStream(job, `0x${'a'.repeat(40)}`, (c) => sent.push(c));
  const budget = streamMaxChunks(4);
  const words = Array.from({ length: budget + 10 }, (_, i) => `w${i} `);
  for (const w of words) stream.push(w);
  stream.push('');
  assert.equal(sent.length, budget - 1, 'the last chunk is held back for the rest');
  stream.finish();
  assert.equal(sent.length, budget);
  assert.deepEqual(sent.map((c) => c.seq), [...Array(budget).keys()]);
  assert.equal(sent.map((c) => c.delta).join(''), words.join(''));
  assert.equal(stream.text, words.join(''));
  assert.ok(sent.every((c) => jobChunkSchema.safeParse(c).success && c.attempt === 2 && c.jobId === job.jobId));

  // A piece longer than a chunk may carry is cut, but not inside an emoji (two UTF-16 units).
  const big: JobChunkMessage[] = [];
  const huge = `${'x'.repeat(STREAM_MAX_DELTA_CHARS - 1)}😀tail`;
  const second = new ChunkStream({ ...job, request }, `0x${'a'.repeat(40)}`, (c) => big.push(c));
  second.push(huge);
  assert.equal(big.length, 2);
  assert.equal(big[0]?.delta.length, STREAM_MAX_DELTA_CHARS - 1);
  assert.equal(big[1]?.delta, '😀tail');
  assert.ok(big.every((c) => jobChunkSchema.safeParse(c).success));
});
