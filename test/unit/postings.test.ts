// domain/postings.ts: every kind of posting balances, moves the accounts its kind names, and refuses
// amounts that would break double entry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as postings from '../../src/domain/postings.js';

const NS = 'ns-1';
const OP = 'op-1';
const sum = (p: postings.Posting) => p.lines.reduce((s, l) => s + l.amount, 0);
const moves = (p: postings.Posting) => p.lines.map((l) => `${l.account.kind}${l.account.owner ? `/${l.account.owner}` : ''} ${l.amount}`);

test('each builder balances and names the accounts of its kind', () => {
  assert.deepEqual(moves(postings.topup(NS, 500, 'card')), ['funding -500', `ns_available/${NS} 500`]);
  assert.deepEqual(moves(postings.hold('j', NS, 70)), [`ns_available/${NS} -70`, `ns_held/${NS} 70`]);
  assert.deepEqual(moves(postings.release('j', NS, 30)), [`ns_held/${NS} -30`, `ns_available/${NS} 30`]);
  assert.deepEqual(moves(postings.withdrawal(OP, 9, 'iban')), [`operator_earnings/${OP} -9`, `operator_withdrawal/${OP} 9`]);
  assert.deepEqual(moves(postings.storage(NS, 4, 'space day')), [`ns_available/${NS} -4`, 'platform_revenue 4']);
  for (const p of [postings.topup(NS, 1), postings.hold('j', NS, 3), postings.capture('j', NS, 101, OP, 8000), postings.storage(NS, 2, 'm')]) assert.equal(sum(p), 0);
});

test("capture: the operator's share rounds down, the platform keeps the rest; no operator on record, the platform keeps it all", () => {
  assert.deepEqual(moves(postings.capture('j', NS, 101, OP, 8000)), [`ns_held/${NS} -101`, `operator_earnings/${OP} 80`, 'platform_revenue 21']);
  assert.deepEqual(moves(postings.capture('j', NS, 101, null, 8000)), [`ns_held/${NS} -101`, 'platform_revenue 101']);
  // A 0% share drops the operator's zero line rather than writing it.
  assert.deepEqual(moves(postings.capture('j', NS, 10, OP, 0)), [`ns_held/${NS} -10`, 'platform_revenue 10']);
});

test('nothing moves: no lines (the repository writes nothing); bad amounts are refused', () => {
  assert.deepEqual(postings.release('j', NS, 0).lines, []);
  assert.deepEqual(postings.capture('j', NS, 0, OP, 8000).lines, []);
  assert.throws(() => postings.topup(NS, 0), RangeError);
  assert.throws(() => postings.topup(NS, -5), RangeError);
  assert.throws(() => postings.withdrawal(OP, 1.5, 'x'), RangeError);
  assert.throws(() => postings.hold('j', NS, 2 ** 60), RangeError);
});

test('a hand-made posting that does not sum to zero is refused before any engine sees it', () => {
  const line = (kind: postings.LedgerAccountKind, amount: number) => ({ account: { kind, owner: NS }, amount });
  assert.throws(() => postings.posting('topup', null, [line('funding', -5), line('ns_available', 4)]), postings.UnbalancedPostingError);
  assert.equal(sum(postings.posting('topup', null, [line('funding', -5), line('ns_available', 5)])), 0);
});
