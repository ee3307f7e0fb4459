// Streaming (stream: true) end to end on the real engines: OpenAI-format server-sent events through the
// official client, across two backbone instances, with the stored output and the charge equal to what
// was streamed; a node whose result differs from its stream; a retry before any token reached the
// client; and a client that hangs up mid-stream.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { pino } from 'pino';
import { Redis } from 'ioredis';
import { createBackbone, type Backbone } from '../../src/app.js';
import { signMessage } from '../../src/domain/signatures.js';
import { outputHash, type JobOutput } from '../../src/domain/protocol.js';
import { startNodeAgent } from '../../src/node-agent/agent.js';
import { SimulatedRuntime } from '../../src/node-agent/runtime.simulated.js';
import { TestStack, TEST_MODEL, type RawNode, type Tenant } from '../helpers/stack.js';
import { RedisKeys } from '../../src/redis/client.js';

type ChatCompletionChunk = OpenAI.Chat.Completions.ChatCompletionChunk;

let stack: TestStack;
let second: Backbone | null = null;
let alice: Tenant;

// The stack's model is served by a node slow enough (20 words over 2 s) for the stream to be seen
// arriving while the job still runs.
const WORDS = 20;

before(async () => {
  stack = await TestStack.start();
  await stack.model();
  await stack.node({ latencyMs: 2_000, completionTokens: WORDS });
  alice = await stack.tenant(10);
});

after(async () => {
  await second?.close();
  await stack.close();
});

const check = (fn: () => Promise<void>) => stack.check(fn);
const messages = [{ role: 'user' as const, content: 'Tell me about the sea.' }];

/** The job row's settlement columns. */
async function jobRow(id: string) {
  // Running as a reader sees it: an attempt in flight lives in Redis until it ends (stack.job). Read
  // first, so that a job ending between the two reads shows as the row says, with its settlement.
  const view = (await stack.job(id))!;
  const r = await stack.db.query<{ status: string; attempt: number; prompt_tokens: number | null; completion_tokens: number | null; charged_micro: number | null; error_code: string | null; streamed_attempt: number | null }>(
    `SELECT status, attempt, prompt_tokens, completion_tokens, charged_micro, error_code, streamed_attempt FROM jobs WHERE id = $1`,
    [id],
  );
  const row = r.rows[0];
  assert.ok(row, `job ${id} exists`);
  return row.status === 'queued' ? { ...row, status: view.status, attempt: view.attempt } : row;
}

/** The stored output (GET /v1/jobs/{id}), as the consumer sees it. */
async function storedContent(tenant: Tenant, id: string): Promise<string | null | undefined> {
  const res = await fetch(`${stack.url}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${tenant.apiKey}` } });
  const body = (await res.json()) as { result: { choices: Array<{ message: { content: string | null } }> } | null };
  return body.result?.choices[0]?.message.content;
}

function contentOf(chunks: ChatCompletionChunk[]): string {
  return chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
}

