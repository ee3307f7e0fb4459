// The account API (/account) on the real engines: sign-up and log-in by email and password (scrypt),
// Sign-In with Ethereum with a real secp256k1 key, sessions (bearer tokens stored hashed, revoked by
// log-out, never interchangeable with API keys), and an owner's namespaces and keys: create, rename,
// delete (refused while money or work is in it; its keys stop working at once), tenant isolation.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { TestStack, TEST_MODEL } from '../helpers/stack.js';
import { requestJson, type Answer } from '../helpers/http.js';
import { addressOf, checksumAddress, generatePrivateKey, signPersonal } from '../../src/domain/signatures.js';
import { formatSiweMessage } from '../../src/domain/siwe.js';
import { Redis } from 'ioredis';
import { AppError } from '../../src/errors.js';
import { AccountService, type AccountServiceDeps } from '../../src/gate/account.service.js';
import { accountStore } from '../../src/postgres/account.store.js';
import { RedisKeys } from '../../src/redis/client.js';
import { RateLimitRepository } from '../../src/redis/rate-limit.repository.js';
import { SiweNonces } from '../../src/redis/siwe-nonces.repository.js';

const SIWE_DOMAIN = 'app.resultity.test';
const FREE_MODEL = 'test/free';
let stack: TestStack;

before(async () => {
  stack = await TestStack.start({
    config: {
      SIWE_DOMAIN,
      // Per email: three attempts, then one a minute (the rate-limit test needs the bucket to stay empty).
      LOGIN_RATE_BURST: 3,
      LOGIN_RATE_PER_MINUTE: 1,
      // Every request of this file comes from 127.0.0.1: the per-IP budget must not get in the way.
      LOGIN_IP_RATE_BURST: 100_000,
      LOGIN_IP_RATE_PER_MINUTE: 100_000,
    },
  });
  await stack.model();
  await stack.model(FREE_MODEL, 0, 0);
  await stack.node({ models: [TEST_MODEL, FREE_MODEL], latencyMs: 1_500, capacity: 4 });
});

after(async () => {
  await stack.close();
});

const check = (fn: () => Promise<void>) => stack.check(fn);

function call(method: string, path: string, body?: unknown, token?: string): Promise<Answer> {
  return requestJson(stack.url, method, path, body, token);
}

/** Asserts an error answer in the API's shape {error: {message, type, param, code}}; returns the error. */
function assertError(a: Answer, status: number, code: string): { message: string; type: string; param: string | null } {
  assert.equal(a.status, status, a.text);
  assert.deepEqual(Object.keys(a.body), ['error']);
  const e = a.body.error as { message: string; type: string; param: string | null; code: string };
  assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(e.code, code, a.text);
  assert.ok(e.message.length > 0);
  return e;
}

const uniqueEmail = () => `user-${randomBytes(4).toString('hex')}@example.com`;
const PASSWORD = 'a long enough password';

interface Session {
  token: string;
  accountId: string;
}

async function signUp(email = uniqueEmail(), password = PASSWORD): Promise<Session> {
  const a = await call('POST', '/account/signup', { email, password });
  assert.equal(a.status, 201, a.text);
  return { token: a.body.token as string, accountId: (a.body.account as { id: string }).id };
}

async function createNamespace(s: Session, name: string): Promise<string> {
  const a = await call('POST', '/account/namespaces', { name }, s.token);
  assert.equal(a.status, 201, a.text);
  return a.body.id as string;
}

async function issueKey(s: Session, namespaceId: string): Promise<{ id: string; key: string }> {
  const a = await call('POST', `/account/namespaces/${namespaceId}/keys`, { name: 'ci' }, s.token);
  assert.equal(a.status, 201, a.text);
  return { id: a.body.id as string, key: a.body.key as string };
}

async function v1Models(apiKey: string): Promise<number> {
  return (await fetch(`${stack.url}/v1/models`, { headers: { authorization: `Bearer ${apiKey}` } })).status;
}

// ---- Email and password ------------------------------------------------------------------------------

