// Property-based fuzzing (fast-check) of every surface, on the real engines: the public API, the account
// API, the admin API and the node protocol (WebSocket frames and POST /io/results), with arbitrary shapes,
// strings (NUL, lone surrogates, control characters, long), numbers and ids. The properties: no answer is
// a 5xx (other than the API's own outcomes of a real job: 502 failed, 503 no node, 504 expired), every
// error is in the surface's error shape, nothing hangs (HANG_MS), the process does not crash, and
// afterwards every job has ended and the ledger balances with nothing held.
//
// `npm test` runs FUZZ_RUNS=40 per property; `npm run fuzz` runs more (FUZZ_RUNS, default 1500 there) and
// writes the counts to test-artifacts/fuzz-counts.json; FUZZ_SEED replays a failed run.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { TestStack, TEST_MODEL, type RawNode, type Tenant } from '../helpers/stack.js';
import { anyBody, anyId, anyJson, anyNumber, anyText, FUZZ_RUNS, FUZZ_SEED, HANG_MS, RAW_NOT_JSON, segment, Tally } from '../helpers/fuzz.js';
import { signMessage } from '../../src/domain/signatures.js';
import { outputHash } from '../../src/domain/protocol.js';

const ANSWERED_MODEL = 'fuzz/answered';

let stack: TestStack;
let consumer: Tenant;
let adminTarget: Tenant;
let adminToken: string;
let session: string;
let sessionNamespace: string;
const tally = new Tally();
const raws: RawNode[] = [];

before(async () => {
  stack = await TestStack.start({
    config: {
      LOGIN_IP_RATE_PER_MINUTE: 1_000_000,
      LOGIN_IP_RATE_BURST: 1_000_000,
      // A raw node answering nonsense must keep getting jobs for the whole run.
      NODE_COOLDOWN_FAILURES: 1_000_000,
    },
  });
  adminToken = stack.config.ADMIN_TOKEN!;
  await stack.model();
  await stack.model(ANSWERED_MODEL);
  await stack.node();
  await stack.node({ models: [TEST_MODEL, ANSWERED_MODEL] });
  consumer = await stack.tenant(1000);
  adminTarget = await stack.tenant(10);
  const signUp = await call('POST', '/account/signup', { email: 'fuzz-owner@example.com', password: 'correct horse battery' }, null);
  session = String(signUp.body.token);
  sessionNamespace = String((await call('POST', '/account/namespaces', { name: 'fuzzed' }, session)).body.id);
});

after(async () => {
  await Promise.all(raws.map((r) => r.close()));
  if (process.env.FUZZ_COUNTS_FILE) {
    mkdirSync('test-artifacts', { recursive: true });
    writeFileSync(process.env.FUZZ_COUNTS_FILE, `${JSON.stringify({ runsPerProperty: FUZZ_RUNS, counts: tally.counts, failures: tally.failures }, null, 2)}\n`);
  }
  process.stdout.write(`# fuzz counts (${FUZZ_RUNS} runs per property): ${JSON.stringify(tally.counts)}\n`);
  await stack.close();
});

interface Answer {
  status: number | 'hang';
  body: Record<string, unknown>;
  text: string;
}

/** One HTTP request; `body` as JSON (RAW_NOT_JSON: a body that is not JSON); a request unanswered in HANG_MS is a hang. */
async function call(method: string, path: string, body: unknown, token: string | null, headers: Record<string, string> = {}): Promise<Answer> {
  const h: Record<string, string> = { ...headers };
  if (token !== null) h.authorization = `Bearer ${token}`;
  let payload: string | undefined;
  if (body !== undefined && method !== 'GET') {
    h['content-type'] = 'application/json';
    payload = body === RAW_NOT_JSON ? '{"not json' : JSON.stringify(body);
  }
  try {
    const res = await fetch(`${stack.url}${path}`, { method, headers: h, body: payload, signal: AbortSignal.timeout(HANG_MS) });
    const text = await res.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      // CSV, server-sent events: not JSON, and not needed
    }
    return { status: res.status, body: parsed, text };
  } catch (err) {
    if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return { status: 'hang', body: {}, text: '' };
    throw err;
  }
}

