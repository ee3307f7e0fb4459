// The platform operator's surfaces on the real engines: the admin API (/admin, bearer ADMIN_TOKEN) and
// the `resultity admin` CLI (run as a child process against the same engines). Accounts, namespaces,
// API keys (secret shown once, stored hashed, revocation effective at once even though the key was
// cached in Redis), credits, models and the ledger's totals; errors in the OpenAI error shape.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { TestStack, TEST_MODEL } from '../helpers/stack.js';
import { requestJson, type Answer } from '../helpers/http.js';
import { runCli, type CliRun } from '../helpers/cli.js';
import { AuthService } from '../../src/cloud/auth.service.js';
import { Catalog } from '../../src/catalog/catalog.service.js';
import { CatalogChanges } from '../../src/postgres/catalog-changes.js';
import { catalogStore } from '../../src/postgres/catalog.store.js';
import { authStore } from '../../src/postgres/auth.store.js';
import type { Db } from '../../src/postgres/db.js';
import { pino } from 'pino';
import { RateLimitRepository } from '../../src/redis/rate-limit.repository.js';
import { RedisKeys } from '../../src/redis/client.js';

let stack: TestStack;

before(async () => {
  stack = await TestStack.start();
  await stack.model();
});

after(async () => {
  await stack.close();
});

const check = (fn: () => Promise<void>) => stack.check(fn);

function call(method: string, path: string, body?: unknown, token: string | null = stack.config.ADMIN_TOKEN!): Promise<Answer> {
  return requestJson(stack.url, method, path, body, token);
}

/** Asserts an error answer in the OpenAI shape {error: {message, type, param, code}}. */
function assertError(a: Answer, status: number, type: string, param?: string | null): { message: string; code: string; param: string | null } {
  assert.equal(a.status, status, a.text);
  const e = a.body.error as { message: unknown; type: unknown; param: unknown; code: unknown };
  assert.deepEqual(Object.keys(a.body), ['error']);
  assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(typeof e.message, 'string');
  assert.ok((e.message as string).length > 0);
  assert.equal(e.type, type);
  assert.equal(typeof e.code, 'string');
  if (param !== undefined) assert.equal(e.param, param);
  return e as { message: string; code: string; param: string | null };
}

