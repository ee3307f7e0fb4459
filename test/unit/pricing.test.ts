import { test } from 'node:test';
import assert from 'node:assert/strict';
import { actualCost, promptTokenUpperBound, splitCapture, worstCaseCost } from '../../src/domain/pricing.js';

test('prompt bound counts UTF-8 bytes plus a template allowance per message', () => {
  assert.equal(promptTokenUpperBound([{ role: 'user', content: 'hello' }]), 64 + 5 + 8);
  assert.equal(promptTokenUpperBound([{ role: 'user', content: 'é' }, { role: 'system', content: '' }]), 64 + 2 + 8 + 8);
});

test('worst case and actual cost; actual never exceeds the hold', () => {
  const prices = { inputPriceMicro: 2, outputPriceMicro: 5, minChargeMicro: 0, surchargeBps: 0 };
  assert.equal(worstCaseCost(prices, 10, 100), 520);
  assert.equal(actualCost(prices, { prompt_tokens: 10, completion_tokens: 20 }, 520), 120);
  assert.equal(actualCost(prices, { prompt_tokens: 1000, completion_tokens: 1000 }, 520), 520);
  assert.throws(() => worstCaseCost(prices, Number.MAX_SAFE_INTEGER, 1), RangeError);
});

test('capture split: operator share rounds down, commission takes the rest, nothing is lost', () => {
  for (const amount of [0, 1, 7, 999, 123_456_789]) {
    const { operator, platform } = splitCapture(amount, 8000);
    assert.equal(operator + platform, amount);
    assert.ok(operator <= amount * 0.8);
  }
});

test('empty output costs nothing', () => {
  assert.equal(actualCost({ inputPriceMicro: 2, outputPriceMicro: 5, minChargeMicro: 0, surchargeBps: 0 }, { prompt_tokens: 10, completion_tokens: 0 }, 520, true), 0);
});

test('a minimum charge per request raises the hold and the capture, never above the hold, never for empty output', () => {
  const prices = { inputPriceMicro: 1, outputPriceMicro: 1, minChargeMicro: 1000, surchargeBps: 0 };
  assert.equal(worstCaseCost(prices, 10, 10), 1000);
  assert.equal(actualCost(prices, { prompt_tokens: 3, completion_tokens: 4 }, 1000), 1000);
  assert.equal(actualCost(prices, { prompt_tokens: 3, completion_tokens: 4 }, 1000, true), 0);
  assert.equal(actualCost({ ...prices, minChargeMicro: 5 }, { prompt_tokens: 30, completion_tokens: 40 }, 1000), 70);
});