test('sign-up, profile, log-in (any case), log-out: tokens are shown once, stored hashed, and revoked by log-out', () =>
  check(async () => {
    const email = uniqueEmail();
    const up = await call('POST', '/account/signup', { email: `  ${email.toUpperCase()} `, password: PASSWORD, name: 'Ada' });
    assert.equal(up.status, 201, up.text);
    assert.equal(up.headers.get('cache-control'), 'no-store');
    const first = up.body.token as string;
    assert.match(first, /^rs_[A-Za-z0-9_-]{43}$/);
    const account = up.body.account as Record<string, unknown>;
    assert.deepEqual(Object.keys(account).sort(), ['created_at', 'email', 'id', 'name', 'wallet_address']);
    assert.equal(account.email, email, 'the email is stored trimmed and lower-cased');
    assert.equal(account.name, 'Ada');
    assert.ok(!up.text.includes('scrypt'), 'the password hash never leaves the server');

    const me = await call('GET', '/account', undefined, first);
    assert.equal(me.status, 200, me.text);
    assert.equal(me.body.id, account.id);

    const login = await call('POST', '/account/login', { email: email.replace('user', 'USER'), password: PASSWORD });
    assert.equal(login.status, 200, login.text);
    const second = login.body.token as string;
    assert.notEqual(second, first);

    // Only the SHA-256 of a token is stored; the password only as a salted scrypt hash.
    const rows = await stack.db.query<{ token_hash: Buffer }>(`SELECT token_hash FROM account_sessions WHERE account_id = $1 ORDER BY created_at`, [account.id]);
    assert.deepEqual(
      rows.rows.map((r) => r.token_hash.toString('hex')),
      [first, second].map((t) => createHash('sha256').update(t).digest('hex')),
    );
    const stored = await stack.db.query<{ password_hash: string }>(`SELECT password_hash FROM accounts WHERE id = $1`, [account.id]);
    assert.match(stored.rows[0]!.password_hash, /^\$scrypt\$ln=15,r=8,p=1\$/);

    assert.equal((await call('POST', '/account/logout', undefined, first)).status, 204);
    assertError(await call('GET', '/account', undefined, first), 401, 'invalid_session');
    assertError(await call('POST', '/account/logout', undefined, first), 401, 'invalid_session');
    assert.equal((await call('GET', '/account', undefined, second)).status, 200, 'logging out one session leaves the others');

    // An expired session is refused like a revoked one.
    await stack.db.query(`UPDATE account_sessions SET created_at = now() - interval '2 hours', expires_at = now() - interval '1 second' WHERE token_hash = $1`, [
      createHash('sha256').update(second).digest(),
    ]);
    assertError(await call('GET', '/account', undefined, second), 401, 'invalid_session');
  }));

test('a wrong password and an unknown email get the same 401, and open no session', () =>
  check(async () => {
    const s = await signUp();
    const email = ((await call('GET', '/account', undefined, s.token)).body.email as string);
    const wrong = await call('POST', '/account/login', { email, password: `${PASSWORD}!` });
    const unknown = await call('POST', '/account/login', { email: uniqueEmail(), password: PASSWORD });
    assertError(wrong, 401, 'invalid_credentials');
    assertError(unknown, 401, 'invalid_credentials');
    assert.deepEqual(wrong.body, unknown.body);
    const sessions = await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM account_sessions WHERE account_id = $1`, [s.accountId]);
    assert.equal(sessions.rows[0]!.n, 1, 'only the sign-up session');
  }));

test('an email is taken case-insensitively; bad emails and weak passwords are 400s', () =>
  check(async () => {
    const email = uniqueEmail();
    await signUp(email);
    const again = await call('POST', '/account/signup', { email: ` ${email.toUpperCase()}`, password: 'another good password' });
    assert.equal(assertError(again, 409, 'email_taken').param, 'email');
    assert.equal(assertError(await call('POST', '/account/signup', { email: 'not-an-email', password: PASSWORD }), 400, 'invalid_request').param, 'email');
    assert.equal(assertError(await call('POST', '/account/signup', { email: uniqueEmail(), password: 'short' }), 400, 'invalid_request').param, 'password');
    assert.equal(assertError(await call('POST', '/account/signup', { email: uniqueEmail(), password: 'x'.repeat(257) }), 400, 'invalid_request').param, 'password');
    assertError(await call('POST', '/account/signup', { email: uniqueEmail(), password: PASSWORD, admin: true }), 400, 'invalid_request');
    const count = await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM accounts WHERE lower(email) = $1`, [email]);
    assert.equal(count.rows[0]!.n, 1);
  }));

