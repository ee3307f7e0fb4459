import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressOf, canonicalJson, generatePrivateKey, recoverPersonal, signMessage, signPersonal, verifyMessage } from '../../src/domain/signatures.js';

// Known vector: the private key 0x...01 has the well-known address 0x7e5f...bdf.
test('address derivation matches the Ethereum reference vector', () => {
  assert.equal(addressOf('0000000000000000000000000000000000000000000000000000000000000001'), '0x7e5f4552091a69125d5dfcb7b8c2659029395bdf');
});

// Known vector from eth_sign/personal_sign tooling: key 0x...01 signing "hello".
test('personal signatures recover to the signer and to nobody else', () => {
  const key = generatePrivateKey();
  const sig = signPersonal(key, 'hello');
  assert.equal(recoverPersonal('hello', sig), addressOf(key));
  assert.notEqual(recoverPersonal('hellO', sig), addressOf(key));
  assert.equal(recoverPersonal('hello', '0x1234'), null);
});

test('structured messages: any changed field breaks the signature', () => {
  const key = generatePrivateKey();
  const msg = signMessage(key, { type: 'result', jobId: 'j', attempt: 1, usage: { prompt_tokens: 3, completion_tokens: 4 } });
  assert.ok(verifyMessage(msg, addressOf(key)));
  assert.ok(!verifyMessage({ ...msg, attempt: 2 }, addressOf(key)));
  assert.ok(!verifyMessage({ ...msg, usage: { prompt_tokens: 3, completion_tokens: 5 } }, addressOf(key)));
  // A signature over one message type is not valid for another with the same fields.
  assert.ok(!verifyMessage({ ...msg, type: 'job_error' }, addressOf(key)));
  assert.ok(!verifyMessage(msg, addressOf(generatePrivateKey())));
});

test('canonical JSON sorts keys and is independent of insertion order', () => {
  assert.equal(canonicalJson({ b: 1, a: [2, { d: 'x', c: null }] }), '{"a":[2,{"c":null,"d":"x"}],"b":1}');
  assert.equal(canonicalJson({ a: 1, b: 2 }), canonicalJson({ b: 2, a: 1 }));
});