/** A job's own outcome (502 failed, 503 no node, 504 expired), which a fuzzed request may rightly get; never an internal error. */
function jobOutcome5xx(a: Answer): (status: number) => boolean {
  const code = (a.body.error as { code?: string } | undefined)?.code;
  return (status) => (status === 502 || status === 503 || status === 504) && code !== undefined && code !== 'internal_error';
}

/** Counts an answer; an error answer must be in the API's error shape ({error: {message, type, param, code}}). */
function judge(surface: string, what: string, a: Answer, allowed5xx?: (status: number) => boolean): void {
  tally.http(surface, what, a.status, allowed5xx);
  if (typeof a.status === 'number' && a.status >= 400 && !a.text.startsWith('data:')) {
    const error = a.body.error as Record<string, unknown> | undefined;
    const shaped = error !== undefined && ['code', 'message', 'param', 'type'].every((k) => k in error);
    if (!shaped) tally.failures.push(`${surface}: ${what} -> ${a.status} not in the error shape: ${a.text.slice(0, 200)}`);
  }
}

const runs = (n = FUZZ_RUNS) => ({ numRuns: n, ...(FUZZ_SEED !== undefined ? { seed: FUZZ_SEED } : {}), endOnFailure: true });
const headerText = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 300 });
const day = fc.oneof(fc.constantFrom('2024-01-01', '2099-12-31', '0000-00-00', '2024-02-30'), headerText);

function assertNoFailures(surface: string): void {
  assert.ok(tally.total(surface) > 0, `no ${surface} request was made`);
  assert.deepEqual(tally.failures, [], tally.failures.slice(0, 20).join('\n'));
}

// ---- public API (/v1) ----------------------------------------------------------------------------------

const message = fc.record(
  {
    role: fc.oneof(fc.constantFrom('user', 'system', 'assistant', 'tool', 'developer'), anyText),
    content: fc.oneof(anyText, fc.array(fc.record({ type: fc.constantFrom('text', 'image_url'), text: anyText }, { requiredKeys: [] }), { maxLength: 3 }), fc.constant(null), anyNumber),
    name: anyText,
  },
  { requiredKeys: ['role', 'content'] },
);
const chatBody = anyBody({
  model: fc.oneof(fc.constant(TEST_MODEL), anyText),
  messages: fc.oneof({ weight: 4, arbitrary: fc.array(message, { maxLength: 4 }) }, { weight: 1, arbitrary: anyJson }),
  max_tokens: fc.oneof(fc.integer({ min: 1, max: 64 }), anyNumber),
  max_completion_tokens: anyNumber,
  temperature: anyNumber,
  top_p: anyNumber,
  stop: fc.oneof(anyText, fc.array(anyText, { maxLength: 6 })),
  seed: anyNumber,
  n: anyNumber,
  stream: fc.oneof(fc.boolean(), anyJson),
  stream_options: anyJson,
  service_tier: fc.oneof(fc.constantFrom('auto', 'default', 'priority', 'flex'), anyText),
  tools: anyJson,
  response_format: anyJson,
  user: anyText,
});
const chatHeaders = fc.record(
  {
    prefer: fc.constantFrom('respond-async', 'respond-async, wait=1', 'x'),
    'idempotency-key': headerText,
    'x-resultity-priority': fc.oneof(fc.constantFrom('urgent', 'standard', 'bulk', 'test'), headerText),
    'x-resultity-region': fc.oneof(fc.constantFrom('eu-west', 'us'), headerText),
    'x-resultity-deadline-ms': fc.oneof(fc.integer({ min: 0, max: 100_000 }).map(String), headerText),
  },
  { requiredKeys: [] },
);
/** A request that is valid but for what the fuzzer picks: real jobs run, stream and settle. */
const validChatBody = fc.record(
  {
    model: fc.constant(TEST_MODEL),
    messages: fc.array(fc.record({ role: fc.constantFrom('user', 'system', 'assistant'), content: fc.string({ unit: 'grapheme', maxLength: 200 }) }), { minLength: 1, maxLength: 3 }),
    max_tokens: fc.integer({ min: 1, max: 32 }),
    temperature: fc.double({ min: 0, max: 2, noNaN: true }),
    stop: fc.array(fc.string({ unit: 'grapheme', maxLength: 20 }), { maxLength: 4 }),
    stream: fc.boolean(),
    stream_options: fc.record({ include_usage: fc.boolean() }),
    service_tier: fc.constantFrom('auto', 'default', 'priority', 'flex'),
  },
  { requiredKeys: ['model', 'messages', 'max_tokens'] },
);
const publicRequest = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(validChatBody, fc.oneof({ weight: 3, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: chatHeaders })).map(([body, headers]) => ({ method: 'POST', path: '/v1/chat/completions', body, headers })) },
  { weight: 5, arbitrary: fc.tuple(chatBody, chatHeaders).map(([body, headers]) => ({ method: 'POST', path: '/v1/chat/completions', body, headers })) },
  { weight: 1, arbitrary: anyId().map((id) => ({ method: 'GET', path: `/v1/jobs/${segment(id)}`, body: undefined, headers: {} })) },
  {
    weight: 1,
    arbitrary: fc.tuple(day, day, fc.oneof(fc.constantFrom('json', 'csv'), headerText)).map(([from, to, format]) => ({
      method: 'GET',
      path: `/v1/usage?from=${segment(from)}&to=${segment(to)}&format=${segment(format)}`,
      body: undefined,
      headers: {},
    })),
  },
  { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'DELETE', 'PUT').map((method) => ({ method, path: '/v1/models', body: undefined, headers: {} })) },
);