test('log-in attempts are rate-limited per email (429 with Retry-After), even with the right password, and other emails are not', () =>
  check(async () => {
    const email = uniqueEmail();
    await signUp(email);
    for (let i = 0; i < 3; i++) assertError(await call('POST', '/account/login', { email, password: 'wrong password here' }), 401, 'invalid_credentials');
    const limited = await call('POST', '/account/login', { email, password: PASSWORD });
    assertError(limited, 429, 'too_many_attempts');
    assert.equal((limited.body.error as { type: string }).type, 'rate_limit_error');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1, 'Retry-After is given');
    // The same email in another case is the same bucket.
    assertError(await call('POST', '/account/login', { email: email.toUpperCase(), password: PASSWORD }), 429, 'too_many_attempts');

    const other = uniqueEmail();
    await signUp(other);
    assert.equal((await call('POST', '/account/login', { email: other, password: PASSWORD })).status, 200);
  }));

test('sessions work only on the account API, and API keys never do', () =>
  check(async () => {
    const s = await signUp();
    const ns = await createNamespace(s, 'bearer-test');
    const key = await issueKey(s, ns);
    assert.equal(await v1Models(key.key), 200);
    assert.equal(await v1Models(s.token), 401, 'a session token is not an API key');
    assertError(await call('GET', '/account', undefined, key.key), 401, 'invalid_session');
    assertError(await call('GET', '/account'), 401, 'invalid_session');
    assertError(await call('GET', '/account', undefined, `rs_${'A'.repeat(43)}`), 401, 'invalid_session');
    assertError(await call('GET', '/account/namespaces', undefined, stack.config.ADMIN_TOKEN), 401, 'invalid_session');
  }));

// ---- Sign-In with Ethereum ---------------------------------------------------------------------------

async function nonce(): Promise<string> {
  const a = await call('GET', '/account/siwe/nonce');
  assert.equal(a.status, 200, a.text);
  assert.equal(a.body.domain, SIWE_DOMAIN);
  return a.body.nonce as string;
}

function siweMessage(privateKey: string, n: string, fields: { domain?: string; issuedAt?: Date; expirationTime?: Date | null } = {}): string {
  const issuedAt = fields.issuedAt ?? new Date();
  return formatSiweMessage({
    scheme: 'https',
    domain: fields.domain ?? SIWE_DOMAIN,
    address: checksumAddress(addressOf(privateKey)),
    statement: 'Sign in to Resultity.',
    uri: `https://${SIWE_DOMAIN}/login`,
    chainId: 1,
    nonce: n,
    issuedAt,
    expirationTime: fields.expirationTime === undefined ? new Date(issuedAt.getTime() + 5 * 60_000) : fields.expirationTime,
    notBefore: null,
    requestId: null,
    resources: [],
  });
}

function siwe(message: string, signature: string): Promise<Answer> {
  return call('POST', '/account/siwe', { message, signature });
}

