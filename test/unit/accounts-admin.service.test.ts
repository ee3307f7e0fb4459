// Fast tier (docs/testing.md): AccountsAdminService's rules on in-memory fakes of the gate's tables. The
// same service on the real engines: test/integration/admin.test.ts, accounts.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { AccountsAdminService } from '../../src/gate/accounts-admin.service.js';
import { ApiKeysAdminService } from '../../src/gate/api-keys-admin.service.js';
import { AppError } from '../../src/errors.js';
import { FakeGateDatabase } from '../fakes/gate-tables.js';
import { FakeAccountsAdminStore } from '../fakes/accounts-admin.store.js';
import { FakeApiKeysAdminStore, FakeKeyCache } from '../fakes/api-keys-admin.store.js';

const refused = (code: string) => (e: unknown) => e instanceof AppError && e.code === code;

function setUp(quotas = { namespaces: 3, apiKeys: 10 }) {
  const db = new FakeGateDatabase();
  const catalog = new FakeKeyCache();
  const accounts = new AccountsAdminService({ store: new FakeAccountsAdminStore(db), catalog, quotas });
  const apiKeys = new ApiKeysAdminService({ store: new FakeApiKeysAdminStore(db), catalog, quotas });
  return { db, catalog, accounts, apiKeys };
}

test('an account name is trimmed; an empty one is refused and nothing is written', async () => {
  const { db, accounts } = setUp();
  assert.equal((await accounts.createAccount('  acme  ')).name, 'acme');
  assert.throws(() => accounts.createAccount('   '), refused('invalid_request'));
  assert.equal(db.state.accounts.size, 1);
});

test('namespace names follow the name rule, networks are known ones, and the account must exist', async () => {
  const { db, accounts } = setUp();
  const a = await accounts.createAccount('acme');
  for (const bad of ['', 'Has Space', 'x'.repeat(200), '-lead']) await assert.rejects(accounts.createNamespace(a.id, bad), refused('invalid_request'), bad);
  await assert.rejects(accounts.createNamespace(a.id, 'ok', 'moonnet' as 'mainnet'), refused('invalid_request'));
  await assert.rejects(accounts.createNamespace(randomUUID(), 'ok'), refused('not_found'));
  assert.equal(db.state.namespaces.size, 0);
  const ns = await accounts.createNamespace(a.id, 'prod', 'testnet');
  assert.deepEqual([ns.name, ns.network, ns.account_id], ['prod', 'testnet', a.id]);
});

test('an account holds at most its quota of live namespaces; a deleted one frees its place', async () => {
  const { db, accounts } = setUp({ namespaces: 2, apiKeys: 10 });
  const a = await accounts.createAccount('acme');
  const first = await accounts.createNamespace(a.id, 'one');
  await accounts.createNamespace(a.id, 'two');
  await assert.rejects(accounts.createNamespace(a.id, 'three'), refused('namespace_limit_reached'));
  assert.equal(db.state.namespaces.size, 2);
  await accounts.deleteNamespace(first.id);
  await accounts.createNamespace(a.id, 'three');
});

test('a name the account already has is refused on create and on rename (409 name_taken); unknown namespaces are not found', async () => {
  const { accounts } = setUp();
  const a = await accounts.createAccount('acme');
  const b = await accounts.createAccount('other');
  await accounts.createNamespace(a.id, 'prod');
  const dev = await accounts.createNamespace(a.id, 'dev');
  await accounts.createNamespace(b.id, 'prod'); // another account's names are its own
  await assert.rejects(accounts.createNamespace(a.id, 'prod'), refused('name_taken'));
  await assert.rejects(accounts.renameNamespace(dev.id, 'prod'), refused('name_taken'));
  await assert.rejects(accounts.renameNamespace(dev.id, 'Bad Name'), refused('invalid_request'));
  await assert.rejects(accounts.renameNamespace(randomUUID(), 'fine'), refused('not_found'));
  assert.equal((await accounts.renameNamespace(dev.id, 'staging')).name, 'staging');
});

test('a namespace holding credits (available or held) is not deleted, and keeps its keys', async () => {
  for (const kind of ['ns_available', 'ns_held']) {
    const { db, accounts, apiKeys } = setUp();
    const a = await accounts.createAccount('acme');
    const ns = await accounts.createNamespace(a.id, 'prod');
    const { key } = await apiKeys.issueApiKey(ns.id);
    db.setBalance(kind, ns.id, 1);
    await assert.rejects(accounts.deleteNamespace(ns.id), refused('namespace_not_empty'), kind);
    assert.ok(db.liveNamespace(ns.id), 'still live');
    assert.equal(db.apiKeyRow(key.id)!.revoked_at, null, 'its key still works');
  }
});

test('a namespace with jobs not finished is not deleted (409 namespace_busy)', async () => {
  const { db, accounts } = setUp();
  const a = await accounts.createAccount('acme');
  const ns = await accounts.createNamespace(a.id, 'prod');
  db.state.unfinishedJobs.set(ns.id, 2);
  await assert.rejects(accounts.deleteNamespace(ns.id), refused('namespace_busy'));
  assert.ok(db.liveNamespace(ns.id));
});

test('deleting a namespace revokes every key with it, after locking its ledger, and the key cache forgets them', async () => {
  const { db, catalog, accounts, apiKeys } = setUp();
  const a = await accounts.createAccount('acme');
  const ns = await accounts.createNamespace(a.id, 'prod');
  const keys = [await apiKeys.issueApiKey(ns.id), await apiKeys.issueApiKey(ns.id)];
  db.calls.length = 0;
  await accounts.deleteNamespace(ns.id);
  assert.equal(db.liveNamespace(ns.id), null);
  for (const { key } of keys) assert.notEqual(db.apiKeyRow(key.id)!.revoked_at, null);
  assert.equal(catalog.forgotten.length, 2);
  assert.ok(db.calls.indexOf('lockLedger') < db.calls.indexOf('credits'), 'credits are read under the ledger lock');
  assert.ok(db.calls.indexOf('markNamespaceDeleted') < db.calls.indexOf('revokeNamespaceApiKeys'), 'marked before its keys are revoked');
  await assert.rejects(accounts.deleteNamespace(ns.id), refused('not_found'));
});

test('a deletion whose key revocation fails is not made: the namespace stays live, its keys work, the cache keeps them', async () => {
  const { db, catalog, accounts, apiKeys } = setUp();
  const a = await accounts.createAccount('acme');
  const ns = await accounts.createNamespace(a.id, 'prod');
  const { key } = await apiKeys.issueApiKey(ns.id);
  db.failNext('revokeNamespaceApiKeys');
  await assert.rejects(accounts.deleteNamespace(ns.id), /revokeNamespaceApiKeys failed/);
  assert.ok(db.liveNamespace(ns.id), 'the mark rolled back');
  assert.equal(db.apiKeyRow(key.id)!.revoked_at, null);
  assert.deepEqual(catalog.forgotten, []);
});