test('a streamed answer through the official openai client: chunks while the node works, usage, [DONE], stored output and charge equal to the stream', () =>
  check(async () => {
    const before = await stack.balance(alice.namespaceId);
    const stream = await alice.client.chat.completions.create({ model: TEST_MODEL, messages, max_tokens: 50, stream: true, stream_options: { include_usage: true } });
    const chunks: ChatCompletionChunk[] = [];
    let statusAtFirstToken: string | null = null;
    for await (const chunk of stream) {
      chunks.push(chunk);
      if (statusAtFirstToken === null && chunk.choices[0]?.delta.content) statusAtFirstToken = (await jobRow(chunk.id)).status;
    }
    const jobId = chunks[0]?.id ?? '';
    // The first words reached the client while the node was still generating the rest.
    assert.equal(statusAtFirstToken, 'running');
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === jobId && c.model === TEST_MODEL));
    assert.equal(chunks[0]?.choices[0]?.delta.role, 'assistant');
    const contentChunks = chunks.filter((c) => c.choices[0]?.delta.content);
    assert.ok(contentChunks.length > WORDS / 2, `the answer came in pieces (${contentChunks.length})`);
    const finish = chunks.filter((c) => c.choices[0]?.finish_reason);
    assert.equal(finish.length, 1);
    assert.equal(finish[0]?.choices[0]?.finish_reason, 'stop');
    // include_usage: the last chunk has no choices and the usage.
    const last = chunks.at(-1);
    assert.deepEqual(last?.choices, []);
    assert.ok(last?.usage);
    assert.equal(last.usage.completion_tokens, WORDS);
    assert.equal(last.usage.total_tokens, last.usage.prompt_tokens + WORDS);
    assert.ok(chunks.slice(0, -1).every((c) => c.usage === null));

    const streamed = contentOf(chunks);
    assert.match(streamed, /^simulated answer [0-9a-f]{8}: /);
    assert.equal(await storedContent(alice, jobId), streamed);
    // The same request unstreamed gets the same answer: streaming changes the delivery only.
    const plain = await alice.client.chat.completions.create({ model: TEST_MODEL, messages, max_tokens: 50 });
    assert.equal(plain.choices[0]?.message.content, streamed);

    const row = await jobRow(jobId);
    assert.equal(row.status, 'completed');
    assert.equal(row.prompt_tokens, last.usage.prompt_tokens);
    const priced = last.usage.prompt_tokens * 10 + WORDS * 20;
    assert.equal(row.charged_micro, priced);
    const extra = (finish[0] as unknown as { resultity: { credits_charged: string; job_id: string } }).resultity;
    assert.deepEqual(extra, { job_id: jobId, credits_charged: (priced / 1e6).toFixed(6) });
    const afterBalance = await stack.balance(alice.namespaceId);
    const plainCharge = (plain.usage?.prompt_tokens ?? 0) * 10 + (plain.usage?.completion_tokens ?? 0) * 20;
    assert.equal(before.available - afterBalance.available, priced + plainCharge);
    assert.equal(afterBalance.held, 0);
    assert.ok(!JSON.stringify(chunks).includes('0x'), 'the stream must not name the node');
  }));

test('the wire format: text/event-stream, no-cache, data lines, [DONE] last, no usage chunk unless asked', () =>
  check(async () => {
    const res = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: TEST_MODEL, messages, max_tokens: 50, stream: true }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    const jobId = res.headers.get('x-resultity-job-id');
    assert.ok(jobId);
    const text = await res.text();
    const events = text.split('\n\n').filter((e) => e !== '' && !e.startsWith(':'));
    assert.ok(text.endsWith('data: [DONE]\n\n'));
    assert.ok(events.every((e) => e.startsWith('data: ') && !e.slice(6).includes('\n')));
    const payloads = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)) as ChatCompletionChunk);
    assert.ok(payloads.every((p) => p.choices.length === 1 && !('usage' in p)));
    assert.equal(contentOf(payloads), await storedContent(alice, jobId));
  }));

