// Fast tier (docs/testing.md): AuthService's rules on in-memory fakes: the key's lookup (through the real
// catalogue on a fake store), revoked and expired keys, the rate-limit decisions, and the degraded path
// while Redis is unreachable. The same service on the real engines: test/integration/api-keys.test.ts,
// admin.test.ts (revocation across instances), redis-outage tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { AuthService } from '../../src/cloud/auth.service.js';
import { Catalog } from '../../src/catalog/catalog.service.js';
import { generateApiKey } from '../../src/domain/api-keys.js';
import { AppError } from '../../src/errors.js';
import { apiKeyRow, FakeCatalogStore, namespaceRow } from '../fakes/catalog.store.js';
import { FakeAuthStore, FakeRateLimits, redisUnreachable } from '../fakes/auth.store.js';
import type { ApiKeyRow } from '../../src/postgres/api-keys.repository.js';

const LIMITS = { defaultRps: 10, defaultBurst: 20, accountRps: 50, accountBurst: 100 };

function setUp(key: Partial<ApiKeyRow> = {}, opts: { redisReady?: () => boolean } = {}) {
  const catalogStore = new FakeCatalogStore();
  const { secret, hash } = generateApiKey();
  catalogStore.db.state.namespaces.set('ns-1', namespaceRow('ns-1', { account_id: 'acct-1' }));
  catalogStore.db.state.apiKeys.set(hash.toString('hex'), apiKeyRow('key-1', 'ns-1', key));
  const catalog = new Catalog(catalogStore);
  const store = new FakeAuthStore();
  const rateLimits = new FakeRateLimits();
  const service = new AuthService({ store, catalog, rateLimits, ...LIMITS, ...opts });
  return { secret, hash: hash.toString('hex'), catalogStore, catalog, store, rateLimits, service };
}

const refusedAs = (code: string, message?: RegExp) => (e: unknown) => e instanceof AppError && e.code === code && (!message || message.test(e.message));

test('a bearer key is looked up by its hash and answered as its principal', async () => {
  const { secret, service } = setUp({ rate_limit_rps: 3, monthly_cap_micro: 1000 });
  const p = await service.authenticate(`Bearer ${secret}`);
  assert.deepEqual({ keyId: p.keyId, namespaceId: p.namespaceId, rps: p.rateLimitRps, cap: p.monthlyCapMicro }, { keyId: 'key-1', namespaceId: 'ns-1', rps: 3, cap: 1000 });
  assert.equal((await service.authenticate(`bearer   ${secret}`)).keyId, 'key-1', 'the scheme is case-insensitive');
});

test('no key, another scheme, or a string that is not a key: refused without a lookup', async () => {
  const { secret, catalogStore, service } = setUp();
  await assert.rejects(service.authenticate(undefined), refusedAs('invalid_api_key', /did not provide an API key/));
  await assert.rejects(service.authenticate(`Basic ${secret}`), refusedAs('invalid_api_key', /did not provide/));
  await assert.rejects(service.authenticate('Bearer not-a-key'), refusedAs('invalid_api_key', /Incorrect API key/));
  assert.deepEqual(catalogStore.db.calls, []);
});

test('an unknown key is refused', async () => {
  const { service } = setUp();
  await assert.rejects(service.authenticate(`Bearer ${generateApiKey().secret}`), refusedAs('invalid_api_key', /Incorrect API key/));
});

test('a revoked key is refused from the announcement of its revocation on', async () => {
  const { secret, hash, catalogStore, catalog, service } = setUp();
  await service.authenticate(`Bearer ${secret}`);
  catalogStore.db.state.apiKeys.get(hash)!.revoked_at = new Date();
  catalog.onChange({ table: 'api_keys', key: hash });
  await assert.rejects(service.authenticate(`Bearer ${secret}`), refusedAs('invalid_api_key'));
});

test('a key that expires while its copy is kept is refused at once, saying it expired', async () => {
  const { secret, service } = setUp({ expires_at: new Date(Date.now() + 40) });
  await service.authenticate(`Bearer ${secret}`); // kept in memory, with its expiry
  await sleep(50);
  await assert.rejects(service.authenticate(`Bearer ${secret}`), refusedAs('invalid_api_key', /expired/));
});

