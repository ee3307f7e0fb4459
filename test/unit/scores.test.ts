import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blindVerdict, NEW_NODE_SCORE, nodeScore, scoreInputs, smoothedRate } from '../../src/domain/scores.js';
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

test('score inputs: latency compared per model with its peers (weighted by completed attempts), blind record and usage joined per node', () => {
  const inputs = scoreInputs(
    [
      // Model m (mean 200 ms over 4 completions): fast is at 100 ms, slow at 300 ms.
      { nodeId: 'fast', model: 'm', completed: 2, failed: 0, latencyMs: 100 },
      { nodeId: 'slow', model: 'm', completed: 2, failed: 1, latencyMs: 300 },
      // A much slower model served by slow alone: it is its own peer (ratio 1), not compared with m.
      { nodeId: 'slow', model: 'big', completed: 2, failed: 0, latencyMs: 9_000 },
      // Only failures: no latency to compare.
      { nodeId: 'broken', model: 'm', completed: 0, failed: 4, latencyMs: null },
    ],
    [{ nodeId: 'fast', passed: 3, evaluated: 4 }, { nodeId: 'blind-only', passed: 1, evaluated: 1 }],
    new Map([['slow', 0.5]]),
  );
  assert.deepEqual(inputs.get('fast'), { completed: 2, failed: 0, latencyRatio: 0.5, blindPassed: 3, blindEvaluated: 4, usageFactor: 1 });
  // slow: (1.5 × 2 + 1 × 2) / 4 = 1.25.
  assert.deepEqual(inputs.get('slow'), { completed: 4, failed: 1, latencyRatio: 1.25, blindPassed: 0, blindEvaluated: 0, usageFactor: 0.5 });
  assert.deepEqual(inputs.get('broken'), { completed: 0, failed: 4, latencyRatio: null, blindPassed: 0, blindEvaluated: 0, usageFactor: 1 });
  assert.deepEqual(inputs.get('blind-only'), { completed: 0, failed: 0, latencyRatio: null, blindPassed: 1, blindEvaluated: 1, usageFactor: 1 });
  assert.ok(nodeScore(inputs.get('fast')!).score > nodeScore(inputs.get('slow')!).score);
});