test('SIWE: a wallet signs in with a real secp256k1 signature; its first sign-in creates the account, the next finds it', () =>
  check(async () => {
    const key = generatePrivateKey();
    const message = siweMessage(key, await nonce());
    assert.match(message.split('\n')[1]!, /[A-F]/, 'the message carries the EIP-55 checksummed address');
    const first = await siwe(message, signPersonal(key, message));
    assert.equal(first.status, 201, first.text);
    assert.equal(first.body.created, true);
    const account = first.body.account as { id: string; wallet_address: string; email: string | null; name: string };
    assert.equal(account.wallet_address, addressOf(key));
    assert.equal(account.email, null);
    assert.equal(account.name, checksumAddress(addressOf(key)));
    const me = await call('GET', '/account', undefined, first.body.token as string);
    assert.equal(me.body.id, account.id);

    const again = siweMessage(key, await nonce());
    const second = await siwe(again, signPersonal(key, again));
    assert.equal(second.status, 200, second.text);
    assert.equal(second.body.created, false);
    assert.equal((second.body.account as { id: string }).id, account.id);
    // A wallet account has no password: the email log-in cannot reach it.
    const n = await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM accounts WHERE wallet_address = $1`, [addressOf(key)]);
    assert.equal(n.rows[0]!.n, 1);
  }));

test('SIWE: a replayed message, or a nonce the server never issued, is refused', () =>
  check(async () => {
    const key = generatePrivateKey();
    const message = siweMessage(key, await nonce());
    const signature = signPersonal(key, message);
    assert.equal((await siwe(message, signature)).status, 201);
    assert.match(assertError(await siwe(message, signature), 401, 'siwe_rejected').message, /nonce/);

    const invented = siweMessage(key, randomBytes(16).toString('hex'));
    assert.match(assertError(await siwe(invented, signPersonal(key, invented)), 401, 'siwe_rejected').message, /nonce/);
  }));

test('SIWE: another domain, an expired message and a forged signature are refused, and do not use up the nonce', () =>
  check(async () => {
    const key = generatePrivateKey();
    const n = await nonce();

    const phished = siweMessage(key, n, { domain: 'evil.example.com' });
    assert.match(assertError(await siwe(phished, signPersonal(key, phished)), 401, 'siwe_rejected').message, /domain/);

    const issuedAt = new Date(Date.now() - 120_000);
    const expired = siweMessage(key, n, { issuedAt, expirationTime: new Date(issuedAt.getTime() + 60_000) });
    assert.match(assertError(await siwe(expired, signPersonal(key, expired)), 401, 'siwe_rejected').message, /expired/);

    const good = siweMessage(key, n);
    const forged = signPersonal(generatePrivateKey(), good); // a valid signature, by somebody else
    assert.match(assertError(await siwe(good, forged), 401, 'siwe_rejected').message, /signature/);
    const tampered = good.replace('Chain ID: 1', 'Chain ID: 10'); // the owner's signature over another text
    assert.match(assertError(await siwe(tampered, signPersonal(key, good)), 401, 'siwe_rejected').message, /signature/);

    const accounts = await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM accounts WHERE wallet_address = $1`, [addressOf(key)]);
    assert.equal(accounts.rows[0]!.n, 0, 'no refused message created an account');
    // The refusals left the nonce for its owner.
    assert.equal((await siwe(good, signPersonal(key, good))).status, 201);
  }));

test('SIWE: a message that is not EIP-4361 is a 400, and a malformed signature too', () =>
  check(async () => {
    const key = generatePrivateKey();
    const message = siweMessage(key, await nonce());
    const lowerCase = message.replace(checksumAddress(addressOf(key)), addressOf(key));
    assert.equal(assertError(await siwe(lowerCase, signPersonal(key, lowerCase)), 400, 'invalid_request').param, 'message');
    assert.equal(assertError(await siwe(message, '0x1234'), 400, 'invalid_request').param, 'signature');
  }));

// ---- Namespaces and keys by their owner --------------------------------------------------------------

test('an owner creates, lists, renames and deletes namespaces; names are unique per account among live ones', () =>
  check(async () => {
    const s = await signUp();
    const prod = await createNamespace(s, 'prod');
    const staging = await createNamespace(s, 'staging');
    assert.equal(assertError(await call('POST', '/account/namespaces', { name: 'prod' }, s.token), 409, 'name_taken').param, 'name');
    assert.equal(assertError(await call('POST', '/account/namespaces', { name: 'Not Valid' }, s.token), 400, 'invalid_request').param, 'name');

    const list = await call('GET', '/account/namespaces', undefined, s.token);
    assert.deepEqual((list.body.data as Array<{ id: string; name: string }>).map((n) => [n.id, n.name]), [
      [prod, 'prod'],
      [staging, 'staging'],
    ]);

    const renamed = await call('PATCH', `/account/namespaces/${staging}`, { name: 'stage' }, s.token);
    assert.equal(renamed.status, 200, renamed.text);
    assert.equal(renamed.body.name, 'stage');
    assertError(await call('PATCH', `/account/namespaces/${staging}`, { name: 'prod' }, s.token), 409, 'name_taken');

    assert.equal((await call('DELETE', `/account/namespaces/${prod}`, undefined, s.token)).status, 204);
    assertError(await call('DELETE', `/account/namespaces/${prod}`, undefined, s.token), 404, 'not_found');
    assertError(await call('PATCH', `/account/namespaces/${prod}`, { name: 'prod2' }, s.token), 404, 'not_found');
    const after = await call('GET', '/account/namespaces', undefined, s.token);
    assert.deepEqual((after.body.data as Array<{ name: string }>).map((n) => n.name), ['stage']);
    // Soft delete: the row stays for history; its name is free again.
    const kept = await stack.db.query<{ deleted_at: Date | null }>(`SELECT deleted_at FROM namespaces WHERE id = $1`, [prod]);
    assert.ok(kept.rows[0]?.deleted_at instanceof Date);
    assert.notEqual(await createNamespace(s, 'prod'), prod);
  }));