test('errors before the stream starts are plain JSON errors with their status', () =>
  check(async () => {
    await assert.rejects(
      alice.client.chat.completions.create({ model: 'no/such-model', messages, stream: true }),
      (e: unknown) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found',
    );
    const poor = await stack.tenant(0.0001);
    await assert.rejects(poor.client.chat.completions.create({ model: TEST_MODEL, messages, max_tokens: 50, stream: true }), (e: unknown) => e instanceof OpenAI.APIError && e.status === 402);
    const res = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.apiKey}`, 'content-type': 'application/json', prefer: 'respond-async' },
      body: JSON.stringify({ model: TEST_MODEL, messages, stream: true }),
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { param: string } }).error.param, 'stream');
  }));

test('a stream crosses instances: the client on one backbone, the node on another', () =>
  check(async () => {
    const model = 'test/remote-1';
    await stack.model(model);
    // The second instance holds only node sockets; the client's request, the scheduler and the relay stay on the stack's.
    second = await createBackbone({ config: stack.config, roles: ['io'], logger: pino({ level: 'warn' }), mongoUrl: stack.mongoUrl, migrate: false });
    const node = await startNodeAgent({
      gatewayUrl: await second.listen(),
      privateKey: await stack.enrolled(),
      operator: await stack.operator(),
      runtime: new SimulatedRuntime({ models: [model], latencyMs: 500, completionTokens: 12 }),
      capacity: 1,
      logger: pino({ level: 'silent' }),
      reconnect: false,
    });
    stack.nodes.push(node);
    assert.equal((await stack.presence(node.nodeId)).instance, second.instanceId);

    const stream = await alice.client.chat.completions.create({ model, messages, max_tokens: 30, stream: true, stream_options: { include_usage: true } });
    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const jobId = chunks[0]?.id ?? '';
    assert.ok(chunks.filter((c) => c.choices[0]?.delta.content).length > 6, 'streamed in pieces');
    assert.equal(contentOf(chunks), await storedContent(alice, jobId));
    assert.equal(chunks.at(-1)?.usage?.completion_tokens, 12);
    const row = await jobRow(jobId);
    assert.equal(row.status, 'completed');
    assert.equal(row.streamed_attempt, 1);
  }));

/** A hand-driven node serving `model` alone, and a streamed request to it read in the background. */
async function rawStream(model: string, tenant: Tenant) {
  await stack.model(model);
  const node = await stack.rawNode();
  await node.registerAs(await stack.operator(), { models: [model], capacity: 1 });
  const stream = await tenant.client.chat.completions.create({ model, messages, max_tokens: 50, stream: true });
  const received: ChatCompletionChunk[] = [];
  const reading = (async () => {
    for await (const chunk of stream) received.push(chunk);
  })();
  reading.catch(() => undefined); // awaited by the test
  const job = await node.next('job');
  return { node, job, received, reading, jobId: String(job.jobId), attempt: Number(job.attempt) };
}

function chunkFrame(node: RawNode, jobId: string, attempt: number, seq: number, delta: string) {
  return { type: 'job_chunk', nodeId: node.nodeId, jobId, attempt, seq, delta };
}

function resultFrame(node: RawNode, jobId: string, attempt: number, output: JobOutput) {
  return signMessage(node.privateKey, {
    type: 'result' as const,
    nodeId: node.nodeId,
    jobId,
    attempt,
    ts: Date.now(),
    output,
    outputHash: outputHash(output),
    usage: { prompt_tokens: 10, completion_tokens: 3 },
  });
}

test('a node whose result differs from what it streamed: result refused as invalid, and the job fails uncharged since the client had tokens', () =>
  check(async () => {
    const tenant = await stack.tenant(1);
    const before = await stack.balance(tenant.namespaceId);
    const { node, job, received, reading, jobId, attempt } = await rawStream('test/raw-mismatch', tenant);
    assert.equal((job.request as { stream?: boolean }).stream, true);
    node.send(chunkFrame(node, jobId, attempt, 0, 'Hello'));
    await stack.until('the first chunk to reach the client', async () => (contentOf(received) === 'Hello' ? true : undefined));
    node.send(chunkFrame(node, jobId, attempt, 1, ' world'));
    node.send(resultFrame(node, jobId, attempt, { content: 'Goodbye world', finish_reason: 'stop' }));
    const ack = await node.next('result_ack');
    assert.deepEqual([ack.accepted, ack.reason], [false, 'stream_mismatch']);

    // Tokens of that attempt had reached the client: no retry elsewhere, an error event ends the stream.
    await assert.rejects(reading, (e: unknown) => e instanceof OpenAI.APIError && e.code === 'stream_interrupted');
    assert.equal(contentOf(received), 'Hello world');
    const row = await jobRow(jobId);
    assert.deepEqual([row.status, row.error_code, row.charged_micro, row.attempt, row.streamed_attempt], ['failed', 'stream_interrupted', 0, 1, 1]);
    const outcome = await stack.db.query<{ outcome: string }>(`SELECT outcome FROM job_attempts WHERE job_id = $1`, [jobId]);
    assert.deepEqual(outcome.rows, [{ outcome: 'invalid_result' }]);
    assert.deepEqual(await stack.balance(tenant.namespaceId), before);
    assert.equal((await stack.presence(node.nodeId)).reserved, '0');
    await node.close();
  }));

test('a chunk out of order fails the attempt as an invalid result', () =>
  check(async () => {
    const tenant = await stack.tenant(1);
    const { node, reading, jobId, attempt } = await rawStream('test/raw-order', tenant);
    node.send(chunkFrame(node, jobId, attempt, 1, 'skipped the first'));
    const error = await node.next('error');
    assert.equal(error.code, 'invalid_chunk');
    // Nothing reached the client, so the job may be retried: with its only node gone, it ends failed, uncharged.
    await node.close();
    await assert.rejects(reading, (e: unknown) => e instanceof OpenAI.APIError && e.code !== 'stream_interrupted');
    const outcome = await stack.db.query<{ outcome: string }>(`SELECT outcome FROM job_attempts WHERE job_id = $1 ORDER BY attempt LIMIT 1`, [jobId]);
    assert.deepEqual(outcome.rows, [{ outcome: 'invalid_result' }]);
    assert.equal((await jobRow(jobId)).charged_micro, 0);
  }));

test('a burst of chunks travels together: all reach the client in order with fewer appends than chunks, and one out of order mid-burst stops the stream at it', () =>
  check(async () => {
    const tenant = await stack.tenant(1);
    const { node, received, reading, jobId, attempt } = await rawStream('test/raw-burst', tenant);
    // Every append that adds chunks wakes the job's readers once: count the wake-ups.
    const sub = new Redis(stack.config.REDIS_URL);
    let wakeups = 0;
    sub.on('message', () => wakeups++);
    await sub.subscribe(new RedisKeys(stack.config.REDIS_KEY_PREFIX).jobStreamWakeups(jobId));
    try {
      const words = Array.from({ length: 30 }, (_, i) => `w${i} `);
      words.forEach((w, i) => node.send(chunkFrame(node, jobId, attempt, i, w)));
      await stack.until('the burst to reach the client', async () => (contentOf(received) === words.join('') ? true : undefined));
      // The first frame may go alone; the rest arrive while its append is in flight and go together.
      assert.ok(wakeups >= 1 && wakeups <= words.length / 2, `${wakeups} appends for ${words.length} chunks`);

      for (const [seq, delta] of [[30, 'a'], [32, 'c'], [33, 'd']] as const) node.send(chunkFrame(node, jobId, attempt, seq, delta));
      const error = await node.next('error');
      assert.equal(error.code, 'invalid_chunk');
      assert.match(String(error.message), /^chunk 32 refused: out_of_order$/);
      const look = new Redis(stack.config.REDIS_URL);
      const streamed = await look.xrange(new RedisKeys(stack.config.REDIS_KEY_PREFIX).jobStream(jobId, attempt), '-', '+').finally(() => look.quit());
      assert.equal(streamed.map(([, f]) => f[1]).join(''), `${words.join('')}a`, 'the chunks before the one out of order stay appended, none after it');
    } finally {
      await sub.quit();
      await node.close();
    }
    await assert.rejects(reading);
  }));

test('an attempt that fails before any token reached the client is retried on another node, and the client gets one clean answer', () =>
  check(async () => {
    const model = 'test/raw-retry';
    const tenant = await stack.tenant(1);
    const { node, received, reading, jobId, attempt } = await rawStream(model, tenant);
    // A second node for the model; the retry prefers the node the job has not failed on.
    await stack.node({ models: [model], latencyMs: 300, completionTokens: 8 });
    node.send(signMessage(node.privateKey, { type: 'job_error' as const, nodeId: node.nodeId, jobId, attempt, ts: Date.now(), message: 'runtime crashed' }));
    await reading;
    const content = contentOf(received);
    assert.match(content, /^simulated answer /);
    assert.equal(content, await storedContent(tenant, jobId));
    const row = await jobRow(jobId);
    assert.deepEqual([row.status, row.attempt, row.streamed_attempt], ['completed', 2, 2]);
    await node.close();
  }));

test('a client that hangs up mid-stream: the job still completes and is charged for what the node produced, the relay lets go, the node serves the next job', () =>
  check(async () => {
    const model = 'test/slow-1';
    await stack.model(model);
    const node = await stack.node({ models: [model], latencyMs: 3_000, completionTokens: 30, capacity: 1 });
    const tenant = await stack.tenant(1);
    const before = await stack.balance(tenant.namespaceId);
    const stream = await tenant.client.chat.completions.create({ model, messages, max_tokens: 50, stream: true });
    let jobId = '';
    let pieces = 0;
    for await (const chunk of stream) {
      jobId = chunk.id;
      if (chunk.choices[0]?.delta.content && ++pieces === 3) break; // leaving the loop aborts the request
    }
    assert.equal(pieces, 3);
    assert.equal((await jobRow(jobId)).status, 'running');

    const row = await stack.until('the job to end', async () => {
      const r = await jobRow(jobId);
      return r.status === 'running' || r.status === 'queued' ? undefined : r;
    });
    assert.equal(row.status, 'completed');
    assert.equal(row.completion_tokens, 30);
    const priced = (row.prompt_tokens ?? 0) * 10 + 30 * 20;
    assert.equal(row.charged_micro, priced);
    const afterBalance = await stack.balance(tenant.namespaceId);
    assert.deepEqual(afterBalance, { available: before.available - priced, held: 0 });

    // The relay unsubscribed from the job's wake-ups: nothing on the server still follows it.
    const redis = new Redis(stack.config.REDIS_URL);
    try {
      const channel = new RedisKeys(stack.config.REDIS_KEY_PREFIX).jobStreamWakeups(jobId);
      await stack.until('the relay to let go', async () => {
        const [, subscribers] = (await redis.pubsub('NUMSUB', channel)) as [string, number];
        return Number(subscribers) === 0 ? true : undefined;
      });
    } finally {
      redis.disconnect();
    }
    assert.equal((await stack.presence(node.nodeId)).reserved, '0');
    const next = await tenant.client.chat.completions.create({ model, messages: [{ role: 'user', content: 'again' }], max_tokens: 50 });
    assert.equal(next.usage?.completion_tokens, 30);
  }));

test('a stream Redis lost mid-answer: the attempt fails, not as the node\'s fault, and the job fails uncharged', () =>
  check(async () => {
    const tenant = await stack.tenant(1);
    const before = await stack.balance(tenant.namespaceId);
    const { node, received, reading, jobId, attempt } = await rawStream('test/raw-lost', tenant);
    node.send(chunkFrame(node, jobId, attempt, 0, 'Once upon'));
    await stack.until('the first chunk to reach the client', async () => (contentOf(received) === 'Once upon' ? true : undefined));
    const redis = new Redis(stack.config.REDIS_URL);
    try {
      assert.equal(await redis.del(new RedisKeys(stack.config.REDIS_KEY_PREFIX).jobStream(jobId, attempt)), 1);
      node.send(chunkFrame(node, jobId, attempt, 1, ' a time'));
      assert.equal((await node.next('error')).code, 'invalid_chunk');
      await assert.rejects(reading, (e: unknown) => e instanceof OpenAI.APIError && e.code === 'stream_interrupted');
      const outcome = await stack.db.query<{ outcome: string }>(`SELECT outcome FROM job_attempts WHERE job_id = $1`, [jobId]);
      assert.deepEqual(outcome.rows, [{ outcome: 'disconnected' }]);
      assert.equal(await redis.exists(new RedisKeys(stack.config.REDIS_KEY_PREFIX).failureStreak(node.nodeId)), 0, 'no failure counted against the node');
    } finally {
      redis.disconnect();
    }
    assert.deepEqual(await stack.balance(tenant.namespaceId), before);
    await node.close();
  }));
