import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OpenAICompatibleRuntime, RuntimeHttpError } from '../../src/node-agent/runtime.openai.js';
import type { JobRequest } from '../../src/domain/protocol.js';

interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
  body: unknown;
}

type Handler = (req: IncomingMessage, body: unknown, res: ServerResponse) => void;

async function fakeRuntimeServer(handler: Handler): Promise<{ base: string; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const body: unknown = text ? JSON.parse(text) : undefined;
      seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, body });
      handler(req, body, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}/v1`,
    seen,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

const request: JobRequest = {
  messages: [
    { role: 'system', content: 'be brief' },
    { role: 'user', content: 'hi' },
  ],
  max_tokens: 32,
  temperature: 0.2,
  stop: ['\n\n'],
  seed: 42,
};
const never = new AbortController().signal;

void test('openai runtime: forwards the request and maps the answer', async () => {
  const srv = await fakeRuntimeServer((req, _body, res) => {
    if (req.url === '/v1/models') return json(res, 200, { object: 'list', data: [{ id: 'llama-3-8b', object: 'model' }, { id: 'qwen2-7b' }] });
    json(res, 200, {
      id: 'cmpl-1',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hello!' }, finish_reason: 'length', logprobs: null }],
      usage: { prompt_tokens: 12, completion_tokens: 2, total_tokens: 14 },
    });
  });
  try {
    const rt = new OpenAICompatibleRuntime({ baseUrl: `${srv.base}/`, apiKey: 'sk-test' });
    assert.deepEqual(await rt.models(), ['llama-3-8b', 'qwen2-7b']);
    const answer = await rt.complete('llama-3-8b', request, never);
    assert.deepEqual(answer, { output: { content: 'Hello!', finish_reason: 'length' }, usage: { prompt_tokens: 12, completion_tokens: 2 } });

    const post = srv.seen.find((s) => s.method === 'POST');
    assert.ok(post);
    assert.equal(post.url, '/v1/chat/completions');
    assert.equal(post.authorization, 'Bearer sk-test');
    assert.deepEqual(post.body, {
      model: 'llama-3-8b',
      messages: request.messages,
      max_tokens: 32,
      temperature: 0.2,
      stop: ['\n\n'],
      seed: 42,
      stream: false,
    });
  } finally {
    await srv.close();
  }
});

void test('openai runtime: non-2xx answers become errors carrying the status and the server message', async () => {
  const srv = await fakeRuntimeServer((req, body, res) => {
    const model = (body as { model?: string } | undefined)?.model;
    if (model === 'missing') return json(res, 404, { error: 'model "missing" not found, try pulling it first' }); // Ollama
    if (model === 'plain') return res.writeHead(502).end('bad gateway');
    json(res, 500, { error: { message: 'CUDA out of memory', type: 'server_error' } }); // OpenAI / vLLM
  });
  try {
    const rt = new OpenAICompatibleRuntime({ baseUrl: srv.base });
    await assert.rejects(rt.complete('big', request, never), (err: unknown) => {
      assert.ok(err instanceof RuntimeHttpError);
      assert.equal(err.status, 500);
      assert.match(err.message, /500/);
      assert.match(err.message, /CUDA out of memory/);
      return true;
    });
    await assert.rejects(rt.complete('missing', request, never), /404.*model "missing" not found/);
    await assert.rejects(rt.complete('plain', request, never), /502.*bad gateway/);
    assert.equal(srv.seen[0]?.authorization, undefined);
  } finally {
    await srv.close();
  }
});

void test('openai runtime: a response without usage or with a bad shape is an error', async () => {
  const srv = await fakeRuntimeServer((_req, body, res) => {
    const model = (body as { model?: string } | undefined)?.model;
    if (model === 'no-usage') return json(res, 200, { choices: [{ message: { content: 'x' }, finish_reason: 'stop' }] });
    json(res, 200, { choices: [] });
  });
  try {
    const rt = new OpenAICompatibleRuntime({ baseUrl: srv.base });
    await assert.rejects(rt.complete('no-usage', request, never), /no usage/);
    await assert.rejects(rt.complete('empty', request, never), /unexpected response shape/);
  } finally {
    await srv.close();
  }
});

void test('openai runtime: the abort signal cancels a slow request', async () => {
  const srv = await fakeRuntimeServer(() => {
    // never answers; closeAllConnections ends it
  });
  try {
    const rt = new OpenAICompatibleRuntime({ baseUrl: srv.base });
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(new Error('deadline exceeded')), 50);
    await assert.rejects(rt.complete('m', request, controller.signal), /deadline exceeded/);
    assert.ok(Date.now() - started < 2_000);
  } finally {
    await srv.close();
  }
});

void test('openai runtime: an unreachable server is named in the error', async () => {
  const srv = await fakeRuntimeServer(() => undefined);
  const base = srv.base;
  await srv.close(); // nothing listens there any more
  const rt = new OpenAICompatibleRuntime({ baseUrl: base });
  await assert.rejects(rt.complete('m', request, never), /unreachable at http:\/\/127\.0\.0\.1:\d+\/v1: .*ECONNREFUSED/);
  assert.throws(() => new OpenAICompatibleRuntime({ baseUrl: 'ftp://x' }), /http\(s\)/);
});

void test('openai runtime: embedding jobs go to /embeddings (vectors back in input order), completion jobs to /completions', async () => {
  const srv = await fakeRuntimeServer((req, body, res) => {
    if (req.url === '/v1/embeddings') {
      // Out of order on purpose: the runtime sorts by index.
      return json(res, 200, { data: [{ index: 1, embedding: [0, 1] }, { index: 0, embedding: [1, 0] }], usage: { prompt_tokens: 5, total_tokens: 5 } });
    }
    if (req.url === '/v1/completions') {
      assert.equal((body as { prompt: string }).prompt, 'Once upon');
      return json(res, 200, { choices: [{ text: ' a time', finish_reason: 'length' }], usage: { prompt_tokens: 3, completion_tokens: 2 } });
    }
    json(res, 404, { error: { message: 'no' } });
  });
  try {
    const rt = new OpenAICompatibleRuntime({ baseUrl: srv.base, capabilities: ['completions', 'embeddings'] });
    assert.deepEqual(rt.capabilities, ['completions', 'embeddings']);
    const e = await rt.complete('emb', { kind: 'embedding', messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }], max_tokens: 1, dimensions: 2 }, never);
    assert.deepEqual(e.output, { content: '', finish_reason: 'stop', embeddings: [[1, 0], [0, 1]] });
    assert.deepEqual(e.usage, { prompt_tokens: 5, completion_tokens: 0 });
    assert.deepEqual(srv.seen[0]?.body, { model: 'emb', input: ['a', 'b'], encoding_format: 'float', dimensions: 2 });
    const c = await rt.complete('llm', { kind: 'completion', messages: [{ role: 'user', content: 'Once upon' }], max_tokens: 2 }, never);
    assert.deepEqual(c.output, { content: ' a time', finish_reason: 'length' });
    assert.deepEqual(c.usage, { prompt_tokens: 3, completion_tokens: 2 });
  } finally {
    await srv.close();
  }
});

void test('openai runtime: tools and response_format are forwarded; tool calls come back, streamed ones assembled by index', async () => {
  const call = { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } };
  const srv = await fakeRuntimeServer((_req, body, res) => {
    if ((body as { stream?: boolean }).stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const events = [
        { choices: [{ delta: { tool_calls: [{ index: 0, id: 'call_1', function: { name: 'get_weather', arguments: '' } }] } }] },
        { choices: [{ delta: { tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] } }] },
        { choices: [{ delta: { tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }, finish_reason: 'tool_calls' }] },
        { choices: [], usage: { prompt_tokens: 9, completion_tokens: 6 } },
      ];
      res.end(events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('') + 'data: [DONE]\n\n');
      return;
    }
    json(res, 200, { choices: [{ message: { content: null, tool_calls: [call] }, finish_reason: 'tool_calls' }], usage: { prompt_tokens: 9, completion_tokens: 6 } });
  });
  try {
    const rt = new OpenAICompatibleRuntime({ baseUrl: srv.base });
    const tools = [{ type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object' } } }];
    const asked: JobRequest = { messages: [{ role: 'user', content: 'weather?' }], max_tokens: 50, tools, tool_choice: 'required', response_format: { type: 'json_object' } };
    const r = await rt.complete('llm', asked, never);
    assert.deepEqual(r.output, { content: '', finish_reason: 'tool_calls', tool_calls: [call] });
    const sent = srv.seen[0]?.body as Record<string, unknown>;
    assert.deepEqual(sent.tools, tools);
    assert.equal(sent.tool_choice, 'required');
    assert.deepEqual(sent.response_format, { type: 'json_object' });
    const deltas: string[] = [];
    const s = await rt.complete('llm', { ...asked, stream: true }, never, (d) => deltas.push(d));
    assert.deepEqual(s.output, { content: '', finish_reason: 'tool_calls', tool_calls: [call] });
    assert.deepEqual(deltas, []);
  } finally {
    await srv.close();
  }
});
