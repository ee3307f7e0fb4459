// Issue 9, the HTTP edges, on the real engines: what a client, an account holder or someone without the
// admin token can send that once gave a 500, hung a connection or leaked a credential. Each answer must
// be a clean 4xx in the API's error shape ({"error": {message, type, param, code}}), with nothing written.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';
import { requestJson, type Answer } from '../helpers/http.js';

let stack: TestStack;
let tenant: Tenant;
let adminToken: string;
const logLines: string[] = [];

before(async () => {
  stack = await TestStack.start({
    // A short request timeout, so that the slow-body tests take a second; request lines logged (info).
    config: { HTTP_REQUEST_TIMEOUT_MS: 1000, LOG_LEVEL: 'info' },
    logDestination: { write: (line) => void logLines.push(line) },
  });
  adminToken = stack.config.ADMIN_TOKEN!;
  await stack.model();
  await stack.node();
  tenant = await stack.tenant(10);
});

after(async () => {
  await stack.close();
});

const check = (fn: () => Promise<void>) => stack.check(fn);
const NUL = 'a\u0000b';
const ask = { model: TEST_MODEL, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 20 };

function assertOpenAiError(a: Answer, status: number, what: string): void {
  assert.equal(a.status, status, `${what}: ${a.text}`);
  const error = (a.body as { error?: Record<string, unknown> }).error;
  assert.ok(error, `${what}: no error object in ${a.text}`);
  assert.deepEqual(Object.keys(error).sort(), ['code', 'message', 'param', 'type'], what);
  assert.equal(typeof error.message, 'string', what);
}

async function signUp(): Promise<string> {
  const r = await requestJson(stack.url, 'POST', '/account/signup', { email: `edge-${Date.now()}-${Math.random().toString(36).slice(2)}@example.com`, password: 'correct horse battery' });
  assert.equal(r.status, 201, r.text);
  return String(r.body.token);
}

async function tableCounts(): Promise<Record<string, number>> {
  const r = await stack.db.query<{ accounts: number; namespaces: number; keys: number; ledger: number; jobs: number; subclouds: number }>(
    `SELECT (SELECT count(*)::int FROM accounts) AS accounts, (SELECT count(*)::int FROM namespaces) AS namespaces,
            (SELECT count(*)::int FROM api_keys) AS keys, (SELECT count(*)::int FROM ledger_transactions) AS ledger,
            (SELECT count(*)::int FROM jobs) AS jobs, (SELECT count(*)::int FROM subclouds) AS subclouds`,
  );
  return r.rows[0]!;
}

test('a NUL character in any string is a 400 in the error shape on every surface, and nothing is written', () =>
  check(async () => {
    const session = await signUp();
    const ns = (await requestJson(stack.url, 'POST', '/account/namespaces', { name: 'nul-test' }, session)).body.id as string;
    const before = await tableCounts();
    const cases: Array<[string, string, string, unknown, string | null]> = [
      ['chat content', 'POST', '/v1/chat/completions', { ...ask, messages: [{ role: 'user', content: NUL }] }, tenant.apiKey],
      ['chat content part', 'POST', '/v1/chat/completions', { ...ask, messages: [{ role: 'user', content: [{ type: 'text', text: NUL }] }] }, tenant.apiKey],
      ['chat model', 'POST', '/v1/chat/completions', { ...ask, model: NUL }, tenant.apiKey],
      ['chat message name', 'POST', '/v1/chat/completions', { ...ask, messages: [{ role: 'user', content: 'x', name: NUL }] }, tenant.apiKey],
      ['chat stop', 'POST', '/v1/chat/completions', { ...ask, stop: [NUL] }, tenant.apiKey],
      ['chat user', 'POST', '/v1/chat/completions', { ...ask, user: NUL }, tenant.apiKey],
      ['sign-up name', 'POST', '/account/signup', { email: 'nul-name@example.com', password: 'correct horse battery', name: NUL }, null],
      ['sign-up email', 'POST', '/account/signup', { email: `x${NUL}@example.com`, password: 'correct horse battery' }, null],
      ['sign-up password', 'POST', '/account/signup', { email: 'nul-pass@example.com', password: `correct horse${NUL}` }, null],
      ['account key name', 'POST', `/account/namespaces/${ns}/keys`, { name: NUL }, session],
      ['account withdrawal destination', 'POST', '/account/withdrawals', { amount: 1, destination: NUL }, session],
      ['admin account name', 'POST', '/admin/accounts', { name: NUL }, adminToken],
      ['admin namespace name', 'POST', `/admin/accounts/${tenant.accountId}/namespaces`, { name: NUL }, adminToken],
      ['admin key name', 'POST', `/admin/namespaces/${tenant.namespaceId}/keys`, { name: NUL }, adminToken],
      ['admin top-up memo', 'POST', `/admin/namespaces/${tenant.namespaceId}/credits`, { amount: 1, memo: NUL }, adminToken],
      ['admin withdrawal destination', 'POST', `/admin/operators/${tenant.accountId}/withdrawals`, { amount: 1, destination: NUL }, adminToken],
      ['admin model version', 'PUT', `/admin/models/${encodeURIComponent(TEST_MODEL)}`, { input_price: 1, output_price: 1, version: NUL }, adminToken],
      ['admin subcloud name', 'POST', '/admin/subclouds', { name: NUL, network: 'mainnet' }, adminToken],
      ['admin subcloud path', 'GET', `/admin/subclouds/${encodeURIComponent(NUL)}`, undefined, adminToken],
      ['admin subcloud member path', 'PUT', `/admin/subclouds/${encodeURIComponent(NUL)}/members/0x${'1'.repeat(40)}`, undefined, adminToken],
      ['admin changes filter', 'GET', `/admin/changes?action=${encodeURIComponent(NUL)}`, undefined, adminToken],
      ['admin flag reason', 'PUT', `/admin/nodes/0x${'1'.repeat(40)}/flags`, { paused: true, reason: NUL }, adminToken],
      ['admin blind probe', 'POST', '/admin/blind-probes', { model: TEST_MODEL, request: { messages: [{ role: 'user', content: NUL }], max_tokens: 5 }, expected_contains: 'x' }, adminToken],
    ];
    for (const [what, method, path, body, token] of cases) assertOpenAiError(await requestJson(stack.url, method, path, body, token), 400, what);
    assert.deepEqual(await tableCounts(), before, 'a refused request must write nothing');
  }));

