// Embeddings and legacy completions (issue 12, part 1) through the official `openai` client, as its users
// call them, against a running backbone with simulated nodes: priced, held, dispatched, signed, settled.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';
import { SIMULATED_EMBEDDING_DIMENSIONS, simulatedEmbedding, simulatedPromptTokens } from '../../src/node-agent/runtime.simulated.js';

let stack: TestStack;
let alice: Tenant;

before(async () => {
  stack = await TestStack.start();
  await stack.model();
  await stack.node();
  alice = await stack.tenant(10);
});

after(async () => {
  await stack.close();
});

const check = (fn: () => Promise<void>) => stack.check(fn);

test('embeddings through the openai client (its default base64 encoding): one vector per input, billed per input token only', () =>
  check(async () => {
    const before = await stack.balance(alice.namespaceId);
    const inputs = ['the quick brown fox', 'jumps over the lazy dog'];
    const r = await alice.client.embeddings.create({ model: TEST_MODEL, input: inputs });
    assert.equal(r.object, 'list');
    assert.equal(r.model, TEST_MODEL);
    assert.equal(r.data.length, 2);
    // The client asked for base64 and decoded it: float32 of the simulated vectors.
    for (const [i, d] of r.data.entries()) {
      assert.equal(d.index, i);
      assert.equal(d.embedding.length, SIMULATED_EMBEDDING_DIMENSIONS);
      const expected = simulatedEmbedding(TEST_MODEL, inputs[i]!, SIMULATED_EMBEDDING_DIMENSIONS);
      d.embedding.forEach((x, j) => assert.ok(Math.abs(x - expected[j]!) < 1e-6, `component ${j}`));
    }
    const prompt = simulatedPromptTokens(inputs.map((content) => ({ role: 'user' as const, content })));
    assert.deepEqual(r.usage, { prompt_tokens: prompt, total_tokens: prompt });
    const after = await stack.balance(alice.namespaceId);
    assert.equal(before.available - after.available, prompt * 10, 'input tokens at the input price, nothing else');
    assert.equal(after.held, 0);
    await stack.assertLedgerBalanced();
  }));

test('embeddings: encoding_format float, dimensions, and the same text gives the same vector', () =>
  check(async () => {
    const a = await alice.client.embeddings.create({ model: TEST_MODEL, input: 'hello', encoding_format: 'float', dimensions: 8 });
    const b = await alice.client.embeddings.create({ model: TEST_MODEL, input: ['hello'], encoding_format: 'float', dimensions: 8 });
    assert.equal(a.data[0]!.embedding.length, 8);
    assert.deepEqual(a.data[0]!.embedding, b.data[0]!.embedding);
    assert.deepEqual(a.data[0]!.embedding, simulatedEmbedding(TEST_MODEL, 'hello', 8));
    // The raw wire: base64 of little-endian float32.
    const res = await fetch(`${stack.url}/v1/embeddings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: TEST_MODEL, input: 'hello', encoding_format: 'base64', dimensions: 8 }),
    });
    assert.equal(res.status, 200);
    const raw = (await res.json()) as { data: Array<{ embedding: string }> };
    const bytes = Buffer.from(raw.data[0]!.embedding, 'base64');
    assert.equal(bytes.length, 32);
    for (let j = 0; j < 8; j++) assert.ok(Math.abs(bytes.readFloatLE(j * 4) - a.data[0]!.embedding[j]!) < 1e-6);
  }));

test('embeddings: token-id inputs and empty inputs are refused with 400 in OpenAI shape', () =>
  check(async () => {
    for (const input of [[1, 2, 3], '', []]) {
      const res = await fetch(`${stack.url}/v1/embeddings`, {
        method: 'POST',
        headers: { authorization: `Bearer ${alice.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: TEST_MODEL, input }),
      });
      assert.equal(res.status, 400, JSON.stringify(input));
      const body = (await res.json()) as { error: { type: string } };
      assert.equal(body.error.type, 'invalid_request_error');
    }
  }));

test('completions through the openai client: text_completion shape and the exact charge', () =>
  check(async () => {
    const before = await stack.balance(alice.namespaceId);
    const r = await alice.client.completions.create({ model: TEST_MODEL, prompt: 'Once upon a time', max_tokens: 40 });
    assert.equal(r.object, 'text_completion');
    assert.equal(r.model, TEST_MODEL);
    assert.match(r.choices[0]?.text ?? '', /^simulated answer/);
    assert.equal(r.choices[0]?.finish_reason, 'stop');
    assert.ok(r.usage && r.usage.completion_tokens === 16);
    const after = await stack.balance(alice.namespaceId);
    assert.equal(before.available - after.available, r.usage.prompt_tokens * 10 + r.usage.completion_tokens * 20);
    // The default max_tokens is OpenAI's 16; fewer caps the answer.
    const short = await alice.client.completions.create({ model: TEST_MODEL, prompt: 'Once upon a time', max_tokens: 3 });
    assert.equal(short.choices[0]?.finish_reason, 'length');
    assert.equal(short.usage?.completion_tokens, 3);
  }));

test('completions streamed through the openai client: text pieces add up to the unstreamed answer', () =>
  check(async () => {
    const ask = { model: TEST_MODEL, prompt: 'Stream me a story', max_tokens: 40 };
    const whole = await alice.client.completions.create(ask);
    const stream = await alice.client.completions.create({ ...ask, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let finish: string | null = null;
    let usage: unknown = null;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'text_completion');
      const choice = chunk.choices[0];
      if (choice) {
        text += choice.text;
        finish = choice.finish_reason ?? finish;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, whole.choices[0]?.text);
    assert.equal(finish, 'stop');
    assert.deepEqual(usage, whole.usage);
  }));

test('an embeddings job polled asynchronously reads back as an embeddings list', () =>
  check(async () => {
    const res = await fetch(`${stack.url}/v1/embeddings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.apiKey}`, 'content-type': 'application/json', prefer: 'respond-async' },
      body: JSON.stringify({ model: TEST_MODEL, input: ['a', 'b', 'c'], dimensions: 4 }),
    });
    assert.equal(res.status, 202);
    const { id } = (await res.json()) as { id: string };
    const done = await stack.until('the job to complete', async () => {
      const r = await fetch(`${stack.url}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${alice.apiKey}` } });
      const body = (await r.json()) as { status: string; kind: string; result: { object: string; data: Array<{ embedding: number[] }> } | null };
      return body.status === 'completed' ? body : undefined;
    });
    assert.equal(done.kind, 'embedding');
    assert.equal(done.result?.object, 'list');
    assert.equal(done.result?.data.length, 3);
    assert.equal(done.result?.data[2]?.embedding.length, 4);
  }));
