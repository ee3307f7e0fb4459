// Fast tier (docs/testing.md): ApiKeysAdminService's rules on in-memory fakes of the gate's tables. The
// same service on the real engines: test/integration/api-keys.test.ts, admin.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { ApiKeysAdminService } from '../../src/gate/api-keys-admin.service.js';
import { AppError } from '../../src/errors.js';
import { FakeGateDatabase } from '../fakes/gate-tables.js';
import { FakeApiKeysAdminStore, FakeKeyCache } from '../fakes/api-keys-admin.store.js';

const refused = (code: string) => (e: unknown) => e instanceof AppError && e.code === code;

function setUp(apiKeys = 10) {
  const db = new FakeGateDatabase();
  const catalog = new FakeKeyCache();
  const service = new ApiKeysAdminService({ store: new FakeApiKeysAdminStore(db), catalog, quotas: { apiKeys } });
  const account = db.addAccount('acme');
  const ns = db.addNamespace(account.id, 'prod');
  return { db, catalog, service, account, ns };
}

test('a key is stored by its hash with its settings; the secret is only in the answer', async () => {
  const { db, service, ns } = setUp();
  const expiresAt = new Date(Date.now() + 86_400_000);
  const { key, secret } = await service.issueApiKey(ns.id, { name: 'ci', rateLimitRps: 5, rateLimitBurst: 10, monthlyCapCredits: 2.5, expiresAt });
  const stored = db.state.apiKeys.get(key.id)!;
  assert.notEqual(stored.key_hash, secret);
  assert.ok(!JSON.stringify([...db.state.apiKeys.values()]).includes(secret), 'the secret is stored nowhere');
  assert.equal(stored.key_hash, createHash('sha256').update(secret).digest('hex'));
  assert.ok(secret.startsWith(key.key_prefix));
  assert.deepEqual([key.name, key.rate_limit_rps, key.rate_limit_burst, key.monthly_cap_micro, key.expires_at], ['ci', 5, 10, 2_500_000, expiresAt]);
});

test('expiry in the past, or a monthly cap out of bounds, is refused before anything is written', async () => {
  const { db, service, ns } = setUp();
  await assert.rejects(service.issueApiKey(ns.id, { expiresAt: new Date(Date.now() - 1) }), refused('invalid_request'));
  for (const cap of [-1, Number.NaN, 1e9 + 1]) await assert.rejects(service.issueApiKey(ns.id, { monthlyCapCredits: cap }), refused('invalid_request'), String(cap));
  assert.equal(db.state.apiKeys.size, 0);
});

test('a key needs a live namespace', async () => {
  const { db, service, ns } = setUp();
  await assert.rejects(service.issueApiKey(randomUUID()), refused('not_found'));
  db.state.namespaces.get(ns.id)!.deleted = true;
  await assert.rejects(service.issueApiKey(ns.id), refused('not_found'));
  await assert.rejects(service.listApiKeys(ns.id), refused('not_found'));
});

test('an account holds at most its quota of live keys, counted over its namespaces; revoking one frees a place', async () => {
  const { db, service, account, ns } = setUp(2);
  const other = db.addNamespace(account.id, 'dev');
  const first = await service.issueApiKey(ns.id);
  await service.issueApiKey(other.id);
  await assert.rejects(service.issueApiKey(ns.id), refused('api_key_limit_reached'));
  assert.equal(db.state.apiKeys.size, 2);
  await service.revokeApiKey(first.key.id);
  await service.issueApiKey(ns.id);
});

test('rotating a key at the quota works: the key it replaces does not count', async () => {
  const { db, service, ns } = setUp(1);
  const { key } = await service.issueApiKey(ns.id);
  const fresh = await service.rotateApiKey(key.id);
  assert.notEqual(db.apiKeyRow(key.id)!.revoked_at, null);
  assert.equal(db.apiKeyRow(fresh.key.id)!.revoked_at, null);
});

test('rotation keeps the settings and the month\'s spend, revokes the old key and the cache forgets it', async () => {
  const { db, catalog, service, ns } = setUp();
  const { key: old } = await service.issueApiKey(ns.id, { name: 'ci', rateLimitRps: 5, rateLimitBurst: 10, monthlyCapCredits: 3 });
  db.state.monthlySpend.set(old.id, 1_234);
  const { key } = await service.rotateApiKey(old.id);
  assert.deepEqual([key.name, key.rate_limit_rps, key.rate_limit_burst, key.monthly_cap_micro], ['ci', 5, 10, 3_000_000]);
  assert.equal(db.state.monthlySpend.get(key.id), 1_234);
  assert.deepEqual(catalog.forgotten, [db.state.apiKeys.get(old.id)!.key_hash]);
  await assert.rejects(service.rotateApiKey(old.id), refused('not_found'), 'a revoked key is not rotated again');
});

test('a rotation whose spend carry fails leaves the old key working (its revocation rolls back)', async () => {
  const { db, catalog, service, ns } = setUp();
  const { key: old } = await service.issueApiKey(ns.id);
  db.failNext('carryMonthlySpend');
  await assert.rejects(service.rotateApiKey(old.id), /carryMonthlySpend failed/);
  assert.equal(db.apiKeyRow(old.id)!.revoked_at, null);
  assert.deepEqual(catalog.forgotten, []);
});

test('revoking forgets the key in the cache at once; a second revocation is not found', async () => {
  const { db, catalog, service, ns } = setUp();
  const { key } = await service.issueApiKey(ns.id);
  await service.revokeApiKey(key.id);
  assert.deepEqual(catalog.forgotten, [db.state.apiKeys.get(key.id)!.key_hash]);
  await assert.rejects(service.revokeApiKey(key.id), refused('not_found'));
  assert.equal((await service.listApiKeys(ns.id)).length, 1, 'the revoked key is still listed');
});
