// Fast tier (docs/testing.md): the catalogue's rules on an in-memory fake of its store: what is kept, what
// a change drops, and that a lookup overtaken by a change is not kept. The same catalogue on the real
// engines (NOTIFY from PostgreSQL's triggers): test/integration/admin.test.ts, api-keys.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Catalog, retentionHoursFor } from '../../src/catalog/catalog.service.js';
import { apiKeyRow, FakeCatalogStore, modelRow, namespaceRow } from '../fakes/catalog.store.js';

const HASH = 'ab'.repeat(32);

function setUp(ttlMs = 60_000) {
  const store = new FakeCatalogStore();
  store.db.state.models.set('llama', modelRow('llama'));
  store.db.state.aliases.set('llama-latest', 'llama');
  store.db.state.namespaces.set('ns-1', namespaceRow('ns-1'));
  store.db.state.apiKeys.set(HASH, apiKeyRow('key-1', 'ns-1', { rate_limit_rps: 5, expires_at: new Date(Date.now() + 3_600_000) }));
  return { store, catalog: new Catalog(store, ttlMs) };
}

const reads = (store: FakeCatalogStore, operation: string) => store.db.calls.filter((c) => c === operation).length;

test('a row read once is served from memory after: one store lookup per model, namespace and key', async () => {
  const { store, catalog } = setUp();
  for (let i = 0; i < 3; i++) {
    assert.equal((await catalog.model('llama'))?.name, 'llama');
    assert.equal((await catalog.namespace('ns-1'))?.id, 'ns-1');
    assert.equal((await catalog.apiKey(HASH))?.keyId, 'key-1');
  }
  assert.deepEqual(store.db.calls, ['model', 'namespace', 'activeApiKey']);
});

test('a key is seen by requests as its principal: namespace, limits and expiry in ms', async () => {
  const { store, catalog } = setUp();
  const row = store.db.state.apiKeys.get(HASH)!;
  assert.deepEqual(await catalog.apiKey(HASH), {
    keyId: 'key-1',
    namespaceId: 'ns-1',
    rateLimitRps: 5,
    rateLimitBurst: null,
    monthlyCapMicro: null,
    expiresAt: row.expires_at!.getTime(),
  });
});

test('a model is found by an alias, and kept under the name the request used', async () => {
  const { store, catalog } = setUp();
  assert.equal((await catalog.model('llama-latest'))?.name, 'llama');
  assert.equal((await catalog.model('llama-latest'))?.name, 'llama');
  assert.equal(reads(store, 'model'), 1);
});

test('unknown rows are not kept: each lookup of an unknown name or key asks the store again', async () => {
  const { store, catalog } = setUp();
  for (let i = 0; i < 3; i++) {
    assert.equal(await catalog.model('nope'), null);
    assert.equal(await catalog.apiKey('cd'.repeat(32)), null);
  }
  assert.equal(reads(store, 'model'), 3);
  assert.equal(reads(store, 'activeApiKey'), 3);
});

test('an announced key change drops that key only: a revoked key is refused at the next lookup', async () => {
  const { store, catalog } = setUp();
  await catalog.apiKey(HASH);
  await catalog.namespace('ns-1');
  store.db.state.apiKeys.get(HASH)!.revoked_at = new Date();
  assert.ok(await catalog.apiKey(HASH), 'before the announcement the copy stands');
  catalog.onChange({ table: 'api_keys', key: HASH });
  assert.equal(await catalog.apiKey(HASH), null);
  await catalog.namespace('ns-1');
  assert.equal(reads(store, 'namespace'), 1, 'the namespace copy was not dropped');
});

test('the instance that revokes a key forgets it at once (forgetApiKeys)', async () => {
  const { store, catalog } = setUp();
  await catalog.apiKey(HASH);
  store.db.state.apiKeys.delete(HASH);
  catalog.forgetApiKeys([HASH]);
  assert.equal(await catalog.apiKey(HASH), null);
});

test('a model change drops every model copy, aliases included; a namespace change drops that namespace', async () => {
  const { store, catalog } = setUp();
  await catalog.model('llama');
  await catalog.model('llama-latest');
  await catalog.namespace('ns-1');
  store.db.state.models.set('llama', modelRow('llama', { input_price_micro: 9 }));
  store.db.state.namespaces.set('ns-1', namespaceRow('ns-1', { subcloud: 'eu' }));
  catalog.onChange({ table: 'models', key: 'llama' });
  catalog.onChange({ table: 'namespaces', key: 'ns-1' });
  assert.equal((await catalog.model('llama-latest'))?.input_price_micro, 9, 'repriced under its alias too');
  assert.equal((await catalog.model('llama'))?.input_price_micro, 9);
  assert.equal((await catalog.namespace('ns-1'))?.subcloud, 'eu');
});

test('a lost listening connection drops everything (changes may have been missed)', async () => {
  const { store, catalog } = setUp();
  await Promise.all([catalog.model('llama'), catalog.namespace('ns-1'), catalog.apiKey(HASH)]);
  catalog.onChange({ table: 'lost' });
  await Promise.all([catalog.model('llama'), catalog.namespace('ns-1'), catalog.apiKey(HASH)]);
  assert.deepEqual([reads(store, 'model'), reads(store, 'namespace'), reads(store, 'activeApiKey')], [2, 2, 2]);
});

test('a lookup on its way when a change is announced answers but is not kept (its row may predate the change)', async () => {
  const { store, catalog } = setUp();
  const release = store.hold('activeApiKey');
  const inFlight = catalog.apiKey(HASH);
  await sleep(0); // the lookup has read the row and waits
  store.db.state.apiKeys.get(HASH)!.revoked_at = new Date();
  catalog.onChange({ table: 'api_keys', key: HASH });
  release();
  assert.equal((await inFlight)?.keyId, 'key-1', 'that request began before the revocation');
  assert.equal(await catalog.apiKey(HASH), null, 'the row read before the change was kept');
});

test('copies expire after the catalogue\'s time to live', async () => {
  const { store, catalog } = setUp(20);
  await catalog.model('llama');
  await catalog.model('llama');
  assert.equal(reads(store, 'model'), 1);
  await sleep(30);
  await catalog.model('llama');
  assert.equal(reads(store, 'model'), 2);
});

test('a namespace\'s retention class: the zero plan stores nothing, a gone namespace gets the standard hours', async () => {
  const { store, catalog } = setUp();
  store.db.state.namespaces.set('ns-zero', namespaceRow('ns-zero', { retention_plan: 'zero' }));
  const hoursOf = retentionHoursFor(catalog, 72);
  assert.equal(await hoursOf('ns-1'), 72);
  assert.equal(await hoursOf('ns-zero'), null);
  assert.equal(await hoursOf('ns-gone'), 72);
});
