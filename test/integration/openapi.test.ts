// The OpenAPI 3.1 document (issue 12, part 6): served at /openapi.json, valid by a well-kept validator
// (@readme/openapi-parser), and in agreement with the server's real routes both ways: every route of the
// public and account APIs is documented (with its path parameters and, where it takes one, its body),
// and every documented operation is a real route. Routes added later fail here until they are described.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileErrors, validate } from '@readme/openapi-parser';
import { TestStack } from '../helpers/stack.js';
import { isDocumentedPath } from '../../src/openapi/openapi.plugin.js';

let stack: TestStack;
const check = (fn: () => Promise<void>) => stack.check(fn);

before(async () => {
  stack = await TestStack.start();
});

after(async () => {
  await stack.close();
});

interface Operation {
  summary?: string;
  tags?: string[];
  security?: Array<Record<string, string[]>>;
  parameters?: Array<{ in: string; name: string }>;
  requestBody?: { content: Record<string, { schema: { properties?: Record<string, unknown> } }> };
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];
/** Fastify's `/v1/jobs/:id` as OpenAPI writes it: `/v1/jobs/{id}`. */
const openApiPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

async function documentOf(): Promise<Document> {
  const r = await fetch(`${stack.url}/openapi.json`);
  assert.equal(r.status, 200);
  return (await r.json()) as Document;
}

test('/openapi.json is a valid OpenAPI 3.1 document', () =>
  check(async () => {
    const doc = await documentOf();
    assert.equal(doc.openapi, '3.1.0');
    const result = await validate(structuredClone(doc) as never);
    assert.ok(result.valid, result.valid ? '' : compileErrors(result));
  }));

test('every route of the public and account APIs is in the document, and every documented operation is a real route', () =>
  check(async () => {
    const doc = await documentOf();
    const routes = stack.backbone.routes.filter((r) => r.method !== 'HEAD' && isDocumentedPath(r.url));
    assert.ok(routes.length >= 30, `the server's routes were enumerated (${routes.length})`);
    const real = new Set(routes.map((r) => `${r.method.toLowerCase()} ${openApiPath(r.url)}`));

    const problems: string[] = [];
    for (const r of routes) {
      const path = openApiPath(r.url);
      const op = doc.paths[path]?.[r.method.toLowerCase()];
      if (!op) {
        problems.push(`${r.method} ${r.url}: not in the document`);
        continue;
      }
      if (!op.summary) problems.push(`${r.method} ${r.url}: no summary (give the route a schema: routeSchema in src/openapi/route-schema.ts)`);
      if (!op.tags?.length) problems.push(`${r.method} ${r.url}: no tag`);
      if (!op.security) problems.push(`${r.method} ${r.url}: says nothing of how it is authenticated`);
      const inPath = [...r.url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]).sort();
      const declared = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name).sort();
      if (JSON.stringify(inPath) !== JSON.stringify(declared)) problems.push(`${r.method} ${r.url}: path parameters ${JSON.stringify(declared)} documented, ${JSON.stringify(inPath)} in the route`);
    }
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops).filter((m) => METHODS.includes(m))) {
        if (!real.has(`${method} ${path}`)) problems.push(`${method.toUpperCase()} ${path}: documented, but the server has no such route`);
      }
    }
    assert.deepEqual(problems, []);
  }));

test('request bodies are the schemas the handlers validate with: what the document requires, the server requires', () =>
  check(async () => {
    const doc = await documentOf();
    const chat = doc.paths['/v1/chat/completions']?.post?.requestBody?.content['application/json']?.schema;
    assert.ok(chat?.properties && 'messages' in chat.properties && 'model' in chat.properties);
    // Every operation that takes a body documents one: the bodies of POST and PATCH operations that
    // parse one are generated from their zod schemas; those that take none say so by having none.
    const signUp = doc.paths['/account/signup']?.post?.requestBody?.content['application/json']?.schema as
      | { properties: Record<string, unknown>; required?: string[]; additionalProperties?: boolean }
      | undefined;
    assert.deepEqual(Object.keys(signUp?.properties ?? {}).sort(), ['email', 'name', 'password']);
    assert.deepEqual(signUp?.required?.sort(), ['email', 'password']);
    assert.equal(signUp?.additionalProperties, false);
    // ...and the server refuses what the document refuses (an unknown field, a missing required one).
    for (const body of [{ email: 'a@example.com', password: 'x'.repeat(12), extra: 1 }, { email: 'a@example.com' }]) {
      const r = await fetch(`${stack.url}/account/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal(r.status, 400);
      assert.equal(((await r.json()) as { error: { type: string } }).error.type, 'invalid_request_error');
    }
    const withBody = ['/account/namespaces', '/account/nodes/enrolments', '/account/withdrawals', '/account/login', '/account/siwe'];
    for (const p of withBody) assert.ok(doc.paths[p]?.post?.requestBody, `POST ${p} documents its body`);
    assert.ok(doc.paths['/account/namespaces/{id}']?.patch?.requestBody);
    assert.deepEqual(doc.paths['/v1/models']?.get?.security, [{ apiKey: [] }]);
    assert.deepEqual(doc.paths['/account/login']?.post?.security, []);
    assert.deepEqual(doc.paths['/account/namespaces']?.get?.security, [{ session: [] }]);
    // The admin and io surfaces are not part of the clients' API.
    assert.ok(!Object.keys(doc.paths).some((p) => p.startsWith('/admin') || p.startsWith('/io')));
  }));

test('the reference page and its assets are served by the backbone itself (no CDN: it works offline)', () =>
  check(async () => {
    const page = await fetch(`${stack.url}/reference/`);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /swagger-ui/i);
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!).filter((u) => !u.startsWith('data:'));
    assert.ok(assets.length > 0);
    for (const a of assets) {
      assert.ok(!/^https?:/.test(a), `asset ${a} is served from elsewhere`);
      const r = await fetch(new URL(a, `${stack.url}/reference/`));
      assert.equal(r.status, 200, a);
    }
  }));