test('every id parameter is validated: a malformed id is a 4xx in the error shape, never a 500', () =>
  check(async () => {
    const session = await signUp();
    const bad = ['----', '-'.repeat(36), 'z'.repeat(36), '%00', '01a24618-9a57-71c9-b06f-d9d7a50a521c-extra'];
    for (const id of bad) {
      assertOpenAiError(await requestJson(stack.url, 'GET', `/v1/jobs/${id}`, undefined, tenant.apiKey), 404, `GET /v1/jobs/${id}`);
      for (const [method, path] of [
        ['POST', `/admin/keys/${id}/rotate`],
        ['DELETE', `/admin/keys/${id}`],
        ['GET', `/admin/namespaces/${id}/balance`],
        ['POST', `/admin/quarantine/${id}/requeue`],
        ['DELETE', `/admin/blind-probes/${id}`],
        ['GET', `/admin/nodes/${id}/rcp`],
      ] as const) {
        const a = await requestJson(stack.url, method, path, undefined, adminToken);
        assertOpenAiError(a, 400, `${method} ${path}`);
      }
      for (const path of [`/account/namespaces/${id}/keys`, `/account/namespaces/${id}/balance`, `/account/nodes/${id}`]) {
        const a = await requestJson(stack.url, 'GET', path, undefined, session);
        assert.ok(a.status === 400 || a.status === 404, `${path}: ${a.status} ${a.text}`);
        assertOpenAiError(a, a.status, path);
      }
    }
  }));

test('stop sequences are limited in length; {"amount": true} and other non-amounts are refused; a numeric string still counts', () =>
  check(async () => {
    const long = await requestJson(stack.url, 'POST', '/v1/chat/completions', { ...ask, stop: ['x'.repeat(257)] }, tenant.apiKey);
    assertOpenAiError(long, 400, 'a 257-character stop sequence');
    assert.match(String((long.body.error as { param: string }).param), /^stop/);
    const ok = await requestJson(stack.url, 'POST', '/v1/chat/completions', { ...ask, stop: ['x'.repeat(256)] }, tenant.apiKey);
    assert.equal(ok.status, 200, ok.text);

    const before = await stack.balance(tenant.namespaceId);
    for (const amount of [true, false, [1], { n: 1 }, '1e3', '0x10', ' 1']) {
      assertOpenAiError(await requestJson(stack.url, 'POST', `/admin/namespaces/${tenant.namespaceId}/credits`, { amount }, adminToken), 400, `amount ${JSON.stringify(amount)}`);
    }
    assert.deepEqual(await stack.balance(tenant.namespaceId), before, 'no refused amount may be credited');
    assert.equal((await requestJson(stack.url, 'POST', `/admin/namespaces/${tenant.namespaceId}/credits`, { amount: '0.5' }, adminToken)).status, 200);
  }));

test('/admin without the token is a 401 on every path, known or not; with it an unknown path is a 404', () =>
  check(async () => {
    for (const path of ['/admin', '/admin/', '/admin/nope', '/admin/ledger/total', '/admin/accounts/x/y/z']) {
      for (const token of [null, 'wrong-token']) {
        const a = await requestJson(stack.url, 'GET', path, undefined, token);
        assertOpenAiError(a, 401, `GET ${path} with ${token ?? 'no token'}`);
      }
    }
    assertOpenAiError(await requestJson(stack.url, 'GET', '/admin/nope', undefined, adminToken), 404, 'an unknown admin path with the token');
    assertOpenAiError(await requestJson(stack.url, 'GET', '/nope', undefined, null), 404, 'an unknown path outside /admin');
  }));