test('fuzz: the public API answers every request with a 2xx or a 4xx in the error shape, never hangs', { timeout: 600_000 }, () =>
  stack.check(async () => {
    await fc.assert(
      fc.asyncProperty(publicRequest, async (r) => {
        const a = await call(r.method, r.path, r.body, consumer.apiKey, r.headers);
        judge('public', `${r.method} ${r.path} ${JSON.stringify(r.body)?.slice(0, 300)} ${JSON.stringify(r.headers)}`, a, jobOutcome5xx(a));
      }),
      runs(),
    );
    assertNoFailures('public');
  }));

// ---- account API (/account) ----------------------------------------------------------------------------

const keyBody = anyBody({ name: anyText, rate_limit_rps: anyNumber, rate_limit_burst: anyNumber, monthly_cap: anyNumber, expires_at: fc.oneof(headerText, fc.date().map((d) => d.toISOString())) });
const accountRequest = fc.oneof(
  anyBody({ email: fc.oneof(anyText, fc.emailAddress()), password: anyText, name: anyText }).map((body) => ({ method: 'POST', path: '/account/signup', body, auth: false })),
  anyBody({ email: fc.oneof(anyText, fc.constant('fuzz-owner@example.com')), password: anyText }).map((body) => ({ method: 'POST', path: '/account/login', body, auth: false })),
  anyBody({ message: anyText, signature: fc.oneof(anyText, fc.constant(`0x${'ab'.repeat(65)}`)) }).map((body) => ({ method: 'POST', path: '/account/siwe', body, auth: false })),
  fc.constant({ method: 'GET', path: '/account/siwe/nonce', body: undefined, auth: false }),
  fc.constantFrom('/account', '/account/namespaces', '/account/nodes', '/account/withdrawals').map((path) => ({ method: 'GET', path, body: undefined, auth: true })),
  anyBody({ name: anyText, network: fc.oneof(fc.constantFrom('mainnet', 'testnet'), anyText) }).map((body) => ({ method: 'POST', path: '/account/namespaces', body, auth: true })),
  fc.tuple(anyId([sessionNamespaceOf()]), fc.constantFrom('PATCH', 'GET', 'DELETE'), anyBody({ name: anyText })).map(([id, method, body]) => ({
    method,
    path: `/account/namespaces/${segment(id)}${method === 'GET' ? '/balance' : ''}`,
    body: method === 'PATCH' ? body : undefined,
    auth: true,
  })),
  fc.tuple(anyId([sessionNamespaceOf()]), keyBody).map(([id, body]) => ({ method: 'POST', path: `/account/namespaces/${segment(id)}/keys`, body, auth: true })),
  fc.tuple(anyId([sessionNamespaceOf()]), anyId(), fc.constantFrom('DELETE', 'POST')).map(([id, keyId, method]) => ({
    method,
    path: `/account/namespaces/${segment(id)}/keys/${segment(keyId)}${method === 'POST' ? '/rotate' : ''}`,
    body: undefined,
    auth: true,
  })),
  fc.tuple(anyId([sessionNamespaceOf()]), fc.constantFrom('usage', 'jobs', 'keys'), headerText).map(([id, what, q]) => ({
    method: 'GET',
    path: `/account/namespaces/${segment(id)}/${what}?limit=${segment(q)}&from=${segment(q)}&format=${segment(q)}`,
    body: undefined,
    auth: true,
  })),
  fc.tuple(anyId(), fc.constantFrom('', '/rcp?limit=3', '/rcp?limit=x')).map(([id, rest]) => ({ method: 'GET', path: `/account/nodes/${segment(id)}${rest}`, body: undefined, auth: true })),
  fc.tuple(day, day).map(([from, to]) => ({ method: 'GET', path: `/account/earnings?from=${segment(from)}&to=${segment(to)}`, body: undefined, auth: true })),
  anyBody({ amount: anyNumber, destination: anyText }).map((body) => ({ method: 'POST', path: '/account/withdrawals', body, auth: true })),
);

