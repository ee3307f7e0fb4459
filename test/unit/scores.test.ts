import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blindVerdict, NEW_NODE_SCORE, nodeScore, smoothedRate } from '../../src/domain/scores.js';
import { sha256Hex } from '../../src/domain/signatures.js';

test('rates are smoothed: no data is 1/2, one outcome does not swing to an extreme', () => {
  assert.equal(smoothedRate(0, 0), 0.5);
  assert.equal(smoothedRate(1, 1), 2 / 3);
  assert.equal(smoothedRate(0, 1), 1 / 3);
  assert.equal(NEW_NODE_SCORE, 0.25);
});

test('score: failures and wrong blind answers cost most of the share; slowness at most half', () => {
  const perfect = nodeScore({ completed: 1000, failed: 0, latencyRatio: 1, blindPassed: 100, blindEvaluated: 100 });
  const slow = nodeScore({ completed: 1000, failed: 0, latencyRatio: 4, blindPassed: 100, blindEvaluated: 100 });
  const liar = nodeScore({ completed: 1000, failed: 0, latencyRatio: 1, blindPassed: 0, blindEvaluated: 100 });
  const flaky = nodeScore({ completed: 500, failed: 500, latencyRatio: 1, blindPassed: 100, blindEvaluated: 100 });
  assert.ok(perfect.score > 0.97);
  assert.equal(slow.latencyFactor, 0.25);
  assert.ok(slow.score > perfect.score / 2 && slow.score < perfect.score);
  assert.ok(liar.score < 0.01);
  assert.ok(Math.abs(flaky.score - perfect.score / 2) < 0.01);
  assert.equal(nodeScore({ completed: 10, failed: 0, latencyRatio: 0.5, blindPassed: 0, blindEvaluated: 0 }).latencyFactor, 1, 'faster than peers is no bonus');
});

test('a blind verdict needs every expectation the probe names', () => {
  const answer = 'The capital of France is Paris.';
  assert.deepEqual(blindVerdict({ expected_sha256: sha256Hex(answer), expected_contains: null }, answer), { passed: true, detail: 'ok' });
  assert.equal(blindVerdict({ expected_sha256: sha256Hex(answer), expected_contains: null }, `${answer} `).passed, false);
  assert.equal(blindVerdict({ expected_sha256: null, expected_contains: 'Paris' }, answer).passed, true);
  assert.equal(blindVerdict({ expected_sha256: null, expected_contains: 'Lyon' }, answer).passed, false);
  assert.equal(blindVerdict({ expected_sha256: sha256Hex('other'), expected_contains: 'Paris' }, answer).passed, false);
});