test('one shared decision per request: the key\'s own bucket (its limits, else the defaults) and its account\'s', async () => {
  const { secret, rateLimits, service } = setUp({ rate_limit_rps: 4 });
  await service.enforceRateLimit(await service.authenticate(`Bearer ${secret}`));
  assert.deepEqual(rateLimits.calls, [
    {
      touchId: 'key-1',
      buckets: [
        { id: 'key-1', ratePerSecond: 4, burst: 20 }, // no burst of its own: the larger of its rate and the default burst
        { id: 'account:acct-1', ratePerSecond: 50, burst: 100 },
      ],
    },
  ]);
  const other = setUp();
  await other.service.enforceRateLimit(await other.service.authenticate(`Bearer ${other.secret}`));
  assert.deepEqual(other.rateLimits.calls[0]!.buckets[0], { id: 'key-1', ratePerSecond: 10, burst: 20 });
});

test('an empty bucket refuses with Retry-After in whole seconds (at least one), and touches nothing', async () => {
  const { secret, store, rateLimits, service } = setUp();
  const p = await service.authenticate(`Bearer ${secret}`);
  rateLimits.answer({ allowed: false, retryAfterMs: 1_200, touch: true });
  await assert.rejects(service.enforceRateLimit(p), (e: unknown) => e instanceof AppError && e.code === 'rate_limit_exceeded' && e.details.retryAfterSeconds === 2);
  rateLimits.answer({ allowed: false, retryAfterMs: 0 }); // a bucket refilling as the answer left
  await assert.rejects(service.enforceRateLimit(p), (e: unknown) => e instanceof AppError && e.details.retryAfterSeconds === 1);
  assert.equal(store.db.state.lastUsed.size, 0);
});

test('the key\'s last use is recorded when the shared buckets say so, and a failed record fails nothing', async () => {
  const { secret, store, rateLimits, service } = setUp();
  const p = await service.authenticate(`Bearer ${secret}`);
  await service.enforceRateLimit(p);
  assert.equal(store.db.state.lastUsed.size, 0, 'not asked to touch');
  rateLimits.answer({ touch: true });
  await service.enforceRateLimit(p);
  assert.ok(store.db.state.lastUsed.has('key-1'));
  store.db.failNext('touchApiKey');
  rateLimits.answer({ touch: true });
  await service.enforceRateLimit(p);
  await sleep(0);
});

test('a key whose namespace is gone is refused before any bucket is taken', async () => {
  const { secret, catalogStore, rateLimits, service } = setUp();
  const p = await service.authenticate(`Bearer ${secret}`);
  catalogStore.db.state.namespaces.clear();
  await assert.rejects(service.enforceRateLimit(p), refusedAs('invalid_api_key'));
  assert.equal(rateLimits.calls.length, 0);
});

test('Redis known to be down: this process\'s buckets decide, without a Redis call, with the same limits', async () => {
  const { secret, rateLimits, service } = setUp({ rate_limit_rps: 1, rate_limit_burst: 2 }, { redisReady: () => false });
  const p = await service.authenticate(`Bearer ${secret}`);
  await service.enforceRateLimit(p);
  await service.enforceRateLimit(p);
  await assert.rejects(service.enforceRateLimit(p), refusedAs('rate_limit_exceeded'), 'the burst of 2 is spent');
  assert.equal(rateLimits.calls.length, 0);
});

test('Redis found unreachable by the call: the request is decided locally, not refused', async () => {
  const { secret, rateLimits, service } = setUp({ rate_limit_rps: 1, rate_limit_burst: 1 });
  const p = await service.authenticate(`Bearer ${secret}`);
  rateLimits.fail(redisUnreachable());
  await service.enforceRateLimit(p);
  await assert.rejects(service.enforceRateLimit(p), refusedAs('rate_limit_exceeded'), 'the local bucket applies the key\'s limit');
  rateLimits.fail(null);
  await service.enforceRateLimit(p); // the shared buckets again, as soon as Redis answers
  assert.equal(rateLimits.calls.length, 3);
});

test('an error reply from Redis (not an outage) is not hidden by the local buckets', async () => {
  const { secret, rateLimits, service } = setUp();
  const p = await service.authenticate(`Bearer ${secret}`);
  rateLimits.fail(new Error('NOSCRIPT No matching script'));
  await assert.rejects(service.enforceRateLimit(p), /NOSCRIPT/);
});