/** The fuzzed session's namespace id, for arbitraries built before it exists (read when a value is drawn). */
function sessionNamespaceOf(): string {
  return sessionNamespace ?? '00000000-0000-0000-0000-000000000000';
}

test('fuzz: the account API answers every request with a 2xx or a 4xx in the error shape, never hangs', { timeout: 600_000 }, () =>
  stack.check(async () => {
    await fc.assert(
      fc.asyncProperty(accountRequest, fc.constantFrom('session', 'session', 'session', 'none', 'api-key', 'junk'), async (r, credential) => {
        const token = !r.auth ? null : credential === 'session' ? session : credential === 'api-key' ? consumer.apiKey : credential === 'junk' ? 'rs_junk' : null;
        const a = await call(r.method, r.path, r.body, token);
        judge('account', `${r.method} ${r.path} ${JSON.stringify(r.body)?.slice(0, 300)} as ${credential}`, a);
      }),
      runs(),
    );
    assertNoFailures('account');
  }));

// ---- admin API (/admin) --------------------------------------------------------------------------------

function adminRequest(): fc.Arbitrary<{ method: string; path: string; body: unknown }> {
  const ns = anyId([adminTarget.namespaceId]);
  const account = anyId([adminTarget.accountId]);
  const node = fc.oneof(anyText, fc.constant(`0x${'1'.repeat(40)}`));
  const subcloud = fc.oneof(fc.constantFrom('fuzz-sc', 'other'), anyText);
  const get = (path: string) => ({ method: 'GET', path, body: undefined });
  return fc.oneof(
    anyBody({ name: anyText }).map((body) => ({ method: 'POST', path: '/admin/accounts', body })),
    fc.tuple(account, anyBody({ name: anyText, network: anyText })).map(([id, body]) => ({ method: 'POST', path: `/admin/accounts/${segment(id)}/namespaces`, body })),
    fc.tuple(ns, keyBody).map(([id, body]) => ({ method: 'POST', path: `/admin/namespaces/${segment(id)}/keys`, body })),
    fc.tuple(anyId([adminTarget.keyId]), fc.constantFrom('POST', 'DELETE')).map(([id, method]) => ({ method, path: `/admin/keys/${segment(id)}${method === 'POST' ? '/rotate' : ''}`, body: undefined })),
    fc.tuple(ns, anyBody({ amount: anyNumber, memo: anyText })).map(([id, body]) => ({ method: 'POST', path: `/admin/namespaces/${segment(id)}/credits`, body })),
    fc.tuple(ns, fc.constantFrom('balance', 'keys', 'usage?format=csv', 'usage?from=x')).map(([id, what]) => get(`/admin/namespaces/${segment(id)}/${what}`)),
    fc.tuple(ns, anyBody({ subcloud: fc.oneof(fc.constant(null), subcloud) })).map(([id, body]) => ({ method: 'PUT', path: `/admin/namespaces/${segment(id)}/subcloud`, body })),
    fc
      .tuple(
        fc.oneof(fc.constant('fuzz/model-a'), anyText),
        anyBody({ input_price: anyNumber, output_price: anyNumber, min_charge: anyNumber, context_tokens: anyNumber, version: anyText, content_hash: anyText, min_gpu_memory_mb: anyNumber, priority_surcharge_bps: anyJson }),
      )
      .map(([name, body]) => ({ method: 'PUT', path: `/admin/models/${segment(name)}`, body })),
    anyBody({ name: subcloud, network: fc.oneof(fc.constantFrom('mainnet', 'testnet'), anyText), allowed_models: anyJson, min_gpu_memory_mb: anyNumber, isolate: anyJson }).map((body) => ({ method: 'POST', path: '/admin/subclouds', body })),
    fc.tuple(subcloud, fc.constantFrom('GET', 'PATCH', 'DELETE'), anyBody({ allowed_models: anyJson, isolate: anyJson })).map(([name, method, body]) => ({
      method,
      path: `/admin/subclouds/${segment(name)}`,
      body: method === 'PATCH' ? body : undefined,
    })),
    fc.tuple(subcloud, node, fc.constantFrom('PUT', 'DELETE')).map(([name, id, method]) => ({ method, path: `/admin/subclouds/${segment(name)}/members/${segment(id)}`, body: undefined })),
    fc.tuple(node, anyBody({ paused: anyJson, frozen: anyJson, shadow_banned: anyJson, cooldown_seconds: anyNumber, reason: anyText }), fc.constantFrom('PUT', 'DELETE')).map(([id, body, method]) => ({
      method,
      path: `/admin/nodes/${segment(id)}/flags`,
      body: method === 'PUT' ? body : undefined,
    })),
    fc.tuple(node, headerText).map(([id, q]) => get(`/admin/nodes/${segment(id)}/rcp?limit=${segment(q)}`)),
    fc.tuple(account, day, day).map(([id, from, to]) => get(`/admin/operators/${segment(id)}/earnings?from=${segment(from)}&to=${segment(to)}`)),
    fc.tuple(account, anyBody({ amount: anyNumber, destination: anyText })).map(([id, body]) => ({ method: 'POST', path: `/admin/operators/${segment(id)}/withdrawals`, body })),
    fc.constantFrom('json', 'csv', 'x').map((format) => ({ method: 'POST', path: `/admin/withdrawals/export?format=${format}`, body: undefined })),
    fc.tuple(anyId(), fc.constantFrom('requeue', 'discard')).map(([id, what]) => ({ method: 'POST', path: `/admin/quarantine/${segment(id)}/${what}`, body: undefined })),
    anyBody({ model: fc.oneof(fc.constant('fuzz/model-a'), anyText), request: anyJson, expected_sha256: anyText, expected_contains: anyText }).map((body) => ({ method: 'POST', path: '/admin/blind-probes', body })),
    anyId().map((id) => ({ method: 'DELETE', path: `/admin/blind-probes/${segment(id)}`, body: undefined })),
    fc.tuple(headerText, headerText, headerText).map(([limit, action, before]) => get(`/admin/changes?limit=${segment(limit)}&action=${segment(action)}&subject=${segment(action)}&before=${segment(before)}`)),
    fc.oneof(anyText, fc.constantFrom('1', '0', '999999', 'adoption')).map((v) => get(`/admin/network-config/${segment(v)}`)),
    fc
      .constantFrom('/admin/ledger/total', '/admin/ledger/verify', '/admin/quarantine?limit=5', '/admin/blind-probes', '/admin/nodes/scores', '/admin/subclouds', '/admin/network-config?limit=x', '/admin', '/admin/nope')
      .map(get),
  );
}

