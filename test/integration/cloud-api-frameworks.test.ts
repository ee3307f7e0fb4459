// The Cloud API driven by two client libraries nobody here wrote, as their users drive them (issue 12):
// the Vercel AI SDK (`ai` with `@ai-sdk/openai-compatible`) and LangChain JS (`@langchain/openai`), against
// a running backbone with simulated nodes (runtime.simulated.ts says how it answers tools and schemas).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { embedMany, generateObject, generateText, jsonSchema, streamText, tool } from 'ai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { ChatOpenAI, OpenAIEmbeddings } from '@langchain/openai';
import { z } from 'zod';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';
import { SIMULATED_EMBEDDING_DIMENSIONS } from '../../src/node-agent/runtime.simulated.js';

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

const vercel = () => createOpenAICompatible({ name: 'resultity', baseURL: `${stack.url}/v1`, apiKey: alice.apiKey, supportsStructuredOutputs: true, includeUsage: true });
const langchain = (extra: Record<string, unknown> = {}) =>
  new ChatOpenAI({ model: TEST_MODEL, apiKey: alice.apiKey, configuration: { baseURL: `${stack.url}/v1` }, maxRetries: 0, maxTokens: 200, ...extra });

const cityParameters = {
  type: 'object' as const,
  properties: { city: { type: 'string' as const }, days: { type: 'integer' as const, minimum: 1, maximum: 7 } },
  required: ['city', 'days'],
  additionalProperties: false,
};

test('Vercel AI SDK: generateText and streamText', () =>
  check(async () => {
    const model = vercel().chatModel(TEST_MODEL);
    const r = await generateText({ model, prompt: 'Say hello', maxOutputTokens: 40 });
    assert.match(r.text, /^simulated answer/);
    assert.equal(r.usage.outputTokens, 16);
    const s = streamText({ model, prompt: 'Say hello', maxOutputTokens: 40 });
    let text = '';
    for await (const piece of s.textStream) text += piece;
    assert.equal(text, r.text);
  }));

test('Vercel AI SDK: a tool call executed by the SDK, then the final text', () =>
  check(async () => {
    const calls: unknown[] = [];
    const r = await generateText({
      model: vercel().chatModel(TEST_MODEL),
      prompt: 'Weather in Rome?',
      maxOutputTokens: 200,
      tools: {
        weather: tool({
          description: 'The weather in a city',
          inputSchema: jsonSchema<{ city: string; days: number }>(cityParameters),
          execute: async (input) => {
            calls.push(input);
            return { temperature: 20 };
          },
        }),
      },
      stopWhen: ({ steps }) => steps.length >= 2,
    });
    assert.equal(calls.length, 1);
    const input = calls[0] as { city: string; days: number };
    assert.equal(typeof input.city, 'string');
    assert.ok(input.days >= 1 && input.days <= 7);
    assert.equal(r.steps[0]?.toolCalls[0]?.toolName, 'weather');
    assert.match(r.text, /^simulated answer/);
  }));

test('Vercel AI SDK: generateObject with a zod schema, and embedMany', () =>
  check(async () => {
    const { object } = await generateObject({
      model: vercel().chatModel(TEST_MODEL),
      schema: z.object({ title: z.string(), year: z.number().int().min(1900).max(2100), tags: z.array(z.string()).min(1) }),
      prompt: 'A film, please',
      maxOutputTokens: 300,
    });
    assert.equal(typeof object.title, 'string');
    assert.ok(object.year >= 1900 && object.year <= 2100);
    assert.ok(object.tags.length >= 1);
    const { embeddings, usage } = await embedMany({ model: vercel().embeddingModel(TEST_MODEL), values: ['one', 'two', 'three'] });
    assert.equal(embeddings.length, 3);
    assert.ok(embeddings.every((e) => e.length === SIMULATED_EMBEDDING_DIMENSIONS));
    assert.ok(usage.tokens > 0);
  }));

test('LangChain: ChatOpenAI invoke and stream', () =>
  check(async () => {
    const chat = langchain();
    const r = await chat.invoke('Say hello');
    assert.match(r.text, /^simulated answer/);
    let text = '';
    for await (const chunk of await chat.stream('Say hello')) text += chunk.text;
    assert.equal(text, r.text);
  }));

test('LangChain: bindTools gives tool calls; withStructuredOutput gives a schema-valid object', () =>
  check(async () => {
    const withTools = langchain().bindTools([{ type: 'function', function: { name: 'weather', description: 'The weather in a city', parameters: cityParameters } }]);
    const r = await withTools.invoke('Weather in Lisbon?');
    assert.equal(r.tool_calls?.[0]?.name, 'weather');
    const args = r.tool_calls?.[0]?.args as { city: string; days: number };
    assert.equal(typeof args.city, 'string');
    assert.ok(args.days >= 1 && args.days <= 7);
    // Streamed, the tool call arrives as chunks LangChain assembles.
    let gathered: Awaited<ReturnType<typeof withTools.invoke>> | undefined;
    for await (const chunk of await withTools.stream('Weather in Lisbon?')) gathered = gathered ? gathered.concat(chunk) : chunk;
    assert.equal(gathered?.tool_calls?.[0]?.name, 'weather');

    const schema = z.object({ name: z.string(), servings: z.number().int().min(1).max(12), vegan: z.boolean() });
    for (const method of ['jsonSchema', 'functionCalling'] as const) {
      const out = await langchain().withStructuredOutput(schema, { method }).invoke('A recipe, please');
      assert.ok(schema.safeParse(out).success, `${method}: ${JSON.stringify(out)}`);
    }
  }));

test('LangChain: OpenAIEmbeddings embedDocuments and embedQuery', () =>
  check(async () => {
    const embeddings = new OpenAIEmbeddings({ model: TEST_MODEL, apiKey: alice.apiKey, configuration: { baseURL: `${stack.url}/v1` }, maxRetries: 0 });
    const docs = await embeddings.embedDocuments(['alpha', 'beta']);
    assert.equal(docs.length, 2);
    assert.equal(docs[0]?.length, SIMULATED_EMBEDDING_DIMENSIONS);
    const q = await embeddings.embedQuery('alpha');
    q.forEach((x, i) => assert.ok(Math.abs(x - docs[0]![i]!) < 1e-6));
  }));
