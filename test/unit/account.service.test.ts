// Fast tier (docs/testing.md): AccountService's rules on in-memory fakes of the gate's tables and of its
// Redis rate limits, with the real namespace and key services (on the same fakes) behind it. The same
// service on the real engines: test/integration/accounts.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AccountService, type AccountPrincipal } from '../../src/gate/account.service.js';
import { AccountsAdminService } from '../../src/gate/accounts-admin.service.js';
import { ApiKeysAdminService } from '../../src/gate/api-keys-admin.service.js';
import { AppError } from '../../src/errors.js';
import { FakeGateDatabase } from '../fakes/gate-tables.js';
import { FakeAccountStore, FakeRateLimits } from '../fakes/account.store.js';
import { FakeAccountsAdminStore } from '../fakes/accounts-admin.store.js';
import { FakeApiKeysAdminStore } from '../fakes/api-keys-admin.store.js';

const refused = (code: string) => (e: unknown) => e instanceof AppError && e.code === code;
const PASSWORD = 'correct horse battery staple';
const IP = '198.51.100.7';

function setUp(loginBurst = 100) {
  const db = new FakeGateDatabase();
  const quotas = { namespaces: 5, apiKeys: 5 };
  const service = new AccountService({
    store: new FakeAccountStore(db),
    namespaces: new AccountsAdminService({ store: new FakeAccountsAdminStore(db), quotas }),
    apiKeys: new ApiKeysAdminService({ store: new FakeApiKeysAdminStore(db), quotas }),
    rateLimits: new FakeRateLimits(),
    nonces: { issue: () => Promise.resolve({ nonce: 'n', expiresAt: new Date() }), consume: () => Promise.resolve(false) },
    sessionTtlHours: 1,
    keyRateLimit: { rps: 20, burst: 40 },
    loginLimits: { perMinute: 1, burst: loginBurst, ipPerMinute: 1, ipBurst: 100 },
    siweDomain: null,
    siweNonceTtlSeconds: 300,
  });
  return { db, service };
}

async function signedUp(service: AccountService, email = 'Alice@Example.com'): Promise<{ principal: AccountPrincipal; token: string }> {
  const { token } = await service.signUp({ email, password: PASSWORD }, IP);
  return { principal: await service.authenticate(`Bearer ${token}`), token };
}

test('sign-up stores the email normalised and a hash, never the password, and opens a session', async () => {
  const { db, service } = setUp();
  const { account } = await service.signUp({ email: ' Alice@Example.com ', password: PASSWORD }, IP);
  assert.equal(account.email, 'alice@example.com');
  const stored = db.state.accounts.get(account.id)!;
  assert.ok(stored.password_hash && !stored.password_hash.includes(PASSWORD));
  assert.equal(db.state.sessions.size, 1);
  await assert.rejects(service.signUp({ email: 'bob@example.com', password: 'short' }, IP), refused('invalid_request'));
});

test('a taken email is refused (409 email_taken) and no session is opened for it', async () => {
  const { db, service } = setUp();
  await service.signUp({ email: 'alice@example.com', password: PASSWORD }, IP);
  await assert.rejects(service.signUp({ email: 'ALICE@example.com', password: PASSWORD }, IP), refused('email_taken'));
  assert.equal(db.state.accounts.size, 1);
  assert.equal(db.state.sessions.size, 1);
});

test('a wrong password and an unknown email are the same 401; attempts per email are limited', async () => {
  const { service } = setUp(2);
  await service.signUp({ email: 'alice@example.com', password: PASSWORD }, IP);
  await assert.rejects(service.logIn({ email: 'alice@example.com', password: 'wrong password!!' }, IP), refused('invalid_credentials'));
  await assert.rejects(service.logIn({ email: 'nobody@example.com', password: PASSWORD }, IP), refused('invalid_credentials'));
  await service.logIn({ email: 'Alice@example.com', password: PASSWORD }, IP);
  await assert.rejects(service.logIn({ email: 'alice@example.com', password: PASSWORD }, IP), refused('too_many_attempts'));
});

test('a session works until log-out; anything else is a 401', async () => {
  const { service } = setUp();
  const { principal, token } = await signedUp(service);
  assert.equal((await service.profile(principal)).email, 'alice@example.com');
  await service.logOut(principal);
  await assert.rejects(service.authenticate(`Bearer ${token}`), refused('invalid_session'));
  await assert.rejects(service.authenticate('Bearer rk_not_a_session'), refused('invalid_session'));
  await assert.rejects(service.authenticate(undefined), refused('invalid_session'));
});

test('another account\'s namespace is not found, for every operation, and nothing of it changes', async () => {
  const { db, service } = setUp();
  const alice = (await signedUp(service)).principal;
  const bob = (await signedUp(service, 'bob@example.com')).principal;
  const ns = await service.createNamespace(alice, 'prod');
  const { key } = await service.issueApiKey(alice, ns.id, {});
  await assert.rejects(service.renameNamespace(bob, ns.id, 'mine'), refused('not_found'));
  await assert.rejects(service.deleteNamespace(bob, ns.id), refused('not_found'));
  await assert.rejects(service.issueApiKey(bob, ns.id, {}), refused('not_found'));
  await assert.rejects(service.listApiKeys(bob, ns.id), refused('not_found'));
  await assert.rejects(service.revokeApiKey(bob, ns.id, key.id), refused('not_found'));
  await assert.rejects(service.rotateApiKey(bob, ns.id, key.id), refused('not_found'));
  assert.deepEqual(await service.listNamespaces(bob), []);
  assert.equal(db.liveNamespace(ns.id)!.name, 'prod');
  assert.equal(db.apiKeyRow(key.id)!.revoked_at, null);
  assert.equal(db.state.apiKeys.size, 1);
});

test('a key is revoked or rotated only through the namespace it belongs to', async () => {
  const { db, service } = setUp();
  const alice = (await signedUp(service)).principal;
  const prod = await service.createNamespace(alice, 'prod');
  const dev = await service.createNamespace(alice, 'dev');
  const { key } = await service.issueApiKey(alice, prod.id, {});
  await assert.rejects(service.revokeApiKey(alice, dev.id, key.id), refused('not_found'));
  await assert.rejects(service.rotateApiKey(alice, dev.id, key.id), refused('not_found'));
  assert.equal(db.apiKeyRow(key.id)!.revoked_at, null);
  await service.revokeApiKey(alice, prod.id, key.id);
  assert.notEqual(db.apiKeyRow(key.id)!.revoked_at, null);
});

test('an owner may give a key a lower rate limit than the platform\'s, never a higher one', async () => {
  const { db, service } = setUp();
  const alice = (await signedUp(service)).principal;
  const ns = await service.createNamespace(alice, 'prod');
  await assert.rejects(service.issueApiKey(alice, ns.id, { rateLimitRps: 21 }), refused('invalid_request'));
  await assert.rejects(service.issueApiKey(alice, ns.id, { rateLimitBurst: 41 }), refused('invalid_request'));
  assert.equal(db.state.apiKeys.size, 0);
  const { key } = await service.issueApiKey(alice, ns.id, { rateLimitRps: 20, rateLimitBurst: 40 });
  assert.deepEqual([key.rate_limit_rps, key.rate_limit_burst], [20, 40]);
});

test('Sign-In with Ethereum without SIWE_DOMAIN is refused before anything else', async () => {
  const { service } = setUp();
  await assert.rejects(service.siweNonce(IP), refused('siwe_disabled'));
  await assert.rejects(service.siweSignIn({ message: 'x', signature: '0x' }), refused('siwe_disabled'));
});