test('fuzz: the admin API answers every request with a 2xx or a 4xx in the error shape (401 without the token), never hangs', { timeout: 600_000 }, () =>
  stack.check(async () => {
    await fc.assert(
      fc.asyncProperty(adminRequest(), fc.constantFrom('admin', 'admin', 'admin', 'none', 'wrong'), async (r, credential) => {
        const token = credential === 'admin' ? adminToken : credential === 'wrong' ? 'x'.repeat(48) : null;
        const a = await call(r.method, r.path, r.body, token, credential === 'admin' ? { 'x-admin-actor': 'fuzz' } : {});
        judge('admin', `${r.method} ${r.path} ${JSON.stringify(r.body)?.slice(0, 300)} as ${credential}`, a);
        if (credential !== 'admin' && a.status !== 401) tally.failures.push(`admin: ${r.method} ${r.path} without the token -> ${a.status}`);
      }),
      runs(),
    );
    assertNoFailures('admin');
  }));

// ---- node protocol (/io/ws frames, POST /io/results) ----------------------------------------------------

const nodeFields = fc.record(
  {
    type: fc.oneof(fc.constantFrom('register', 'heartbeat', 'result', 'job_error', 'job_chunk'), anyText),
    jobId: anyId(),
    attempt: anyNumber,
    seq: anyNumber,
    delta: anyText,
    ts: fc.oneof(fc.constant('now'), anyNumber),
    nonce: anyText,
    output: fc.record({ content: anyText, finish_reason: fc.oneof(fc.constantFrom('stop', 'length'), anyText) }, { requiredKeys: [] }),
    usage: fc.oneof(fc.record({ prompt_tokens: anyNumber, completion_tokens: anyNumber }), anyJson),
    message: anyText,
    capacity: anyNumber,
    running: anyNumber,
    network: fc.oneof(fc.constant('mainnet'), anyText),
    models: anyJson,
    challenge: anyText,
    operator: anyId(),
    agentVersion: anyText,
  },
  { requiredKeys: ['type'] },
);
/** A frame: raw text, any JSON, or a node message with arbitrary fields, signed by the node or not. */
const nodeFrame = fc.oneof(
  { weight: 1, arbitrary: anyText.map((text) => ({ text, fields: null, sign: false })) },
  { weight: 1, arbitrary: anyJson.map((v) => ({ text: JSON.stringify(v), fields: null, sign: false })) },
  { weight: 5, arbitrary: fc.tuple(nodeFields, fc.boolean()).map(([fields, sign]) => ({ text: null, fields, sign })) },
);

