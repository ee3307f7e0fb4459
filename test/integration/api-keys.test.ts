// API keys beyond the spine: expiry, a credit cap per calendar month that holds at any concurrency and
// across instances, rotation, and last-used time.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createBackbone, type Backbone } from '../../src/app.js';
import { TestStack, TEST_MODEL } from '../helpers/stack.js';

let stack: TestStack;
let peer: Backbone;
let peerUrl: string;
const check = (fn: () => Promise<void>) => stack.check(fn);

before(async () => {
  stack = await TestStack.start();
  peer = await createBackbone({ config: stack.config, roles: ['cloud'], logger: pino({ level: 'warn' }), mongoUrl: stack.mongoUrl, migrate: false });
  peerUrl = await peer.listen();
  await stack.model();
  // Slow enough that no job settles (freeing cap room) while the cap test's burst of submissions is still arriving.
  await stack.node({ latencyMs: 1_500, capacity: 8 });
});

after(async () => {
  await peer.close();
  await stack.close();
});

// 'hi' is 2 bytes: prompt bound 64 + 2 + 8 = 74 tokens at 10, plus max_tokens 10 at 20: a 940 µcr hold.
const ask = { model: TEST_MODEL, messages: [{ role: 'user' as const, content: 'hi' }], max_tokens: 10 };
const HOLD = 940;

async function submit(base: string, apiKey: string): Promise<{ status: number; id?: string; code?: string }> {
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', prefer: 'respond-async' },
    body: JSON.stringify(ask),
  });
  const body = (await res.json()) as { id?: string; error?: { code: string } };
  return { status: res.status, id: body.id, code: body.error?.code };
}

async function adminPost(path: string, body: unknown): Promise<Response> {
  return fetch(`${stack.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stack.config.ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

test('a monthly cap holds under concurrent requests on two instances; settled jobs count what they were charged', () =>
  check(async () => {
    const tenant = await stack.tenant(10);
    const res = await adminPost(`/admin/namespaces/${tenant.namespaceId}/keys`, { monthly_cap: (3 * HOLD) / 1e6, rate_limit_rps: 1000, rate_limit_burst: 1000 });
    assert.equal(res.status, 201);
    const { key, id: keyId } = (await res.json()) as { key: string; id: string };

    const outcomes = await Promise.all(Array.from({ length: 12 }, (_, i) => submit(i % 2 ? peerUrl : stack.url, key)));
    const accepted = outcomes.filter((o) => o.status === 202);
    assert.equal(accepted.length, 3, JSON.stringify(outcomes));
    assert.ok(outcomes.every((o) => o.status === 202 || (o.status === 402 && o.code === 'monthly_cap_reached')), JSON.stringify(outcomes));

    await stack.until('the accepted jobs to complete', async () => {
      const r = await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE api_key_id = $1 AND status = 'completed'`, [keyId]);
      return r.rows[0]?.n === 3 ? true : undefined;
    });
    const charged = await stack.db.query<{ sum: number }>(`SELECT sum(charged_micro)::bigint AS sum FROM jobs WHERE api_key_id = $1`, [keyId]);
    const spend = await stack.db.query<{ committed_micro: number }>(`SELECT committed_micro FROM api_key_monthly_spend WHERE api_key_id = $1`, [keyId]);
    assert.equal(spend.rows[0]?.committed_micro, charged.rows[0]?.sum);
    assert.ok(charged.rows[0]!.sum < 3 * HOLD);
    // The holds gave way to smaller charges: there is room for one more worst case.
    assert.equal((await submit(stack.url, key)).status, 202);
    const other = await stack.tenant(10);
    assert.equal((await submit(stack.url, other.apiKey)).status, 202, 'the cap is per key, not per namespace or network');
  }));

