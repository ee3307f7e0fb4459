// Password hashing: scrypt in a self-describing format, per-password salts, parameters read back from
// the stored value (so they can be raised), the policy, and refusal of anything this module did not write.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CURRENT_PARAMS,
  hashPassword,
  needsRehash,
  PASSWORD_MAX_LENGTH,
  PASSWORD_MIN_LENGTH,
  passwordPolicyProblem,
  passwordTooLong,
  verifyPassword,
} from '../../src/domain/passwords.js';

test('a hash names its algorithm and parameters, uses a fresh salt, and verifies only its password', async () => {
  const a = await hashPassword('correct horse battery staple');
  const b = await hashPassword('correct horse battery staple');
  assert.match(a, /^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  assert.notEqual(a, b, 'two hashes of one password differ by their salts');
  assert.equal(await verifyPassword('correct horse battery staple', a), true);
  assert.equal(await verifyPassword('correct horse battery staple', b), true);
  assert.equal(await verifyPassword('correct horse battery stapler', a), false);
  assert.equal(await verifyPassword('Correct horse battery staple', a), false);
  assert.equal(await verifyPassword('', a), false);
});

test('stored parameters are honoured, and weaker ones ask for a rehash', async () => {
  const weaker = await hashPassword('an older password hash', { ln: 14, r: 8, p: 1 });
  assert.match(weaker, /^\$scrypt\$ln=14,/);
  assert.equal(await verifyPassword('an older password hash', weaker), true);
  assert.equal(needsRehash(weaker), true);
  assert.equal(needsRehash(await hashPassword('a current password hash')), false);
  assert.equal(needsRehash(weaker, { ln: 14, r: 8, p: 1 }), false);
  assert.deepEqual(CURRENT_PARAMS, { ln: 15, r: 8, p: 1 });
});

test('no stored hash, a foreign or tampered one never verifies (and out-of-bounds costs are not attempted)', async () => {
  const good = await hashPassword('some long password');
  assert.equal(await verifyPassword('some long password', null), false);
  assert.equal(await verifyPassword('some long password', 'plaintext'), false);
  assert.equal(await verifyPassword('some long password', good.replace('ln=15', 'ln=25')), false); // 4 GiB: refused, not run
  assert.equal(await verifyPassword('some long password', good.replace('ln=15', 'ln=16')), false); // same salt and key, other cost
  assert.equal(await verifyPassword('some long password', good.slice(0, -4)), false);
  assert.equal(needsRehash('plaintext'), true);
});

test('passwords are compared after NFKC normalisation', async () => {
  const composed = 'caf\u00e9 au lait!';
  const decomposed = 'cafe\u0301 au lait!';
  assert.notEqual(composed, decomposed);
  assert.equal(await verifyPassword(decomposed, await hashPassword(composed)), true);
});

test('the policy bounds length in characters, at both ends', () => {
  assert.match(passwordPolicyProblem('x'.repeat(PASSWORD_MIN_LENGTH - 1)) ?? '', /at least 10/);
  assert.equal(passwordPolicyProblem('x'.repeat(PASSWORD_MIN_LENGTH)), null);
  assert.equal(passwordPolicyProblem('🔑'.repeat(PASSWORD_MIN_LENGTH)), null); // characters, not UTF-16 units
  assert.equal(passwordPolicyProblem('x'.repeat(PASSWORD_MAX_LENGTH)), null);
  assert.match(passwordPolicyProblem('x'.repeat(PASSWORD_MAX_LENGTH + 1)) ?? '', /at most 256/);
  assert.equal(passwordTooLong('x'.repeat(PASSWORD_MAX_LENGTH + 1)), true);
  assert.equal(passwordTooLong('x'.repeat(PASSWORD_MAX_LENGTH)), false);
});
