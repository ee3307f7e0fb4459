// Tools, structured output and model fallbacks (issue 12, parts 2 and 3) through the official `openai`
// client against a running backbone with simulated nodes (runtime.simulated.ts says how it answers them).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';
import { SimulatedRuntime } from '../../src/node-agent/runtime.simulated.js';
import type { InferenceRuntime } from '../../src/node-agent/runtime.js';

const JSON_MODEL = 'test/json-sim';
const PLAIN_MODEL = 'test/plain-sim';

let stack: TestStack;
let alice: Tenant;

before(async () => {
  stack = await TestStack.start();
  await stack.model();
  await stack.model(JSON_MODEL);
  await stack.model(PLAIN_MODEL);
  await stack.node();
  alice = await stack.tenant(10);
});

after(async () => {
  await stack.close();
});

const check = (fn: () => Promise<void>) => stack.check(fn);

const weather = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    strict: true,
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', minLength: 2 }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] }, days: { type: 'integer', minimum: 1, maximum: 7 } },
      required: ['city', 'unit', 'days'],
      additionalProperties: false,
    },
  },
};

const recipe = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    servings: { type: 'integer', minimum: 1, maximum: 12 },
    ingredients: { type: 'array', items: { type: 'object', properties: { item: { type: 'string' }, grams: { type: 'number', minimum: 0 } }, required: ['item', 'grams'], additionalProperties: false }, minItems: 2 },
    vegan: { type: 'boolean' },
  },
  required: ['name', 'servings', 'ingredients', 'vegan'],
  additionalProperties: false,
};

test('tools: a required tool call comes back in OpenAI shape with schema-valid arguments, and the loop ends in text', () =>
  check(async () => {
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Paris?' }];
    const r = await alice.client.chat.completions.create({ model: TEST_MODEL, messages, tools: [weather], tool_choice: 'required', max_tokens: 200 });
    const choice = r.choices[0]!;
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, null);
    const call = choice.message.tool_calls?.[0];
    assert.ok(call && call.type === 'function');
    assert.equal(call.function.name, 'get_weather');
    const args = JSON.parse(call.function.arguments) as unknown;
    assert.ok(new Ajv2020().validate(weather.function.parameters, args), call.function.arguments);
    assert.ok((r.usage?.completion_tokens ?? 0) > 0);
    // The client answers the call; with tool_choice auto the model then answers in text.
    messages.push(choice.message, { role: 'tool', tool_call_id: call.id, content: '{"temp": 21}' });
    const next = await alice.client.chat.completions.create({ model: TEST_MODEL, messages, tools: [weather], max_tokens: 50 });
    assert.equal(next.choices[0]?.finish_reason, 'stop');
    assert.match(next.choices[0]?.message.content ?? '', /^simulated answer/);
  }));

test('tools streamed: the tool call arrives as a tool_calls delta the client assembles', () =>
  check(async () => {
    const stream = alice.client.chat.completions.stream({ model: TEST_MODEL, messages: [{ role: 'user', content: 'Weather in Oslo?' }], tools: [weather], tool_choice: { type: 'function', function: { name: 'get_weather' } }, max_tokens: 200 });
    const final = await stream.finalChatCompletion();
    const call = final.choices[0]?.message.tool_calls?.[0];
    assert.ok(call && call.type === 'function');
    assert.equal(call.function.name, 'get_weather');
    assert.equal(final.choices[0]?.finish_reason, 'tool_calls');
    assert.ok(new Ajv2020().validate(weather.function.parameters, JSON.parse(call.function.arguments)));
  }));

test('response_format json_schema (strict): the answer validates; json_object answers a JSON object', () =>
  check(async () => {
    const r = await alice.client.chat.completions.create({
      model: TEST_MODEL,
      messages: [{ role: 'user', content: 'A recipe, please' }],
      response_format: { type: 'json_schema', json_schema: { name: 'recipe', strict: true, schema: recipe } },
      max_tokens: 400,
    });
    const value = JSON.parse(r.choices[0]?.message.content ?? '') as unknown;
    assert.ok(new Ajv2020().validate(recipe, value), r.choices[0]?.message.content ?? '');
    const o = await alice.client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: 'user', content: 'JSON please' }], response_format: { type: 'json_object' }, max_tokens: 100 });
    const obj = JSON.parse(o.choices[0]?.message.content ?? '') as Record<string, unknown>;
    assert.equal(typeof obj.answer, 'string');
  }));

test('logprobs: one entry per token with top_logprobs alternatives', () =>
  check(async () => {
    const r = await alice.client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: 'user', content: 'hi' }], logprobs: true, top_logprobs: 2, max_tokens: 20 });
    const lp = r.choices[0]?.logprobs?.content ?? [];
    assert.ok(lp.length > 0);
    assert.equal(lp.map((t) => t.token).join(''), r.choices[0]?.message.content);
    assert.ok(lp.every((t) => t.logprob <= 0 && t.top_logprobs.length === 2));
  }));