function frameText(node: RawNode, f: { text: string | null; fields: ({ type: string } & Record<string, unknown>) | null; sign: boolean }): string {
  if (f.text !== null) return f.text;
  const message: { type: string } & Record<string, unknown> = { nodeId: node.nodeId, type: '', ...f.fields, ...(f.fields!.ts === 'now' ? { ts: Date.now() } : {}) };
  if (message.type === 'result' && message.output && typeof message.output === 'object') message.outputHash = safeOutputHash(message.output);
  if (!f.sign) return JSON.stringify(message);
  try {
    return JSON.stringify(signMessage(node.privateKey, message));
  } catch {
    return JSON.stringify(message); // a value canonical JSON cannot encode: sent unsigned
  }
}

function safeOutputHash(output: unknown): string {
  try {
    return outputHash(output as Parameters<typeof outputHash>[0]);
  } catch {
    return '0'.repeat(64);
  }
}

async function registeredRaw(models: string[]): Promise<RawNode> {
  const node = await stack.rawNode();
  raws.push(node);
  await node.registerAs(await stack.operator(), { models, capacity: 4 });
  return node;
}

test('fuzz: the node protocol: any frame, before or after registration, and any POST /io/results, leaves the gateway serving', { timeout: 600_000 }, () =>
  stack.check(async () => {
    let registered = await registeredRaw([]);
    await fc.assert(
      fc.asyncProperty(nodeFrame, fc.boolean(), async (f, beforeRegistration) => {
        if (beforeRegistration) {
          const stranger = await stack.rawNode();
          stranger.socket.send(frameText(stranger, f));
          const answer = await stranger.next(() => true, 3_000).catch(() => null);
          tally.record('node-ws', answer ? `answered:${String(answer.type)}` : stranger.closed ? 'closed' : 'silent');
          await stranger.close();
        } else {
          if (registered.closed) registered = await registeredRaw([]);
          registered.socket.send(frameText(registered, f));
          registered.send(registered.heartbeat());
          // The heartbeat's ack comes after whatever the frame got: the frame has been handled.
          const ack = await registered.next('heartbeat_ack', 5_000).catch((err: Error) => err);
          if (ack instanceof Error && !registered.closed) tally.failures.push(`node-ws: no heartbeat_ack after ${frameText(registered, f).slice(0, 300)}: ${ack.message}`);
          tally.record('node-ws', registered.closed ? 'closed' : 'served');
        }
        const body = f.text ?? frameText(registered, f);
        const res = await call('POST', '/io/results', RAW_BODY(body), null);
        tally.http('node-http', `POST /io/results ${body.slice(0, 300)}`, res.status);
        const health = await call('GET', '/healthz', undefined, null);
        if (health.status !== 200) tally.failures.push(`healthz ${health.status} after ${body.slice(0, 300)}`);
      }),
      runs(),
    );
    assertNoFailures('node-ws');
  }));

