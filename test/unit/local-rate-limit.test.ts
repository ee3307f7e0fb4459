// The in-process buckets that stand in for Redis's while it is unreachable (cloud/local-rate-limit.ts):
// the same rule as the Lua script, all buckets or none, and a bounded memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalRateLimiter } from '../../src/cloud/local-rate-limit.js';

test('a bucket gives its burst, then refuses with the wait for one token, then refills at its rate', () => {
  let now = 1_000_000;
  const limiter = new LocalRateLimiter(100, () => now);
  const key = [{ id: 'k', ratePerSecond: 2, burst: 3 }];
  assert.deepEqual([1, 2, 3].map(() => limiter.takeAll(key).allowed), [true, true, true]);
  const refused = limiter.takeAll(key);
  assert.equal(refused.allowed, false);
  assert.equal(refused.retryAfterMs, 500);
  assert.equal(refused.touch, false);
  now += 500;
  assert.equal(limiter.takeAll(key).allowed, true);
  assert.equal(limiter.takeAll(key).allowed, false);
});

test('several buckets: a token from each or from none (an empty account bucket spares the key its token)', () => {
  let now = 5_000;
  const limiter = new LocalRateLimiter(100, () => now);
  const account = { id: 'account:a', ratePerSecond: 1, burst: 1 };
  const k2 = { id: 'k2', ratePerSecond: 0.001, burst: 2 }; // refills too slowly to matter here
  assert.equal(limiter.takeAll([{ id: 'k1', ratePerSecond: 1, burst: 2 }, account]).allowed, true);
  assert.equal(limiter.takeAll([k2, account]).allowed, false, 'the account bucket is empty');
  now += 1_000; // the account has a token again
  assert.equal(limiter.takeAll([k2, account]).allowed, true);
  // Had the refused request drawn on k2, it would be empty now.
  assert.equal(limiter.takeAll([k2]).allowed, true, 'the refusal took nothing from the key');
  assert.equal(limiter.takeAll([k2]).allowed, false);
});

test('memory is bounded: the least recently used bucket is forgotten first', () => {
  const limiter = new LocalRateLimiter(3, () => 0);
  for (const id of ['a', 'b', 'c', 'd']) limiter.takeAll([{ id, ratePerSecond: 1, burst: 1 }]);
  assert.equal(limiter.size, 3);
  // 'a' was forgotten, so it is full again; 'd' is still empty.
  assert.equal(limiter.takeAll([{ id: 'a', ratePerSecond: 1, burst: 1 }]).allowed, true);
  assert.equal(limiter.takeAll([{ id: 'd', ratePerSecond: 1, burst: 1 }]).allowed, false);
});
