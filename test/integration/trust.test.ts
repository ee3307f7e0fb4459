// Issue 9, billing and routing trust: nothing a node or a client declares is billed, routed on or
// penalised without a bound the backbone checks itself.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Redis } from 'ioredis';
import { TestStack, type RawNode, type Tenant } from '../helpers/stack.js';
import { signMessage } from '../../src/domain/signatures.js';
import { outputHash, type JobOutput } from '../../src/domain/protocol.js';
import { startNodeAgent } from '../../src/node-agent/agent.js';
import { SimulatedRuntime } from '../../src/node-agent/runtime.simulated.js';
import type { InferenceRuntime } from '../../src/node-agent/runtime.js';
import { tokenCounter } from '../../src/catalog/usage-rules.js';
import { balanceOf } from '../../src/postgres/ledger.repository.js';
import { RedisKeys } from '../../src/redis/client.js';

let stack: TestStack;
let tenant: Tenant;

before(async () => {
  // The production default: new nodes start with two slots (the helper's default lifts it for other files).
  stack = await TestStack.start({ config: { NODE_START_SLOTS: 2 } });
  tenant = await stack.tenant(100);
});

after(async () => {
  await stack.close();
});

const check = (fn: () => Promise<void>) => stack.check(fn);
const messages = [{ role: 'user' as const, content: 'Say something.' }];

/** A chat completion over HTTP with the given extra headers; the response as it came. */
function chat(body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${stack.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ messages, max_tokens: 50, ...body }),
  });
}

/** One job run to the end (the model's first), so that a scheduler consumes its queue before a test's short deadlines. */
async function warmUp(model: string): Promise<void> {
  const res = await chat({ model });
  if (res.status !== 200) assert.fail(`warm-up: ${res.status} ${await res.text()}`);
}

async function jobsOf(model: string): Promise<Array<{ id: string; status: string; charged_micro: number | null; completion_tokens: number | null }>> {
  const r = await stack.db.query<{ id: string; status: string; charged_micro: number | null; completion_tokens: number | null }>(
    `SELECT id, status, charged_micro, completion_tokens FROM jobs WHERE model = $1 ORDER BY created_at`,
    [model],
  );
  return r.rows;
}

test('an attempt cut by the client\'s deadline is the client\'s outcome: the job expires, the slow honest node is not blamed nor cooled down (item 4)', () =>
  check(async () => {
    const model = 'test/trust-deadline';
    await stack.model(model);
    // Slower than the clients will wait, and as many failures as the cooldown rule needs.
    const node = await stack.node({ models: [model], latencyMs: 4_000, capacity: stack.config.NODE_COOLDOWN_FAILURES });
    await warmUp(model);
    const answers = await Promise.all(
      Array.from({ length: stack.config.NODE_COOLDOWN_FAILURES }, () => chat({ model }, { 'x-resultity-deadline-ms': '1000' })),
    );
    for (const a of answers) if (a.status !== 504) assert.fail(`${a.status} ${await a.text()}`);
    const jobs = await stack.until('the jobs to end', async () => {
      const rows = (await jobsOf(model)).slice(1);
      return rows.every((j) => j.status !== 'queued' && j.status !== 'running') ? rows : undefined;
    });
    assert.deepEqual(jobs.map((j) => j.status), jobs.map(() => 'expired'));
    const blamed = await stack.db.query(
      `SELECT outcome FROM job_attempts WHERE job_id = ANY($1::uuid[]) AND outcome IN ('failed', 'timeout', 'invalid_result')`,
      [jobs.map((j) => j.id)],
    );
    assert.deepEqual(blamed.rows, [], 'no attempt cut by the deadline may count against the node');
    const flags = await stack.db.query<{ cooldown_until: Date | null }>(`SELECT cooldown_until FROM node_flags WHERE node_id = $1`, [node.nodeId]);
    assert.ok(!flags.rows[0]?.cooldown_until || flags.rows[0].cooldown_until.getTime() < Date.now(), 'the node must not be in cooldown');
    // And it still gets work: a client that waits long enough is served by it.
    const served = await chat({ model });
    if (served.status !== 200) assert.fail(`served: ${served.status} ${await served.text()}`);
  }));

