// The web app as the backbone serves it under /app (src/web/web.routes.ts): the built index and assets,
// a strict Content-Security-Policy on every answer, the app's own routes answered with the app, missing
// assets as 404s, and nothing in the built files that reaches another origin.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { TestStack } from '../helpers/stack.js';
import { CONTENT_SECURITY_POLICY } from '../../src/web/web.routes.js';

const DIST = 'web/dist';
let stack: TestStack;

before(async () => {
  assert.ok(existsSync(`${DIST}/index.html`), 'web/dist is missing: run `source scripts/setup.sh; setup_project` (npm test does) to build the web app');
  stack = await TestStack.start({ roles: ['status', 'gate'] });
});

after(async () => {
  await stack.close();
});

const check = (fn: () => Promise<void>) => stack.check(fn);

function assertCsp(res: Response): void {
  const csp = res.headers.get('content-security-policy') ?? '';
  assert.equal(csp, CONTENT_SECURITY_POLICY);
  for (const directive of ["default-src 'none'", "script-src 'self' 'wasm-unsafe-eval'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"]) {
    assert.ok(csp.split('; ').includes(directive), `CSP has ${directive}`);
  }
  // 'wasm-unsafe-eval' allows compiling WebAssembly only (the shared signature code); eval itself stays refused.
  assert.ok(!csp.includes('unsafe-inline') && !csp.replace("'wasm-unsafe-eval'", '').includes('unsafe-eval') && !/https?:/.test(csp), 'no inline code, no eval, no other origin');
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(res.headers.get('x-frame-options'), 'DENY');
  assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
}

test('the index and every asset it names are served with the CSP; assets are immutable, the index revalidated', async () => {
  await check(async () => {
    const index = await fetch(`${stack.url}/app/`);
    assert.equal(index.status, 200);
    assert.equal(index.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(index.headers.get('cache-control'), 'no-cache');
    assertCsp(index);
    const html = await index.text();
    assert.match(html, /<div id="root"><\/div>/);
    assert.ok(!/<script(?![^>]*\bsrc=)[^>]*>/.test(html), 'no inline script');
    assert.ok(!/\sstyle=/.test(html) && !/<style/.test(html), 'no inline style');
    const assets = [...html.matchAll(/(?:src|href)="(\/app\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    assert.ok(assets.some((a) => a.endsWith('.js')) && assets.some((a) => a.endsWith('.css')), html);
    for (const asset of assets) {
      const res = await fetch(`${stack.url}${asset}`);
      assert.equal(res.status, 200, asset);
      assertCsp(res);
      assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      assert.match(res.headers.get('content-type') ?? '', asset.endsWith('.js') ? /^text\/javascript/ : /^text\/css/);
      const etag = res.headers.get('etag');
      assert.ok(etag);
      assert.equal((await fetch(`${stack.url}${asset}`, { headers: { 'if-none-match': etag } })).status, 304);
    }
  });
});

test("the app's routes are answered with the index (the router takes over in the browser); missing files are 404s", async () => {
  await check(async () => {
    const index = await (await fetch(`${stack.url}/app/`)).text();
    for (const route of ['/app/console', '/app/operator', '/app/signin', '/app/no/such/page']) {
      const res = await fetch(`${stack.url}${route}`);
      assert.equal(res.status, 200, route);
      assertCsp(res);
      assert.equal(await res.text(), index, route);
    }
    for (const missing of ['/app/assets/index-missing.js', '/app/favicon.ico', '/app/assets/']) {
      const res = await fetch(`${stack.url}${missing}`);
      assert.equal(res.status, 404, missing);
      assertCsp(res);
    }
    const bare = await fetch(`${stack.url}/app`, { redirect: 'manual' });
    assert.equal(bare.status, 301);
    assert.equal(bare.headers.get('location'), '/app/');
    const root = await fetch(`${stack.url}/`, { redirect: 'manual' });
    assert.equal(root.status, 302);
    assert.equal(root.headers.get('location'), '/app/');
    // The API beside the app is untouched.
    assert.equal((await fetch(`${stack.url}/status`)).status, 200);
  });
});

test('the built app names no other origin: no CDN, no external font or script', async () => {
  await check(async () => {
    const files = readdirSync(`${DIST}/assets`).map((f) => `${DIST}/assets/${f}`).concat(`${DIST}/index.html`);
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      // URLs in loadable positions: imports, url(), src/href attributes, @import.
      const external = [...text.matchAll(/(?:url\(\s*['"]?|@import\s+['"]|(?:src|href)=["']|from\s*["']|import\(\s*["'])(https?:)?\/\/[^'")\s]+/g)].map((m) => m[0]);
      assert.deepEqual(external, [], `${file} loads from another origin`);
    }
  });
});