/** POST /io/results takes the frame's text as its body (JSON or not). */
function RAW_BODY(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return RAW_NOT_JSON;
  }
}

test('fuzz: whatever a node answers to a real job, the job ends exactly once and nothing is charged twice', { timeout: 600_000 }, () =>
  stack.check(async () => {
    let node = await registeredRaw([ANSWERED_MODEL]);
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          content: anyText,
          finish_reason: fc.oneof(fc.constantFrom('stop', 'length'), anyText),
          usage: fc.oneof(fc.record({ prompt_tokens: fc.integer({ min: 0, max: 5000 }), completion_tokens: fc.integer({ min: 0, max: 5000 }) }), anyJson),
          attemptShift: fc.constantFrom(0, 0, 0, 1, -1),
          hashRight: fc.boolean(),
          how: fc.constantFrom('ws', 'ws', 'http', 'job_error', 'silence'),
        }),
        async (answer) => {
          if (node.closed) node = await registeredRaw([ANSWERED_MODEL]);
          const submitted = await call('POST', '/v1/chat/completions', { model: ANSWERED_MODEL, messages: [{ role: 'user', content: 'fuzz me' }], max_tokens: 40 }, consumer.apiKey, { prefer: 'respond-async' });
          if (submitted.status !== 202) return void tally.failures.push(`answered: submit -> ${submitted.status} ${submitted.text}`);
          const jobId = String(submitted.body.id);
          // The job may go to the honest node instead; then there is nothing to answer.
          const frame = await node.next((f) => f.type === 'job' && f.jobId === jobId, 700).catch(() => null);
          if (frame) {
            const output = { content: answer.content, finish_reason: answer.finish_reason };
            const message = {
              type: answer.how === 'job_error' ? 'job_error' : 'result',
              nodeId: node.nodeId,
              jobId,
              attempt: Number(frame.attempt) + answer.attemptShift,
              ts: Date.now(),
              ...(answer.how === 'job_error' ? { message: answer.content } : { output, outputHash: answer.hashRight ? safeOutputHash(output) : 'f'.repeat(64), usage: answer.usage }),
            };
            let signed: unknown = message;
            try {
              signed = signMessage(node.privateKey, message);
            } catch {
              // sent unsigned
            }
            if (answer.how === 'http') tally.http('node-http', 'POST /io/results (answer)', (await call('POST', '/io/results', signed, null)).status);
            else if (answer.how !== 'silence') node.send(signed);
            tally.record('answered', `${answer.how}`);
          } else tally.record('answered', 'went-to-honest-node');
          const ended = await stack
            .until(`job ${jobId} to end`, async () => {
              const j = await stack.job(jobId);
              return j && ['completed', 'failed', 'expired', 'cancelled'].includes(j.status) ? j : undefined;
            }, 25_000)
            .catch(() => null);
          if (!ended) return void tally.failures.push(`answered: job ${jobId} did not end after ${JSON.stringify(answer).slice(0, 300)}`);
          tally.record('answered', `ended:${ended.status}`);
          const captures = await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ledger_transactions WHERE job_id = $1 AND kind = 'capture'`, [jobId]);
          if (captures.rows[0]!.n > 1) tally.failures.push(`answered: job ${jobId} captured ${captures.rows[0]!.n} times`);
        },
      ),
      runs(Math.max(5, Math.floor(FUZZ_RUNS / 4))),
    );
    assertNoFailures('answered');
  }));

test('after the fuzzing: every job has ended, nothing is held, the ledger balances, and an honest request still works', { timeout: 120_000 }, () =>
  stack.check(async () => {
    await stack.until('every job to end', async () => {
      const r = await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE finished_at IS NULL`);
      return r.rows[0]!.n === 0 ? true : undefined;
    }, 60_000);
    const held = await stack.db.query<{ held: string | null }>(
      `SELECT sum(balance)::text AS held FROM ledger_accounts WHERE kind = 'ns_held'`,
    );
    assert.equal(Number(held.rows[0]!.held ?? 0), 0, 'credits still held');
    const ok = await consumer.client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: 'user', content: 'still there?' }], max_tokens: 8 });
    assert.match(ok.choices[0]?.message.content ?? '', /simulated answer/);
    assert.deepEqual(tally.failures, []);
  }));