/** A job submitted with Prefer: respond-async; its id. */
async function submitAsync(model: string, maxTokens = 500): Promise<string> {
  const res = await chat({ model, max_tokens: maxTokens }, { prefer: 'respond-async' });
  if (res.status !== 202) assert.fail(`submit: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/** A raw node's correctly signed and hashed result. */
function sendResult(node: RawNode, jobId: string, attempt: number, content: string, completionTokens: number): void {
  const output: JobOutput = { content, finish_reason: 'stop' };
  node.send(signMessage(node.privateKey, { type: 'result' as const, nodeId: node.nodeId, jobId, attempt, ts: Date.now(), output, outputHash: outputHash(output), usage: { prompt_tokens: 5, completion_tokens: completionTokens } }));
}

async function endedJob(jobId: string) {
  return stack.until('the job to end', async () => {
    const r = await stack.db.query<{ status: string; node_id: string | null; completion_tokens: number | null; charged_micro: number | null }>(
      `SELECT status, node_id, completion_tokens, charged_micro FROM jobs WHERE id = $1`,
      [jobId],
    );
    const j = r.rows[0];
    return j && j.status !== 'queued' && j.status !== 'running' ? j : undefined;
  });
}

/**
 * A tokenizer.json made for the test: a BPE over lower-case letters that knows a few whole words, split on
 * whitespace and punctuation ("node token" is 2 tokens, 10 bytes).
 */
function smallTokenizer(): string {
  const vocab: Record<string, number> = { '[UNK]': 0 };
  for (const c of 'abcdefghijklmnopqrstuvwxyz') vocab[c] = Object.keys(vocab).length;
  const merges: string[] = [];
  for (const w of ['node', 'token', 'credit', 'ledger']) {
    let cur = w[0]!;
    for (const c of w.slice(1)) {
      merges.push(`${cur} ${c}`);
      cur += c;
      vocab[cur] ??= Object.keys(vocab).length;
    }
  }
  return JSON.stringify({
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: null,
    decoder: null,
    model: { type: 'BPE', dropout: null, unk_token: '[UNK]', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: false, vocab, merges },
  });
}

async function admin(method: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${stack.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${stack.config.ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, unknown>;
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

test('claimed tokens are bounded by the bytes delivered (per-model ratio) when no tokenizer is known: "x" billed as 400 tokens is an invalid result, retried elsewhere (item 1)', () =>
  check(async () => {
    const model = 'test/trust-bytes';
    await stack.model(model);
    const liar = await stack.rawNode();
    await liar.registerAs(await stack.operator(), { models: [model], capacity: 1 });
    await warmUpWith(model, liar);
    const jobId = await submitAsync(model, 500);
    const frame = await liar.next((f) => f.type === 'job' && f.jobId === jobId, 15_000);
    const honest = await stack.node({ models: [model] });
    sendResult(liar, jobId, frame.attempt as number, 'x', 400); // within max_tokens (500), but 1 byte cannot hold 400 tokens
    assert.deepEqual(await liar.next('result_ack'), { type: 'result_ack', jobId, attempt: frame.attempt, accepted: false, reason: 'usage_out_of_bounds' });
    const done = await endedJob(jobId);
    assert.equal(done.status, 'completed');
    assert.equal(done.node_id, honest.nodeId);
    assert.ok(done.completion_tokens! <= 16, `billed the honest node's count, not the claim: ${done.completion_tokens}`);
    const counted = await stack.db.query(`SELECT 1 FROM job_attempts WHERE job_id = $1 AND node_id = $2 AND outcome = 'invalid_result'`, [jobId, liar.nodeId]);
    assert.equal(counted.rowCount, 1, 'the claim counts against the node that made it');
    await liar.close();
  }));

test('with the model\'s tokenizer registered (by content hash), the backbone counts the output: a claim within the byte bound but above the count is refused (item 1)', () =>
  check(async () => {
    const model = 'test/trust-tokenizer';
    await stack.model(model);
    const tokenizer = smallTokenizer();
    const { sha256 } = await admin('POST', '/admin/tokenizers', { tokenizer });
    await admin('PUT', `/admin/models/${encodeURIComponent(model)}/usage-bound`, { tokenizer_sha256: sha256 });
    const liar = await stack.rawNode();
    await liar.registerAs(await stack.operator(), { models: [model], capacity: 1 });
    await warmUpWith(model, liar);

    // "node token": 2 tokens by the model's tokenizer (10 bytes): 12 is within the bytes, not the count.
    const jobId = await submitAsync(model, 50);
    const frame = await liar.next((f) => f.type === 'job' && f.jobId === jobId, 15_000);
    sendResult(liar, jobId, frame.attempt as number, 'node token', 12);
    assert.equal((await liar.next('result_ack')).reason, 'usage_out_of_bounds');

    // The same answer claimed honestly (its tokens and an end-of-sequence token) is accepted and billed as claimed.
    const retried = await liar.next((f) => f.type === 'job' && f.jobId === jobId, 15_000);
    sendResult(liar, jobId, retried.attempt as number, 'node token', 3);
    assert.equal((await liar.next('result_ack')).accepted, true);
    const done = await endedJob(jobId);
    assert.equal(done.completion_tokens, 3);
    await liar.close();
  }));

