// Issue 9, limits that minting cannot get around, on the real engines: namespaces and API keys per
// account, a rate limit shared by all of an account's keys, and a monthly cap that survives a rotation.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestStack, TEST_MODEL } from '../helpers/stack.js';
import { requestJson } from '../helpers/http.js';
import { promptTokenUpperBound, worstCaseCost } from '../../src/domain/pricing.js';
import { MICRO } from '../../src/errors.js';

const MAX_NAMESPACES = 3;
const MAX_KEYS = 4;

let stack: TestStack;
let adminToken: string;

before(async () => {
  stack = await TestStack.start({
    config: { ACCOUNT_MAX_NAMESPACES: MAX_NAMESPACES, ACCOUNT_MAX_API_KEYS: MAX_KEYS, ACCOUNT_RATE_LIMIT_RPS: 1, ACCOUNT_RATE_LIMIT_BURST: 3 },
  });
  adminToken = stack.config.ADMIN_TOKEN!;
  await stack.model();
  await stack.node();
});

after(async () => {
  await stack.close();
});

const check = (fn: () => Promise<void>) => stack.check(fn);

async function signUp(): Promise<string> {
  const r = await requestJson(stack.url, 'POST', '/account/signup', { email: `limits-${Date.now()}-${Math.random().toString(36).slice(2)}@example.com`, password: 'correct horse battery' });
  assert.equal(r.status, 201, r.text);
  return String(r.body.token);
}

test('namespaces per account are limited, on the account API and the admin API alike; deleting one makes room', () =>
  check(async () => {
    const session = await signUp();
    const ids: string[] = [];
    for (let i = 0; i < MAX_NAMESPACES; i++) {
      const r = await requestJson(stack.url, 'POST', '/account/namespaces', { name: `ns-${i}` }, session);
      assert.equal(r.status, 201, r.text);
      ids.push(String(r.body.id));
    }
    const over = await requestJson(stack.url, 'POST', '/account/namespaces', { name: 'one-too-many' }, session);
    assert.equal(over.status, 403, over.text);
    assert.equal((over.body.error as { code: string }).code, 'namespace_limit_reached');
    const accountId = String((await requestJson(stack.url, 'GET', '/account', undefined, session)).body.id);
    const viaAdmin = await requestJson(stack.url, 'POST', `/admin/accounts/${accountId}/namespaces`, { name: 'admin-made' }, adminToken);
    assert.equal(viaAdmin.status, 403, viaAdmin.text);
    assert.equal((await requestJson(stack.url, 'DELETE', `/account/namespaces/${ids[0]}`, undefined, session)).status, 204);
    assert.equal((await requestJson(stack.url, 'POST', '/account/namespaces', { name: 'after-delete' }, session)).status, 201);
  }));

test('API keys per account are limited across its namespaces, even when requested all at once; rotation is allowed at the limit; revoking makes room', () =>
  check(async () => {
    const session = await signUp();
    const a = String((await requestJson(stack.url, 'POST', '/account/namespaces', { name: 'keys-a' }, session)).body.id);
    const b = String((await requestJson(stack.url, 'POST', '/account/namespaces', { name: 'keys-b' }, session)).body.id);
    const attempts = await Promise.all(
      Array.from({ length: MAX_KEYS + 4 }, (_, i) => requestJson(stack.url, 'POST', `/account/namespaces/${i % 2 ? a : b}/keys`, { name: `k${i}` }, session)),
    );
    const issued = attempts.filter((r) => r.status === 201);
    assert.equal(issued.length, MAX_KEYS, attempts.map((r) => `${r.status} ${r.text}`).join('\n'));
    for (const r of attempts.filter((x) => x.status !== 201)) {
      assert.equal(r.status, 403, r.text);
      assert.equal((r.body.error as { code: string }).code, 'api_key_limit_reached');
    }
    const first = issued[0]!.body as { id: string; namespace_id: string };
    const rotated = await requestJson(stack.url, 'POST', `/account/namespaces/${first.namespace_id}/keys/${first.id}/rotate`, undefined, session);
    assert.equal(rotated.status, 201, rotated.text);
    assert.equal((await requestJson(stack.url, 'POST', `/account/namespaces/${a}/keys`, {}, session)).status, 403);
    const fresh = rotated.body as { id: string; namespace_id: string };
    assert.equal((await requestJson(stack.url, 'DELETE', `/account/namespaces/${fresh.namespace_id}/keys/${fresh.id}`, undefined, session)).status, 204);
    assert.equal((await requestJson(stack.url, 'POST', `/account/namespaces/${a}/keys`, {}, session)).status, 201);
  }));

test("an account's keys share one rate limit: minting keys does not multiply it; another account is not slowed", () =>
  check(async () => {
    const t = await stack.tenant(0); // each key: 1000 rps of its own
    const extra = await Promise.all([1, 2].map(async () => (await stack.backbone.admin.apiKeys.issueApiKey(t.namespaceId, { rateLimitRps: 1000, rateLimitBurst: 1000 })).secret));
    const keys = [t.apiKey, ...extra];
    const answers = [];
    for (let i = 0; i < 9; i++) answers.push(await requestJson(stack.url, 'GET', '/v1/models', undefined, keys[i % keys.length]));
    const allowed = answers.filter((r) => r.status === 200).length;
    // Burst 3 plus at most a token or two refilled at 1 per second while the requests ran.
    assert.ok(allowed >= 3 && allowed <= 5, `${allowed} of 9 allowed`);
    const limited = answers.find((r) => r.status === 429)!;
    assert.equal((limited.body.error as { type: string }).type, 'rate_limit_error');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    const other = await stack.tenant(0);
    assert.equal((await requestJson(stack.url, 'GET', '/v1/models', undefined, other.apiKey)).status, 200);
  }));

test('a rotated key keeps its monthly cap: the month it has spent carries over to the key that replaces it', () =>
  check(async () => {
    const t = await stack.tenant(10);
    const messages = [{ role: 'user' as const, content: 'Spend some credits' }];
    const hold = worstCaseCost({ inputPriceMicro: 10, outputPriceMicro: 20, minChargeMicro: 0, surchargeBps: 0 }, promptTokenUpperBound(messages), 50);
    // Room for one worst case and no more: once a job has been charged anything, the next one must not fit.
    const { key, secret } = await stack.backbone.admin.apiKeys.issueApiKey(t.namespaceId, { rateLimitRps: 100, rateLimitBurst: 100, monthlyCapCredits: hold / MICRO });
    const call = (apiKey: string) => requestJson(stack.url, 'POST', '/v1/chat/completions', { model: TEST_MODEL, messages, max_tokens: 50 }, apiKey);
    const first = await call(secret);
    assert.equal(first.status, 200, first.text);
    const capped = await call(secret);
    assert.equal(capped.status, 402, capped.text);
    assert.equal((capped.body.error as { code: string }).code, 'monthly_cap_reached');

    const rotated = await requestJson(stack.url, 'POST', `/admin/keys/${key.id}/rotate`, undefined, adminToken);
    assert.equal(rotated.status, 201, rotated.text);
    const afterRotation = await call(String(rotated.body.key));
    assert.equal(afterRotation.status, 402, `a rotation must not reset the cap: ${afterRotation.text}`);
    assert.equal((afterRotation.body.error as { code: string }).code, 'monthly_cap_reached');
  }));
