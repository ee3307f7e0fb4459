// domain/holds.ts decideHolds: the order of the checks, the running balance and monthly spend within a
// batch, and idempotency keys within a batch. test/integration/hold-rules.test.ts checks that accept_jobs
// in PostgreSQL decides the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideHolds, spendKey, spendMonthOf, type HoldBook, type HoldCandidate } from '../../src/domain/holds.js';

const NOW = new Date('2026-12-05T12:00:00Z');
const LATER = new Date('2026-12-05T12:05:00Z');
const book = (available: Record<string, number>, spent: Record<string, number> = {}, inUse: string[] = []): HoldBook => ({
  available: new Map(Object.entries(available)),
  monthlySpent: new Map(Object.entries(spent)),
  idempotencyKeysInUse: new Set(inUse),
});
const hold = (c: Partial<HoldCandidate> & { holdMicro: number }): HoldCandidate => ({
  namespaceId: 'a',
  apiKeyId: 'k1',
  monthlyCapMicro: null,
  createdAt: NOW,
  deadlineAt: LATER,
  idempotencyKey: null,
  ...c,
});
const outcomes = (b: HoldBook, cs: HoldCandidate[]) => decideHolds(b, cs, NOW).decisions;

test('holds are taken in order against the running balance; one that does not fit is refused alone', () => {
  const r = decideHolds(book({ a: 100 }), [hold({ holdMicro: 60 }), hold({ holdMicro: 50 }), hold({ holdMicro: 40 })], NOW);
  assert.deepEqual(r.decisions, [{ outcome: 'accepted' }, { outcome: 'insufficient_credits', availableMicro: 40 }, { outcome: 'accepted' }]);
  assert.equal(r.after.available.get('a'), 0);
  assert.equal(r.after.monthlySpent.get(spendKey('k1', '2026-12-01')), 100);
});

test('namespaces do not share credits; an unknown namespace has none', () => {
  assert.deepEqual(outcomes(book({ a: 10, b: 10 }), [hold({ holdMicro: 10 }), hold({ namespaceId: 'b', holdMicro: 10 }), hold({ namespaceId: 'c', holdMicro: 1 })]), [
    { outcome: 'accepted' },
    { outcome: 'accepted' },
    { outcome: 'insufficient_credits', availableMicro: 0 },
  ]);
});

test("a key's monthly cap counts what it spent before and earlier in the batch; credits are checked first", () => {
  const b = book({ a: 1_000 }, { [spendKey('k1', '2026-12-01')]: 70 });
  assert.deepEqual(outcomes(b, [hold({ holdMicro: 20, monthlyCapMicro: 100 }), hold({ holdMicro: 20, monthlyCapMicro: 100 }), hold({ holdMicro: 5_000, monthlyCapMicro: 100 })]), [
    { outcome: 'accepted' },
    { outcome: 'monthly_cap_reached', capLeftMicro: 10 },
    { outcome: 'insufficient_credits', availableMicro: 980 },
  ]);
  // A job created in another month counts in that month's row.
  assert.deepEqual(outcomes(b, [hold({ holdMicro: 90, monthlyCapMicro: 100, createdAt: new Date('2027-01-01T00:00:00Z') })]), [{ outcome: 'accepted' }]);
  // Spent past the cap (a cap lowered since): nothing left, never a negative figure.
  assert.deepEqual(outcomes(b, [hold({ holdMicro: 1, monthlyCapMicro: 50 })]), [{ outcome: 'monthly_cap_reached', capLeftMicro: 0 }]);
});

test('past its deadline, refused before anything else; an idempotency key is used once, per namespace', () => {
  const b = book({ a: 100, b: 100 }, {}, ['a used']);
  assert.deepEqual(outcomes(b, [
    hold({ holdMicro: 1_000, deadlineAt: NOW }),
    hold({ holdMicro: 1, idempotencyKey: 'used' }),
    hold({ holdMicro: 1, idempotencyKey: 'x' }),
    hold({ holdMicro: 1, idempotencyKey: 'x' }),
    hold({ namespaceId: 'b', holdMicro: 1, idempotencyKey: 'x' }),
  ]), [{ outcome: 'past_deadline' }, { outcome: 'idempotency_key_in_use' }, { outcome: 'accepted' }, { outcome: 'idempotency_key_in_use' }, { outcome: 'accepted' }]);
  // A refused hold does not claim its key: the next request with it may still be accepted.
  assert.deepEqual(outcomes(book({ a: 5 }), [hold({ holdMicro: 9, idempotencyKey: 'y' }), hold({ holdMicro: 5, idempotencyKey: 'y' })]), [
    { outcome: 'insufficient_credits', availableMicro: 5 },
    { outcome: 'accepted' },
  ]);
});

test('the book given is left as it was', () => {
  const b = book({ a: 100 });
  decideHolds(b, [hold({ holdMicro: 100 })], NOW);
  assert.equal(b.available.get('a'), 100);
});

test('spend month: UTC calendar month of the creation time', () => {
  assert.equal(spendMonthOf(new Date('2026-12-31T23:59:59.900Z')), '2026-12-01');
  assert.equal(spendMonthOf(new Date('2027-01-01T00:00:00Z')), '2027-01-01');
});
