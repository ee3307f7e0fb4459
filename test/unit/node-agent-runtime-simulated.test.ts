import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JobRequest } from '../../src/domain/protocol.js';
import { SimulatedRuntime, simulatedPromptTokens } from '../../src/node-agent/runtime.simulated.js';
import { promptTokenUpperBound } from '../../src/domain/pricing.js';

const never = new AbortController().signal;
const request: JobRequest = { messages: [{ role: 'user', content: 'What is a ledger?' }], max_tokens: 64 };

void test('simulated runtime: the same request always yields the same answer', async () => {
  const a = new SimulatedRuntime({ models: ['sim-1'] });
  const b = new SimulatedRuntime({ models: ['sim-1'] });
  const first = await a.complete('sim-1', request, never);
  assert.deepEqual(await a.complete('sim-1', request, never), first);
  assert.deepEqual(await b.complete('sim-1', structuredClone(request), never), first);
  assert.match(first.output.content, /^simulated answer [0-9a-f]{8}: \w+( \w+){15}$/);
  assert.equal(first.output.finish_reason, 'stop');
  assert.equal(first.usage.completion_tokens, 16);

  const other = await a.complete('sim-1', { ...request, messages: [{ role: 'user', content: 'What is an epoch?' }] }, never);
  assert.notEqual(other.output.content, first.output.content);
  const seeded = await a.complete('sim-1', { ...request, seed: 7 }, never);
  assert.notEqual(seeded.output.content, first.output.content);
});

void test('simulated runtime: max_tokens caps the answer and reports length', async () => {
  const rt = new SimulatedRuntime({ models: ['sim-1'], completionTokens: 10 });
  const capped = await rt.complete('sim-1', { ...request, max_tokens: 3 }, never);
  assert.equal(capped.usage.completion_tokens, 3);
  assert.equal(capped.output.finish_reason, 'length');
  const exact = await rt.complete('sim-1', { ...request, max_tokens: 10 }, never);
  assert.equal(exact.usage.completion_tokens, 10);
  assert.equal(exact.output.finish_reason, 'stop');
  const none = await new SimulatedRuntime({ models: ['sim-1'], completionTokens: 0 }).complete('sim-1', request, never);
  assert.equal(none.usage.completion_tokens, 0);
});

void test('simulated runtime: prompt tokens never exceed the server hold bound (promptTokenUpperBound)', async () => {
  const rt = new SimulatedRuntime({ models: ['sim-1'] });
  const alphabet = ['a', ' ', 'é', '€', '😀', '\n', '漢', 'z'];
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  for (let round = 0; round < 300; round++) {
    const messages = Array.from({ length: 1 + (next() % 4) }, () => ({
      role: 'user' as const,
      content: Array.from({ length: next() % 40 }, () => alphabet[next() % alphabet.length]).join(''),
    }));
    const bound = promptTokenUpperBound(messages);
    const { usage } = await rt.complete('sim-1', { messages, max_tokens: 4 }, never);
    assert.ok(usage.prompt_tokens <= bound, `${usage.prompt_tokens} > ${bound}`);
    assert.equal(usage.prompt_tokens, simulatedPromptTokens(messages));
  }
  assert.equal(simulatedPromptTokens([{ role: 'user', content: '' }]), 4);
  assert.equal(simulatedPromptTokens([{ role: 'user', content: 'abcde' }, { role: 'system', content: '€' }]), 2 + 4 + 1 + 4);
});

void test('simulated runtime: latency honours the abort signal', async () => {
  const rt = new SimulatedRuntime({ models: ['sim-1'], latencyMs: 10_000 });
  const controller = new AbortController();
  const started = Date.now();
  setTimeout(() => controller.abort(new Error('deadline exceeded')), 20);
  await assert.rejects(rt.complete('sim-1', request, controller.signal), /deadline exceeded/);
  assert.ok(Date.now() - started < 2_000);
  // Already aborted: rejects without waiting.
  await assert.rejects(rt.complete('sim-1', request, AbortSignal.abort()), { name: 'AbortError' });
});

void test('simulated runtime: refuses models it does not serve and bad options', async () => {
  const rt = new SimulatedRuntime({ models: ['sim-1', 'sim-2'] });
  assert.deepEqual(await rt.models(), ['sim-1', 'sim-2']);
  await assert.rejects(rt.complete('gpt-x', request, never), /not served/);
  assert.throws(() => new SimulatedRuntime({ models: [] }), /at least one model/);
  assert.throws(() => new SimulatedRuntime({ models: ['m'], latencyMs: -1 }), /latencyMs/);
});
