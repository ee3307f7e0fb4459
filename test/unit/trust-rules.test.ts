// Issue 9's domain rules, with nothing running: usage bounds and drift, capacity ceilings, enrolment tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { completionTokenBound, deliveredTokens, DRIFT_MIN_BYTES, medianTokensPerByte, SPECIAL_TOKEN_ALLOWANCE, usageDrift } from '../../src/domain/usage-bounds.js';
import { capacityCeilings } from '../../src/domain/capacity.js';
import { enrolmentTokenProblem, issueEnrolmentToken } from '../../src/domain/enrolment.js';
import { addressOf, generatePrivateKey } from '../../src/domain/signatures.js';

const words = { count: (text: string) => text.split(/\s+/).filter(Boolean).length };

test('usage bound: the tokenizer\'s count when one is known, else bytes times the model\'s ratio, plus the special-token allowance', () => {
  assert.equal(completionTokenBound({ tokenizer: words, maxTokensPerByte: 1 }, 'two words'), 2 + SPECIAL_TOKEN_ALLOWANCE);
  assert.equal(completionTokenBound({ tokenizer: null, maxTokensPerByte: 1 }, 'x'), 1 + SPECIAL_TOKEN_ALLOWANCE);
  assert.equal(completionTokenBound({ tokenizer: null, maxTokensPerByte: 0.5 }, 'é'.repeat(4)), 4 + SPECIAL_TOKEN_ALLOWANCE, 'bytes, not characters');
  assert.equal(completionTokenBound({ tokenizer: null, maxTokensPerByte: 1 }, ''), SPECIAL_TOKEN_ALLOWANCE);
});

test('delivered tokens: counted, or bytes at the peers\' ratio, never above the bound\'s ratio', () => {
  assert.equal(deliveredTokens({ tokenizer: words, maxTokensPerByte: 1 }, 'a b c', 0.1), 3);
  assert.equal(deliveredTokens({ tokenizer: null, maxTokensPerByte: 1 }, 'x'.repeat(40), 0.25), 10);
  assert.equal(deliveredTokens({ tokenizer: null, maxTokensPerByte: 1 }, 'x'.repeat(40), 3), 40, 'a peer ratio above the bound is capped');
  assert.equal(deliveredTokens({ tokenizer: null, maxTokensPerByte: 1 }, 'x'.repeat(40), null), 40);
  assert.equal(deliveredTokens({ tokenizer: null, maxTokensPerByte: 1 }, '', 0.25), 0);
});

test('drift: judged only with enough bytes and nodes; a node straying from the median loses, its peers do not', () => {
  const b = DRIFT_MIN_BYTES;
  const honest = [
    { nodeId: 'a', tokens: b / 4, bytes: b },
    { nodeId: 'b', tokens: b / 4 + 10, bytes: b },
  ];
  assert.equal(medianTokensPerByte(honest), null, 'two nodes cannot tell which one strays');
  const factors = usageDrift([...honest, { nodeId: 'liar', tokens: b, bytes: b }, { nodeId: 'new', tokens: 500, bytes: 10 }]);
  assert.equal(factors.get('a'), 1);
  assert.equal(factors.get('b'), 1);
  assert.ok(Math.abs(factors.get('liar')! - (b / 4 + 10) / b) < 1e-9, 'the liar keeps the median over its own ratio');
  assert.equal(factors.has('new'), false, 'too few bytes to judge');
  const low = usageDrift([...honest, { nodeId: 'c', tokens: b / 4, bytes: b }, { nodeId: 'under', tokens: b / 16, bytes: b }]);
  assert.ok(low.get('under')! < 0.5, 'claiming far too little strays too');
});

test('capacity ceilings: declared capacity capped by the rule for the GPU class and model, else for the class', () => {
  const rules = {
    caps: [
      { gpu: 'rtx-4090', model: 'big/70b', maxSlots: 1 },
      { gpu: 'rtx-4090', model: null, maxSlots: 6 },
    ],
  };
  const models = [
    { name: 'big/70b', version: '2' },
    { name: 'small/1b', version: '1' },
  ];
  assert.deepEqual([...capacityCeilings(rules, 1024, 'rtx-4090', models)], [['big/70b@2', 1], ['small/1b@1', 6]]);
  assert.deepEqual([...capacityCeilings(rules, 4, 'rtx-4090', models)], [['big/70b@2', 1], ['small/1b@1', 4]]);
  assert.deepEqual([...capacityCeilings(rules, 8, 'a100', models)], [['big/70b@2', 8], ['small/1b@1', 8]]);
});

test('an enrolment token binds exactly its node to its operator, until it expires, and only when the network signed it', () => {
  const networkKey = generatePrivateKey();
  const network = addressOf(networkKey);
  const node = addressOf(generatePrivateKey());
  const operator = '6f1c8f7e-3b2a-4c1d-9e8f-7a6b5c4d3e2f';
  const token = issueEnrolmentToken(networkKey, node.toUpperCase().replace('0X', '0x'), operator, Date.now() + 60_000);
  assert.equal(enrolmentTokenProblem(token, network, node, operator), null);
  assert.match(enrolmentTokenProblem(token, network, addressOf(generatePrivateKey()), operator)!, /another node/);
  assert.match(enrolmentTokenProblem(token, network, node, '00000000-0000-4000-8000-000000000000')!, /another operator/);
  assert.match(enrolmentTokenProblem(token, addressOf(generatePrivateKey()), node, operator)!, /not signed by this network/);
  assert.match(enrolmentTokenProblem(token, network, node, operator, Date.now() + 120_000)!, /expired/);
  assert.match(enrolmentTokenProblem('ret1.not-json', network, node, operator)!, /malformed/);
  assert.match(enrolmentTokenProblem('bearer', network, node, operator)!, /malformed/);
});