test('Idempotency-Key: the same key with another priority, region or deadline is a 409, not a replay', () =>
  check(async () => {
    const key = `edge-${Date.now()}`;
    const send = (headers: Record<string, string>) =>
      fetch(`${stack.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json', 'idempotency-key': key, ...headers },
        body: JSON.stringify(ask),
      });
    const first = await send({});
    assert.equal(first.status, 200, await first.text());
    const again = await send({});
    assert.equal(again.status, 200);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    const variants: Array<Record<string, string>> = [{ 'x-resultity-priority': 'urgent' }, { 'x-resultity-region': 'eu-west' }, { 'x-resultity-deadline-ms': '20000' }];
    for (const headers of variants) {
      const r = await send(headers);
      const body = (await r.json()) as Record<string, unknown>;
      assertOpenAiError({ status: r.status, body, text: JSON.stringify(body), headers: r.headers }, 409, JSON.stringify(headers));
    }
  }));

/** Writes raw bytes to the server and returns everything it answers until it closes the connection. */
function rawExchange(payload: string | Buffer, opts: { trickle?: string; everyMs?: number; timeoutMs?: number } = {}): Promise<{ text: string; closedAfterMs: number }> {
  const { port, hostname } = new URL(stack.url);
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = connect(Number(port), hostname);
    let text = '';
    let timer: NodeJS.Timeout | undefined;
    const giveUp = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept the connection open for ${opts.timeoutMs ?? 5000} ms; got: ${text}`));
    }, opts.timeoutMs ?? 5000);
    socket.on('data', (d: Buffer) => (text += d.toString('utf8')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(giveUp);
      clearInterval(timer);
      resolve({ text, closedAfterMs: Date.now() - started });
    });
    socket.write(payload);
    if (opts.trickle) timer = setInterval(() => socket.writable && socket.write(opts.trickle!), opts.everyMs ?? 200);
  });
}

function jsonBodyOf(httpText: string): Record<string, unknown> {
  return JSON.parse(httpText.slice(httpText.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
}

test('a body sent a byte at a time is cut off at the request timeout (408, error shape) on the public, account, admin and io routes', () =>
  check(async () => {
    const routes: Array<[string, string | null]> = [
      ['/v1/chat/completions', tenant.apiKey],
      ['/account/login', null],
      ['/admin/accounts', adminToken],
      ['/io/results', null],
    ];
    await Promise.all(
      routes.map(async ([path, token]) => {
        const head = `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n${token ? `Authorization: Bearer ${token}\r\n` : ''}\r\n{`;
        const { text, closedAfterMs } = await rawExchange(head, { trickle: ' ', everyMs: 200 });
        assert.match(text, /^HTTP\/1\.1 408 /, `${path}: ${text}`);
        assert.equal((jsonBodyOf(text).error as { code: string }).code, 'request_timeout', path);
        assert.ok(closedAfterMs < 4000, `${path}: closed after ${closedAfterMs} ms`);
      }),
    );
    // The server is unharmed.
    assert.equal((await fetch(`${stack.url}/healthz`)).status, 200);
  }));

test("Node's own 400 (malformed HTTP) and 431 (headers too large) answers are in the error shape", () =>
  check(async () => {
    const malformed = await rawExchange('GET /v1/models HTTP/1.1\r\nHost: x\r\nthis is not a header\r\n\r\n');
    assert.match(malformed.text, /^HTTP\/1\.1 400 /);
    assert.deepEqual(Object.keys(jsonBodyOf(malformed.text).error as object).sort(), ['code', 'message', 'param', 'type']);
    const huge = await rawExchange(`GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: ${'y'.repeat(20_000)}\r\n\r\n`);
    assert.match(huge.text, /^HTTP\/1\.1 431 /);
    assert.equal((jsonBodyOf(huge.text).error as { code: string }).code, 'headers_too_large');
  }));

test('credentials in a request URL never reach the log; other query parameters do', () =>
  check(async () => {
    const secret = 'rk_supersecretvalue123';
    await fetch(`${stack.url}/v1/models?api_key=${secret}&format=csv&access_token=tok123&x-amz-signature=sig456`);
    await fetch(`${stack.url}/account?token=${secret}`);
    const logged = logLines.join('');
    for (const s of [secret, 'tok123', 'sig456']) assert.ok(!logged.includes(s), `the log holds ${s}`);
    assert.match(logged, /\/v1\/models\?api_key=\[redacted\]&format=csv&access_token=\[redacted\]/);
  }));