test('tenant isolation: another account can neither see nor touch a namespace, its keys or its key ids', () =>
  check(async () => {
    const alice = await signUp();
    const bob = await signUp();
    const ns = await createNamespace(alice, 'private');
    const key = await issueKey(alice, ns);
    const bobsNs = await createNamespace(bob, 'mine');

    const bobsList = await call('GET', '/account/namespaces', undefined, bob.token);
    assert.deepEqual((bobsList.body.data as Array<{ id: string }>).map((n) => n.id), [bobsNs]);

    // Every attempt is the 404 of a namespace that does not exist, word for word.
    const missing = await call('GET', `/account/namespaces/${randomUUID()}/keys`, undefined, bob.token);
    assertError(missing, 404, 'not_found');
    for (const [method, path, body] of [
      ['GET', `/account/namespaces/${ns}/keys`, undefined],
      ['POST', `/account/namespaces/${ns}/keys`, {}],
      ['DELETE', `/account/namespaces/${ns}/keys/${key.id}`, undefined],
      ['PATCH', `/account/namespaces/${ns}`, { name: 'stolen' }],
      ['DELETE', `/account/namespaces/${ns}`, undefined],
    ] as const) {
      const a = await call(method, path, body, bob.token);
      assertError(a, 404, 'not_found');
      assert.deepEqual(a.body, missing.body, `${method} ${path}`);
    }
    // Nor through his own namespace's path with her key's id.
    assertError(await call('DELETE', `/account/namespaces/${bobsNs}/keys/${key.id}`, undefined, bob.token), 404, 'not_found');

    assert.equal(await v1Models(key.key), 200, "alice's key still works");
    const still = await call('GET', '/account/namespaces', undefined, alice.token);
    assert.deepEqual((still.body.data as Array<{ name: string }>).map((n) => n.name), ['private']);
  }));

test('an owner issues, lists and revokes keys; a revoked key is refused on /v1 at once', () =>
  check(async () => {
    const s = await signUp();
    const ns = await createNamespace(s, 'keys');
    const key = await issueKey(s, ns);
    assert.match(key.key, /^rk_/);
    assert.equal(await v1Models(key.key), 200); // now cached in Redis
    const list = await call('GET', `/account/namespaces/${ns}/keys`, undefined, s.token);
    assert.equal(list.status, 200);
    const rows = list.body.data as Array<Record<string, unknown>>;
    assert.deepEqual(rows.map((r) => r.id), [key.id]);
    assert.ok(!list.text.includes(key.key), 'a listing never shows a secret');
    assert.equal((await call('DELETE', `/account/namespaces/${ns}/keys/${key.id}`, undefined, s.token)).status, 204);
    assert.equal(await v1Models(key.key), 401);

    // An owner may lower a key's rate limit, not raise it above the platform's (RATE_LIMIT_RPS, _BURST).
    const { RATE_LIMIT_RPS: rps, RATE_LIMIT_BURST: burst } = stack.config;
    const lower = await call('POST', `/account/namespaces/${ns}/keys`, { rate_limit_rps: rps - 1, rate_limit_burst: 1, monthly_cap: 5 }, s.token);
    assert.equal(lower.status, 201, lower.text);
    assert.deepEqual([lower.body.rate_limit_rps, lower.body.rate_limit_burst, lower.body.monthly_cap_micro], [rps - 1, 1, 5_000_000]);
    const tooFast = await call('POST', `/account/namespaces/${ns}/keys`, { rate_limit_rps: rps + 1 }, s.token);
    assert.equal(assertError(tooFast, 400, 'invalid_request').param, 'rate_limit_rps');
    const tooBursty = await call('POST', `/account/namespaces/${ns}/keys`, { rate_limit_burst: Math.max(rps, burst) + 1 }, s.token);
    assert.equal(assertError(tooBursty, 400, 'invalid_request').param, 'rate_limit_burst');
    assertError(await call('DELETE', `/account/namespaces/${ns}/keys/${key.id}`, undefined, s.token), 404, 'not_found');
  }));