test('an expired key is refused with 401, even while cached', () =>
  check(async () => {
    const tenant = await stack.tenant(1);
    const res = await adminPost(`/admin/namespaces/${tenant.namespaceId}/keys`, { expires_at: new Date(Date.now() + 1500).toISOString() });
    const { key } = (await res.json()) as { key: string };
    const models = () => fetch(`${stack.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal((await models()).status, 200); // now cached in Redis
    await new Promise((r) => setTimeout(r, 1600));
    const expired = await models();
    assert.equal(expired.status, 401);
    assert.match(((await expired.json()) as { error: { message: string } }).error.message, /expired/);
    assert.equal((await adminPost(`/admin/namespaces/${tenant.namespaceId}/keys`, { expires_at: new Date(Date.now() - 1000).toISOString() })).status, 400);
  }));

test('rotation: the old key stops at once on every instance, the new one works; listings show last use, never secrets', () =>
  check(async () => {
    const tenant = await stack.tenant(1);
    const models = (base: string, key: string) => fetch(`${base}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal((await models(peerUrl, tenant.apiKey)).status, 200);
    const rotated = await adminPost(`/admin/keys/${tenant.keyId}/rotate`, {});
    assert.equal(rotated.status, 201);
    const fresh = (await rotated.json()) as { key: string; id: string };
    assert.equal((await models(peerUrl, tenant.apiKey)).status, 401);
    assert.equal((await models(stack.url, tenant.apiKey)).status, 401);
    assert.equal((await models(peerUrl, fresh.key)).status, 200);

    type Listed = { id: string; revoked_at: string | null; last_used_at: string | null };
    const listing = async () => {
      const text = await (await fetch(`${stack.url}/admin/namespaces/${tenant.namespaceId}/keys`, { headers: { authorization: `Bearer ${stack.config.ADMIN_TOKEN}` } })).text();
      assert.ok(!/rk_[A-Za-z0-9_-]{43}/.test(text), 'no secret in a listing');
      return (JSON.parse(text) as { data: Listed[] }).data;
    };
    // Last use is recorded in the background, at most once a minute per key: wait for it.
    const keys = await stack.until('both keys to show their last use', async () => {
      const k = await listing();
      return k.every((x) => x.last_used_at !== null) ? k : undefined;
    }, 5_000);
    assert.deepEqual(keys.map((k) => [k.id, k.revoked_at !== null]), [
      [tenant.keyId, true],
      [fresh.id, false],
    ]);
  }));

test('revocation: a key cached on a second instance is refused there within one second', () =>
  check(async () => {
    const tenant = await stack.tenant(1);
    const models = (base: string) => fetch(`${base}/v1/models`, { headers: { authorization: `Bearer ${tenant.apiKey}` } });
    // Both instances have the key in the shared cache now.
    assert.equal((await models(peerUrl)).status, 200);
    assert.equal((await models(stack.url)).status, 200);
    const revoked = await fetch(`${stack.url}/admin/keys/${tenant.keyId}`, { method: 'DELETE', headers: { authorization: `Bearer ${stack.config.ADMIN_TOKEN}` } });
    assert.equal(revoked.status, 204);
    const at = Date.now();
    let status = 0;
    while ((status = (await models(peerUrl)).status) !== 401 && Date.now() - at < 1_000) await new Promise((r) => setTimeout(r, 20));
    assert.equal(status, 401, 'refused by the second instance within one second of the revocation');
    const res = await submit(peerUrl, tenant.apiKey);
    assert.equal(res.status, 401);
    assert.equal((await models(stack.url)).status, 401);
  }));

test("a key's rate limit is one budget across instances", () =>
  check(async () => {
    // 1 request per second with a burst of 6: however the requests are spread over the two instances,
    // about 6 pass in the first moment (a request or two more if the bucket refills meanwhile).
    const key = await stack.backbone.admin.apiKeys.issueApiKey((await stack.tenant(1)).namespaceId, { rateLimitRps: 1, rateLimitBurst: 6 });
    const statuses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => fetch(`${i % 2 === 0 ? stack.url : peerUrl}/v1/models`, { headers: { authorization: `Bearer ${key.secret}` } }).then((r) => r.status)),
    );
    const passed = statuses.filter((s) => s === 200).length;
    const limited = statuses.filter((s) => s === 429).length;
    assert.equal(passed + limited, 20);
    assert.ok(passed >= 6 && passed <= 8, `${passed} passed: one bucket of 6 shared by both instances (two buckets would let 12 through)`);
  }));