/** Runs the model's first job on `raw` (so that a scheduler consumes the model's queue), honestly. */
async function warmUpWith(model: string, raw: RawNode): Promise<void> {
  const jobId = await submitAsync(model, 50);
  const frame = await raw.next((f) => f.type === 'job' && f.jobId === jobId, 15_000);
  sendResult(raw, jobId, frame.attempt as number, 'ok', 1);
  assert.equal((await raw.next('result_ack')).accepted, true);
}

test('a node whose claimed tokens per byte drift from its peers\' on the same model loses score (item 1)', () =>
  check(async () => {
    const model = 'test/trust-drift';
    await stack.model(model);
    const honest = await Promise.all([0, 1, 2].map(() => stack.node({ models: [model], capacity: 4, completionTokens: 40 })));
    // Claims three times what it delivers: within the byte bound (about 7 bytes a word), not in line with its peers.
    const inflating: InferenceRuntime = new SimulatedRuntime({ models: [model], completionTokens: 40 });
    const inflated: InferenceRuntime = {
      name: 'inflating',
      models: () => inflating.models(),
      complete: async (m, request, signal, onDelta) => {
        const r = await inflating.complete(m, request, signal, onDelta);
        return { ...r, usage: { ...r.usage, completion_tokens: r.usage.completion_tokens * 3 } };
      },
    };
    const liar = await startNodeAgent({
      gatewayUrl: stack.url,
      privateKey: await stack.enrolled(),
      operator: await stack.operator(),
      runtime: inflated,
      capacity: 4,
      logger: pino({ level: 'silent' }),
      reconnect: false,
    });
    stack.nodes.push(liar);
    await warmUp(model);
    // Enough jobs for every node to deliver its share of bytes (each answer is about 300 bytes).
    const everyone = [...honest, liar].map((n) => n.nodeId);
    for (let round = 0; round < 20; round++) {
      await Promise.all(Array.from({ length: 8 }, (_, i) => chat({ model, max_tokens: 200, messages: [{ role: 'user', content: `question ${round}-${i}` }] })));
      const r = await stack.db.query<{ node_id: string; bytes: number }>(
        `SELECT node_id, count(*)::int AS bytes FROM jobs WHERE model = $1 AND status = 'completed' GROUP BY node_id`,
        [model],
      );
      if (everyone.every((id) => (r.rows.find((x) => x.node_id === id)?.bytes ?? 0) >= 6)) break;
    }
    assert.ok(await stack.backbone.quality.pass());
    const scores = await stack.db.query<{ node_id: string; score: number; usage_factor: number }>(
      `SELECT node_id, score, usage_factor FROM node_scores WHERE node_id = ANY($1::text[])`,
      [everyone],
    );
    const of = (id: string) => scores.rows.find((s) => s.node_id === id)!;
    assert.ok(of(liar.nodeId).usage_factor < 0.5, `the inflating node's usage factor: ${of(liar.nodeId).usage_factor}`);
    for (const h of honest) {
      assert.equal(of(h.nodeId).usage_factor, 1);
      assert.ok(of(h.nodeId).score > of(liar.nodeId).score, 'an honest peer scores above the inflating node');
    }
  }));

test('a streaming client whose deadline cuts the answer pays for the tokens it received, counted by the backbone; the node is paid its share (item 3)', () =>
  check(async () => {
    const model = 'test/trust-stream-deadline';
    await stack.model(model);
    const tokenizer = smallTokenizer();
    const { sha256 } = await admin('POST', '/admin/tokenizers', { tokenizer });
    await admin('PUT', `/admin/models/${encodeURIComponent(model)}/usage-bound`, { tokenizer_sha256: sha256 });
    // 40 words over 4 s: about ten reach the client before its 1 s deadline.
    const node = await stack.node({ models: [model], latencyMs: 4_000, completionTokens: 40 });
    await warmUp(model);
    const earnedBefore = await operatorEarnings();

    const res = await chat({ model, stream: true, max_tokens: 100 }, { 'x-resultity-deadline-ms': '1000' });
    assert.equal(res.status, 200);
    let received = '';
    let error: { code?: string } | null = null;
    for (const line of (await res.text()).split('\n')) {
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
      const event = JSON.parse(line.slice(6)) as { choices?: Array<{ delta?: { content?: string } }>; error?: { code?: string } };
      if (event.error) error = event.error;
      received += event.choices?.[0]?.delta?.content ?? '';
    }
    assert.ok(error, 'the stream ends with an error event');
    assert.ok(received.length > 0, 'part of the answer reached the client');

    const jobs = await jobsOf(model);
    const job = jobs[jobs.length - 1]!;
    const ended = await endedJob(job.id);
    assert.equal(ended.status, 'expired');
    const tokens = tokenCounter({ tokenizer, config: {} }).count(received);
    assert.equal(ended.completion_tokens, tokens, 'billed the tokens the client received, as the backbone counts them');
    assert.equal(ended.charged_micro, tokens * 20, 'at the model\'s output price');
    assert.equal(ended.node_id, node.nodeId);
    assert.ok((await operatorEarnings()) > earnedBefore, "the node's operator is paid its share");
  }));