test('deleting a namespace is refused while it holds credits or has unfinished jobs; then it revokes its keys', () =>
  check(async () => {
    const s = await signUp();
    const ns = await createNamespace(s, 'busy');
    const key = await issueKey(s, ns);

    // Credits: refused, and nothing moved.
    await stack.backbone.admin.credits.topUp(ns, 1);
    assertError(await call('DELETE', `/account/namespaces/${ns}`, undefined, s.token), 409, 'namespace_not_empty');
    assert.deepEqual(await stack.balance(ns), { available: 1_000_000, held: 0 });
    assert.equal(await v1Models(key.key), 200, 'a refused delete revokes nothing');

    // A job still running (on a free model: no credits held, so only the job stands in the way).
    const free = await createNamespace(s, 'free');
    const freeKey = await issueKey(s, free);
    const res = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${freeKey.key}`, 'content-type': 'application/json', prefer: 'respond-async' },
      body: JSON.stringify({ model: FREE_MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 }),
    });
    assert.equal(res.status, 202, await res.clone().text());
    const job = (await res.json()) as { id: string };
    assertError(await call('DELETE', `/account/namespaces/${free}`, undefined, s.token), 409, 'namespace_busy');
    await stack.until('the job to finish', async () => ((await stack.job(job.id))?.status === 'completed' ? true : undefined), 30_000);

    // Done and empty: deleted, and its key stops working at once although Redis had it cached.
    assert.equal(await v1Models(freeKey.key), 200);
    assert.equal((await call('DELETE', `/account/namespaces/${free}`, undefined, s.token)).status, 204);
    assert.equal(await v1Models(freeKey.key), 401);
    const revoked = await stack.db.query<{ revoked_at: Date | null }>(`SELECT revoked_at FROM api_keys WHERE id = $1`, [freeKey.id]);
    assert.ok(revoked.rows[0]?.revoked_at instanceof Date);
    assertError(await call('GET', `/account/namespaces/${free}/keys`, undefined, s.token), 404, 'not_found');
    // No credits can land in it afterwards.
    await assert.rejects(stack.backbone.admin.credits.topUp(free, 1), /Namespace not found/);
    assert.deepEqual(await stack.balance(ns), { available: 1_000_000, held: 0 });
  }));

test('a delete racing key issuance and top-ups never leaves a live key or credits in a deleted namespace', () =>
  check(async () => {
    const s = await signUp();
    const outcomes = new Set<string>();
    for (let round = 0; round < 8; round++) {
      const ns = await createNamespace(s, `race-${round}`);
      // Odd rounds race only key issuance; even ones also a top-up, started a little later each round.
      const topUp =
        round % 2 === 1
          ? Promise.resolve('none')
          : new Promise((r) => setTimeout(r, round * 4)).then(() =>
              stack.backbone.admin.credits.topUp(ns, 1).then(
                () => 'credited',
                (err: Error) => err.message,
              ),
            );
      const [deleted, credited, ...issued] = await Promise.all([
        call('DELETE', `/account/namespaces/${ns}`, undefined, s.token),
        topUp,
        ...Array.from({ length: 6 }, () => call('POST', `/account/namespaces/${ns}/keys`, {}, s.token)),
      ]);
      outcomes.add(`${deleted.status}/${credited}`);
      assert.ok(issued.every((a) => a.status === 201 || a.status === 404), issued.map((a) => a.text).join('\n'));
      const live = await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM api_keys WHERE namespace_id = $1 AND revoked_at IS NULL`, [ns]);
      const gone = await stack.db.query<{ deleted: boolean }>(`SELECT deleted_at IS NOT NULL AS deleted FROM namespaces WHERE id = $1`, [ns]);
      if (deleted.status === 204) {
        assert.equal(gone.rows[0]!.deleted, true);
        assert.notEqual(credited, 'credited', 'no credits land in a deleted namespace');
        assert.equal(live.rows[0]!.n, 0, 'every key the namespace got was revoked');
      } else {
        assertError(deleted, 409, 'namespace_not_empty');
        assert.equal(credited, 'credited');
        assert.equal(gone.rows[0]!.deleted, false);
        assert.equal(live.rows[0]!.n, issued.filter((a) => a.status === 201).length);
      }
    }
    assert.ok([...outcomes].some((o) => o.startsWith('204/')), `the delete won at least once: ${[...outcomes].join(', ')}`);
  }));