async function models(apiKey: string): Promise<{ status: number; ids: string[]; body: Record<string, unknown> }> {
  const res = await fetch(`${stack.url}/v1/models`, { headers: { authorization: `Bearer ${apiKey}` } });
  const body = (await res.json()) as Record<string, unknown>;
  const ids = res.status === 200 ? (body.data as Array<{ id: string }>).map((m) => m.id) : [];
  return { status: res.status, ids, body };
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

test('the admin API refuses a missing, wrong or malformed token with 401 in the OpenAI error shape', () =>
  check(async () => {
    const token = stack.config.ADMIN_TOKEN!;
    for (const [t, what] of [
      [null, 'no header'],
      ['x'.repeat(48), 'a wrong token'],
      [token.slice(0, -1), 'a prefix of the token'],
      [`${token}x`, 'the token plus a character'],
      ['', 'an empty bearer'],
    ] as const) {
      const a = await call('GET', '/admin/ledger/total', undefined, t);
      assert.equal(a.status, 401, `${what}: ${a.text}`);
      assertError(a, 401, 'authentication_error', null);
    }
    // Not a bearer scheme at all, and an API key instead of the admin token.
    const basic = await fetch(`${stack.url}/admin/ledger/total`, { headers: { authorization: `Basic ${Buffer.from(`admin:${token}`).toString('base64')}` } });
    assert.equal(basic.status, 401);
    const consumer = await stack.tenant(0);
    assert.equal((await call('GET', '/admin/ledger/total', undefined, consumer.apiKey)).status, 401);
    // Every admin route is behind the token, including writes.
    assert.equal((await call('POST', '/admin/accounts', { name: 'nope' }, null)).status, 401);
    assert.equal((await call('PUT', '/admin/models/x', { input_price: 1, output_price: 1 }, 'y'.repeat(40))).status, 401);
    assert.equal((await stack.db.query(`SELECT 1 FROM accounts WHERE name = 'nope'`)).rowCount, 0);
    assert.equal((await call('GET', '/admin/ledger/total')).status, 200);
  }));

test('accounts, namespaces, keys (shown once, stored hashed, revoked at once despite the Redis cache), credits, balance, models, ledger total', () =>
  check(async () => {
    const account = await call('POST', '/admin/accounts', { name: 'Acme Corp' });
    assert.equal(account.status, 201, account.text);
    assert.equal(account.body.name, 'Acme Corp');
    const accountId = account.body.id as string;

    const ns = await call('POST', `/admin/accounts/${accountId}/namespaces`, { name: 'prod' });
    assert.equal(ns.status, 201, ns.text);
    assert.deepEqual([ns.body.account_id, ns.body.name], [accountId, 'prod']);
    const nsId = ns.body.id as string;
    assertError(await call('POST', `/admin/accounts/${accountId}/namespaces`, { name: 'prod' }), 409, 'invalid_request_error');
    assertError(await call('POST', `/admin/accounts/${randomUUID()}/namespaces`, { name: 'prod' }), 404, 'invalid_request_error');

    // A key: the secret is in this answer and nowhere else.
    const issued = await call('POST', `/admin/namespaces/${nsId}/keys`, { name: 'ci', rate_limit_rps: 50, rate_limit_burst: 100 });
    assert.equal(issued.status, 201, issued.text);
    const secret = issued.body.key as string;
    const keyId = issued.body.id as string;
    assert.match(secret, /^rk_[A-Za-z0-9_-]{43}$/);
    assert.deepEqual([issued.body.namespace_id, issued.body.name, issued.body.rate_limit_rps, issued.body.rate_limit_burst], [nsId, 'ci', 50, 100]);
    assert.equal(issued.body.key_prefix, secret.slice(0, 9));
    assert.ok(!('key_hash' in issued.body));
    const stored = await stack.db.query<{ key_hash: Buffer; key_prefix: string }>(`SELECT key_hash, key_prefix FROM api_keys WHERE id = $1`, [keyId]);
    assert.equal(stored.rows[0]!.key_hash.toString('hex'), sha256(secret), 'only the hash is stored');
    const dump = await stack.db.query<{ t: string }>(`SELECT row_to_json(k)::text AS t FROM api_keys k`);
    assert.ok(!dump.rows.some((r) => r.t.includes(secret.slice(9))), 'the secret is stored nowhere in clear');

    // Top up and balance.
    const topped = await call('POST', `/admin/namespaces/${nsId}/credits`, { amount: 12.345678, memo: 'invoice 42' });
    assert.equal(topped.status, 200, topped.text);
    assert.deepEqual(topped.body, { namespace_id: nsId, available_micro: 12_345_678, held_micro: 0 });
    await call('POST', `/admin/namespaces/${nsId}/credits`, { amount: '0.5' }); // a numeric string is accepted
    const balance = await call('GET', `/admin/namespaces/${nsId}/balance`);
    assert.deepEqual(balance.body, { namespace_id: nsId, available_micro: 12_845_678, held_micro: 0 });
    assertError(await call('GET', `/admin/namespaces/${randomUUID()}/balance`), 404, 'invalid_request_error');

    // Models: the name is a path segment (URL-encoded slash), prices in credits per million tokens.
    const put = await call('PUT', `/admin/models/${encodeURIComponent('acme/chat-1')}`, { input_price: 3, output_price: 9, context_tokens: 4096 });
    assert.equal(put.status, 200, put.text);
    assert.deepEqual([put.body.name, put.body.input_price_micro, put.body.output_price_micro, put.body.context_tokens], ['acme/chat-1', 3, 9, 4096]);
    const reprice = await call('PUT', `/admin/models/${encodeURIComponent('acme/chat-1')}`, { input_price: 4, output_price: 9 });
    assert.deepEqual([reprice.body.input_price_micro, reprice.body.context_tokens], [4, 8192]);

    // The key works, and sees the model with its price; that request also put the key in this instance's memory.
    const listed = await models(secret);
    assert.equal(listed.status, 200);
    assert.ok(listed.ids.includes('acme/chat-1') && listed.ids.includes(TEST_MODEL), JSON.stringify(listed.ids));
    // No admin read answer carries the secret.
    for (const path of [`/admin/namespaces/${nsId}/balance`, '/admin/ledger/total']) assert.ok(!(await call('GET', path)).text.includes(secret));

    const revoked = await call('DELETE', `/admin/keys/${keyId}`);
    assert.equal(revoked.status, 204, revoked.text);
    // Refused at once, although it was in memory a moment ago (the revocation's commit dropped it there).
    const after = await models(secret);
    assert.equal(after.status, 401, 'a revoked key is refused at once');
    assert.equal((after.body.error as { type: string }).type, 'authentication_error');
    assertError(await call('DELETE', `/admin/keys/${keyId}`), 404, 'invalid_request_error');
    assertError(await call('DELETE', `/admin/keys/${randomUUID()}`), 404, 'invalid_request_error');

    // Another key for the same namespace still works.
    const second = await call('POST', `/admin/namespaces/${nsId}/keys`, {});
    assert.equal(second.status, 201);
    assert.notEqual(second.body.key, secret);
    assert.equal((await models(second.body.key as string)).status, 200);

    const total = await call('GET', '/admin/ledger/total');
    assert.deepEqual(total.body, { entriesTotal: 0, balancesTotal: 0, mismatchedAccounts: 0 });
  }));

test('validation errors are 400 in the {error: {message, type, param, code}} shape, and write nothing', () =>
  check(async () => {
    const accountsBefore = (await stack.db.query(`SELECT 1 FROM accounts`)).rowCount;
    assertError(await call('POST', '/admin/accounts', {}), 400, 'invalid_request_error', 'name');
    assertError(await call('POST', '/admin/accounts', { name: '' }), 400, 'invalid_request_error', 'name');
    assertError(await call('POST', '/admin/accounts', { name: 'x'.repeat(201) }), 400, 'invalid_request_error', 'name');
    assertError(await call('POST', '/admin/accounts', { name: '   ' }), 400, 'invalid_request_error', 'name');
    assertError(await call('POST', '/admin/accounts', '{"name": '), 400, 'invalid_request_error');
    assertError(await call('POST', '/admin/accounts', '[1,2]'), 400, 'invalid_request_error');
    assert.equal((await stack.db.query(`SELECT 1 FROM accounts`)).rowCount, accountsBefore);

    const account = (await call('POST', '/admin/accounts', { name: 'validation' })).body.id as string;
    assertError(await call('POST', '/admin/accounts/not-a-uuid/namespaces', { name: 'ok' }), 400, 'invalid_request_error');
    assertError(await call('POST', `/admin/accounts/${account}/namespaces`, { name: 'Has Spaces' }), 400, 'invalid_request_error', 'name');
    assertError(await call('POST', `/admin/accounts/${account}/namespaces`, { name: '-leading' }), 400, 'invalid_request_error', 'name');
    assertError(await call('POST', `/admin/accounts/${account}/namespaces`, { name: 7 }), 400, 'invalid_request_error', 'name');
    const nsId = (await call('POST', `/admin/accounts/${account}/namespaces`, { name: 'ok' })).body.id as string;

    assertError(await call('POST', `/admin/namespaces/${nsId}/keys`, { rate_limit_rps: 0 }), 400, 'invalid_request_error', 'rate_limit_rps');
    assertError(await call('POST', `/admin/namespaces/${nsId}/keys`, { rate_limit_burst: 1.5 }), 400, 'invalid_request_error', 'rate_limit_burst');
    assertError(await call('POST', `/admin/namespaces/${randomUUID()}/keys`, {}), 404, 'invalid_request_error');
    assertError(await call('DELETE', '/admin/keys/123'), 400, 'invalid_request_error');

    for (const amount of [0, -5, 'abc', null, 2e9]) {
      const a = await call('POST', `/admin/namespaces/${nsId}/credits`, { amount });
      assertError(a, 400, 'invalid_request_error', 'amount');
    }
    assertError(await call('POST', `/admin/namespaces/${nsId}/credits`, {}), 400, 'invalid_request_error', 'amount');
    assert.deepEqual((await call('GET', `/admin/namespaces/${nsId}/balance`)).body, { namespace_id: nsId, available_micro: 0, held_micro: 0 });

    assertError(await call('PUT', '/admin/models/m1', { input_price: -1, output_price: 1 }), 400, 'invalid_request_error', 'input_price');
    assertError(await call('PUT', '/admin/models/m1', { input_price: 1, output_price: 0.5 }), 400, 'invalid_request_error', 'output_price');
    assertError(await call('PUT', '/admin/models/m1', { input_price: 1, output_price: 1, context_tokens: 0 }), 400, 'invalid_request_error', 'context_tokens');
    assertError(await call('PUT', `/admin/models/${encodeURIComponent('bad name!')}`, { input_price: 1, output_price: 1 }), 400, 'invalid_request_error', 'name');
    assert.equal((await stack.db.query(`SELECT 1 FROM models WHERE name IN ('m1', 'bad name!')`)).rowCount, 0);
  }));

test('a top-up smaller than one micro-credit is refused (400), not silently turned into a top-up of nothing', () =>
  check(async () => {
    const t = await stack.tenant(1);
    const txns = (await stack.db.query(`SELECT 1 FROM ledger_transactions`)).rowCount;
    const a = await call('POST', `/admin/namespaces/${t.namespaceId}/credits`, { amount: 0.0000001 });
    assertError(a, 400, 'invalid_request_error', 'amount');
    assert.equal((await stack.db.query(`SELECT 1 FROM ledger_transactions`)).rowCount, txns);
    assert.deepEqual(await stack.balance(t.namespaceId), { available: 1_000_000, held: 0 });
  }));

test('a key revoked while a request is between its database lookup and its cache write stays revoked', () =>
  check(async () => {
    // Two instances' view of the same key: instance A is authenticating a request for the key (not in its
    // memory yet; the database says active) when the admin revokes it; A's lookup answers only after the
    // revocation was announced to every instance (postgres/catalog-changes.ts). A must not keep that row.
    const t = await stack.tenant(0);
    const secret = t.apiKey;
    const redis = new Redis(stack.config.REDIS_URL);
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let reachedSet!: () => void;
    const atSet = new Promise<void>((resolve) => (reachedSet = resolve));
    // A's database: the key's lookup reads PostgreSQL at once, then holds its answer until the gate opens.
    const slowDb = {
      query: async (...args: Parameters<typeof stack.db.query>) => {
        const result = await (stack.db.query as (...a: unknown[]) => Promise<unknown>)(...args);
        if (String(args[0]).includes('FROM api_keys WHERE key_hash')) {
          reachedSet();
          await gate;
        }
        return result;
      },
    } as unknown as Db;
    const catalogA = new Catalog(catalogStore(slowDb));
    let heard!: () => void;
    const revocationHeard = new Promise<void>((resolve) => (heard = resolve));
    const changesA = new CatalogChanges(
      stack.config.DATABASE_URL,
      (c) => {
        catalogA.onChange(c);
        if (c.table === 'api_keys') heard();
      },
      pino({ level: 'silent' }),
    );
    await changesA.start();
    try {
      const keys = new RedisKeys(stack.config.REDIS_KEY_PREFIX);
      const instanceA = new AuthService({ store: authStore(stack.db), catalog: catalogA, rateLimits: new RateLimitRepository(redis, keys), defaultRps: 100, defaultBurst: 100, accountRps: 100, accountBurst: 100 });
      const inFlight = instanceA.authenticate(`Bearer ${secret}`);
      await atSet; // A read the key as active from PostgreSQL and is about to keep it
      assert.equal((await call('DELETE', `/admin/keys/${t.keyId}`)).status, 204);
      await revocationHeard;
      open();
      await inFlight; // that request began before the revocation; letting it through is fine

      // Every request after the revocation must be refused, on every instance.
      await assert.rejects(instanceA.authenticate(`Bearer ${secret}`), /Incorrect API key|invalid/i, 'instance A kept a row read before the revocation');
      const after = await models(secret);
      assert.equal(after.status, 401, `a revoked key was accepted after revocation: ${JSON.stringify(after.body).slice(0, 200)}`);
    } finally {
      await changesA.close();
      redis.disconnect();
    }
  }));

// ---- the CLI ----------------------------------------------------------------------------------------

/** Runs `resultity admin <args>` against this stack's engines; kills it after 30 s. */
function admin(...args: string[]): Promise<CliRun> {
  return runCli(stack.cliEnv(), ['admin', ...args]);
}

/** Runs a --json command that must succeed; returns its parsed output (one JSON line on stdout). */
async function adminJson(...args: string[]): Promise<Record<string, unknown>> {
  const r = await admin(...args, '--json');
  assert.equal(r.code, 0, `resultity admin ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, `one JSON line expected, got: ${r.stdout}`);
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}

test('the admin CLI: account-create, namespace-create, key-issue, credits-topup, balance, model-put, key-revoke, ledger-total (--json)', () =>
  check(async () => {
    const account = await adminJson('account-create', 'CLI Customer');
    assert.equal(account.name, 'CLI Customer');
    const accountId = account.id as string;
    assert.equal((await stack.db.query<{ name: string }>(`SELECT name FROM accounts WHERE id = $1`, [accountId])).rows[0]?.name, 'CLI Customer');

    const ns = await adminJson('namespace-create', accountId, 'cli-ns');
    assert.deepEqual([ns.account_id, ns.name], [accountId, 'cli-ns']);
    const nsId = ns.id as string;

    const key = await adminJson('key-issue', nsId, '--name', 'from-cli', '--rps', '25', '--burst', '50');
    assert.match(key.key as string, /^rk_[A-Za-z0-9_-]{43}$/);
    assert.deepEqual([key.namespace_id, key.name, key.rate_limit_rps, key.rate_limit_burst], [nsId, 'from-cli', 25, 50]);

    const topped = await adminJson('credits-topup', nsId, '7.25', '--memo', 'cli top-up');
    assert.deepEqual(topped, { namespace_id: nsId, available_micro: 7_250_000, held_micro: 0 });
    assert.deepEqual(await adminJson('balance', nsId), { namespace_id: nsId, available_micro: 7_250_000, held_micro: 0 });
    const memo = await stack.db.query<{ memo: string }>(`SELECT memo FROM ledger_transactions WHERE memo = 'cli top-up'`);
    assert.equal(memo.rowCount, 1);

    const model = await adminJson('model-put', 'cli/model-1', '--input-price', '2', '--output-price', '6', '--context', '2048');
    assert.deepEqual([model.name, model.input_price_micro, model.output_price_micro, model.context_tokens], ['cli/model-1', 2, 6, 2048]);

    // What the CLI wrote, the running backbone serves: the key authenticates and sees the model.
    const listed = await models(key.key as string);
    assert.equal(listed.status, 200);
    assert.ok(listed.ids.includes('cli/model-1'));

    assert.deepEqual(await adminJson('ledger-total'), { entriesTotal: 0, balancesTotal: 0, mismatchedAccounts: 0 });

    // Revocation from the CLI evicts the key from this stack's Redis cache (same prefix): refused at once.
    assert.deepEqual(await adminJson('key-revoke', key.id as string), { revoked: key.id });
    assert.equal((await models(key.key as string)).status, 401);

    // Failures: non-zero exit, a message on stderr, nothing on stdout.
    const unknown = await admin('namespace-create', randomUUID(), 'x', '--json');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /Account not found/);
    assert.equal(unknown.stdout, '');
    const bad = await admin('credits-topup', nsId, 'lots', '--json');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /amount must be a positive number/);
    assert.deepEqual(await adminJson('balance', nsId), { namespace_id: nsId, available_micro: 7_250_000, held_micro: 0 });
    const usage = await admin('model-put', 'cli/model-2', '--json');
    assert.notEqual(usage.code, 0);
    assert.match(usage.stderr, /--input-price/);
  }));