test('inconsistent tool settings and uncompilable schemas are 400s', () =>
  check(async () => {
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ tool_choice: { type: 'function', function: { name: 'nope' } }, tools: [weather] }, 'tool_choice'],
      [{ tool_choice: 'required' }, 'tool_choice'],
      [{ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'no-such-type' } } } }, 'response_format'],
      [{ top_logprobs: 3 }, 'top_logprobs'],
    ];
    for (const [extra, param] of bad) {
      await assert.rejects(
        alice.client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: 'user', content: 'x' }], ...extra } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming),
        (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === param,
        param,
      );
    }
  }));

test('a json_schema answer that does not validate is an invalid result: retried on another node, charged once', () =>
  check(async () => {
    // The only nodes of JSON_MODEL: one that breaks its JSON answers, then (once it has failed) a good one.
    const sim = new SimulatedRuntime({ models: [JSON_MODEL] });
    let broken = 0;
    const liar: InferenceRuntime = {
      name: 'simulated-invalid-json',
      capabilities: sim.capabilities,
      models: () => sim.models(),
      complete: async (model, request, signal) => {
        const answer = await sim.complete(model, request, signal);
        broken++;
        return { ...answer, output: { ...answer.output, content: '{"name": 42}' } };
      },
    };
    await stack.runtimeNode(liar, 1);
    const before = await stack.balance(alice.namespaceId);
    const pending = alice.client.chat.completions.create({
      model: JSON_MODEL,
      messages: [{ role: 'user', content: 'A recipe, please' }],
      response_format: { type: 'json_schema', json_schema: { name: 'recipe', strict: true, schema: recipe } },
      max_tokens: 400,
    });
    await stack.until('the liar to answer', async () => (broken > 0 ? true : undefined));
    await stack.node({ models: [JSON_MODEL] });
    const r = await pending;
    assert.ok(new Ajv2020().validate(recipe, JSON.parse(r.choices[0]?.message.content ?? '')));
    const job = await stack.job(r.id);
    assert.ok(job && job.attempt >= 2, 'completed on a later attempt');
    const after = await stack.balance(alice.namespaceId);
    assert.equal(before.available - after.available, (r.usage?.prompt_tokens ?? 0) * 10 + (r.usage?.completion_tokens ?? 0) * 20);
    assert.equal(after.held, 0);
    await stack.assertLedgerBalanced();
  }));

test('capabilities: a tools job is refused when no node online declares tools; plain chat still runs there', () =>
  check(async () => {
    const sim = new SimulatedRuntime({ models: [PLAIN_MODEL] });
    // A runtime that declares nothing beyond chat.
    await stack.runtimeNode({ name: 'plain', models: () => sim.models(), complete: (m, r, s, d) => sim.complete(m, r, s, d) }, 2);
    const r = await alice.client.chat.completions.create({ model: PLAIN_MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 20 });
    assert.match(r.choices[0]?.message.content ?? '', /^simulated answer/);
    await assert.rejects(
      alice.client.chat.completions.create({ model: PLAIN_MODEL, messages: [{ role: 'user', content: 'hi' }], tools: [weather], max_tokens: 20 }),
      (e: unknown) => e instanceof OpenAI.APIError && e.status === 503 && /tools/.test(e.message),
    );
    await assert.rejects(alice.client.embeddings.create({ model: PLAIN_MODEL, input: 'x' }), (e: unknown) => e instanceof OpenAI.APIError && e.status === 503);
  }));

test('fallback models: the first servable one runs the job and the response names it', () =>
  check(async () => {
    const body = { model: 'no/such-model', models: ['test/offline-model', TEST_MODEL], messages: [{ role: 'user', content: 'hi' }], max_tokens: 20 };
    await stack.model('test/offline-model');
    const r = await alice.client.chat.completions.create(body as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming);
    assert.equal(r.model, TEST_MODEL);
    const e = await alice.client.embeddings.create({ model: 'test/offline-model', models: [TEST_MODEL], input: 'x' } as OpenAI.EmbeddingCreateParams);
    assert.equal(e.model, TEST_MODEL);
    // None servable: the first model's reason.
    await assert.rejects(
      alice.client.chat.completions.create({ ...body, models: ['test/offline-model'] } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming),
      (err: unknown) => err instanceof OpenAI.NotFoundError && err.code === 'model_not_found',
    );
  }));

test('model aliases: a request may name a model by its alias; the response names the model; an alias never shadows a model', () =>
  check(async () => {
    await stack.backbone.admin.models.setModelAliases(TEST_MODEL, ['sim-latest', 'gpt-4o-mini']);
    const r = await alice.client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20 });
    assert.equal(r.model, TEST_MODEL);
    const e = await alice.client.embeddings.create({ model: 'sim-latest', input: 'x' });
    assert.equal(e.model, TEST_MODEL);
    await assert.rejects(stack.backbone.admin.models.setModelAliases(JSON_MODEL, ['sim-latest']), /alias/);
    await assert.rejects(stack.backbone.admin.models.setModelAliases(JSON_MODEL, [PLAIN_MODEL]), /alias/);
    // Removed, the alias names nothing again, on every instance (the catalogue's copy is dropped).
    await stack.backbone.admin.models.setModelAliases(TEST_MODEL, ['sim-latest']);
    await stack.until('the removed alias to be forgotten', async () => {
      try {
        await alice.client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20 });
        return undefined;
      } catch (err) {
        return err instanceof OpenAI.NotFoundError ? true : undefined;
      }
    });
  }));