// ---- The service under other settings (same engines, same data) ---------------------------------------

/** An AccountService on this stack's PostgreSQL and Redis, with settings the HTTP stack does not have. */
async function withService(overrides: Partial<AccountServiceDeps>, fn: (accounts: AccountService) => Promise<void>): Promise<void> {
  const redis = new Redis(stack.config.REDIS_URL);
  const keys = new RedisKeys(stack.config.REDIS_KEY_PREFIX);
  try {
    await fn(
      new AccountService({
        store: accountStore(stack.db),
        namespaces: stack.backbone.admin.accounts,
        apiKeys: stack.backbone.admin.apiKeys,
        rateLimits: new RateLimitRepository(redis, keys),
        nonces: new SiweNonces(redis, keys, 300),
        sessionTtlHours: 1,
        keyRateLimit: { rps: 20, burst: 40 },
        loginLimits: { perMinute: 1, burst: 100, ipPerMinute: 1, ipBurst: 100 },
        siweDomain: SIWE_DOMAIN,
        siweNonceTtlSeconds: 300,
        ...overrides,
      }),
    );
  } finally {
    redis.disconnect();
  }
}

const refusedWith = (code: string) => (err: unknown) => err instanceof AppError && err.code === code;

test('without SIWE_DOMAIN, Sign-In with Ethereum is refused (403 siwe_disabled), never checked against a guessed domain', () =>
  check(async () => {
    await withService({ siweDomain: null }, async (accounts) => {
      await assert.rejects(accounts.siweNonce('198.51.100.1'), refusedWith('siwe_disabled'));
      const key = generatePrivateKey();
      const message = siweMessage(key, await nonce());
      await assert.rejects(accounts.siweSignIn({ message, signature: signPersonal(key, message) }), refusedWith('siwe_disabled'));
    });
  }));

test('sign-in attempts are limited per client IP too: log-ins, sign-ups and SIWE nonces share the budget', () =>
  check(async () => {
    await withService({ loginLimits: { perMinute: 1, burst: 100, ipPerMinute: 1, ipBurst: 3 } }, async (accounts) => {
      const ip = '203.0.113.9'; // this stack's Redis prefix is its own: the bucket starts full
      await assert.rejects(accounts.logIn({ email: uniqueEmail(), password: PASSWORD }, ip), refusedWith('invalid_credentials'));
      await accounts.signUp({ email: uniqueEmail(), password: PASSWORD }, ip);
      await accounts.siweNonce(ip);
      await assert.rejects(accounts.logIn({ email: uniqueEmail(), password: PASSWORD }, ip), refusedWith('too_many_attempts'));
      await assert.rejects(accounts.signUp({ email: uniqueEmail(), password: PASSWORD }, ip), refusedWith('too_many_attempts'));
      await assert.rejects(accounts.siweNonce(ip), refusedWith('too_many_attempts'));
      // Another address is unaffected.
      await assert.rejects(accounts.logIn({ email: uniqueEmail(), password: PASSWORD }, '198.51.100.77'), refusedWith('invalid_credentials'));
    });
  }));