async function operatorEarnings(): Promise<number> {
  return balanceOf(stack.db, 'operator_earnings', await stack.operator());
}

/** A node's free-slot score in the public mainnet readiness pool of a model at version 1 (readiness.lua.ts). */
async function poolScore(model: string, nodeId: string): Promise<number | null> {
  const redis = new Redis(stack.config.REDIS_URL);
  try {
    const score = await redis.zscore(`${new RedisKeys(stack.config.REDIS_KEY_PREFIX).live}ready:mainnet:${model}@1`, nodeId);
    return score === null ? null : Number(score);
  } finally {
    redis.disconnect();
  }
}

test('declared capacity is a ceiling, not a weight: a new node declaring 1024 slots starts with two and earns share by completed work (item 2)', () =>
  check(async () => {
    const model = 'test/trust-slow-start';
    await stack.model(model);
    const steady = await stack.node({ models: [model], capacity: 4, latencyMs: 400 });
    await warmUp(model);
    const greedy = await stack.node({ models: [model], capacity: 1024, latencyMs: 400 });
    assert.equal(await poolScore(model, greedy.nodeId), 2, 'a new node is offered its start slots, not what it declares');

    const before = (await jobsOf(model)).length;
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => chat({ model, messages: [{ role: 'user', content: `job ${i}` }] })));
    for (const a of answers) if (a.status !== 200) assert.fail(`${a.status} ${await a.text()}`);
    const served = await stack.db.query<{ node_id: string; n: number }>(
      `SELECT node_id, count(*)::int AS n FROM jobs WHERE id = ANY($1::uuid[]) GROUP BY node_id`,
      [(await jobsOf(model)).slice(before).map((j) => j.id)],
    );
    const by = (id: string) => served.rows.find((r) => r.node_id === id)?.n ?? 0;
    assert.ok(by(greedy.nodeId) <= 15, `the new node took ${by(greedy.nodeId)} of 20 jobs`);
    assert.ok(by(steady.nodeId) >= 5, `the established node took ${by(steady.nodeId)} of 20 jobs`);
    // It earned slots by the work it completed.
    assert.ok((await poolScore(model, greedy.nodeId))! > 2);
  }));

test('the network config caps capacity per GPU class and model, whatever a node declares (item 2)', () =>
  check(async () => {
    const model = 'test/trust-capped';
    await stack.model(model);
    const res = await fetch(`${stack.url}/admin/network-config`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.config.ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ capacity: { startSlots: 2, caps: [{ gpu: 'rtx-4090', model, maxSlots: 1 }] } }),
    });
    if (res.status !== 201 && res.status !== 200) assert.fail(`publish: ${res.status} ${await res.text()}`);
    await stack.until('the config in force', async () => (stack.backbone.networkConfig.capacity().caps.length === 1 ? true : undefined));
    const capped = await stack.node({ models: [model], capacity: 8, latencyMs: 300, gpu: { name: 'rtx-4090', memoryMb: 24_576 } });
    assert.equal(await poolScore(model, capped.nodeId), 1);
    await warmUp(model);

    // Three jobs at once: one at a time on that node, however many it has completed.
    let most = 0;
    const sampling = (async () => {
      for (let i = 0; i < 40; i++) {
        most = Math.max(most, Number((await stack.presence(capped.nodeId)).reserved ?? 0));
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    const answers = await Promise.all(Array.from({ length: 3 }, (_, i) => chat({ model, messages: [{ role: 'user', content: `capped ${i}` }] })));
    await sampling;
    for (const a of answers) if (a.status !== 200) assert.fail(`${a.status} ${await a.text()}`);
    assert.equal(most, 1, 'never more than the cap at once');
    assert.equal(await poolScore(model, capped.nodeId), 1, 'completed work does not lift a cap');
  }));
