// Job ids that carry their creation time, the day rules of job history, and the ledger chain's hashing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jobIdTime, newJobId } from '../../src/domain/job-ids.js';
import { isJobDayClosed, isPastLiveWindow, partitionDaysAhead, spansWithout, DAY_CLOSE_MARGIN_MS } from '../../src/domain/job-history.js';
import { LEDGER_GENESIS_HASH, LedgerEntriesDigest, ledgerDayHash, sameRollupRows } from '../../src/domain/ledger-chain.js';

test('a job id is a UUIDv7 that gives back its creation time to the millisecond; other ids give none', () => {
  const at = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
  const id = newJobId(at);
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(jobIdTime(id)?.getTime(), at);
  assert.notEqual(newJobId(at), id, 'random beyond the timestamp');
  assert.equal(jobIdTime('4f16f51a-40ef-4a8b-8435-783812e05217'), null);
  assert.equal(jobIdTime('not-a-uuid'), null);
  assert.throws(() => newJobId(-1), RangeError);
});

test('a day closes only past its end plus the longest deadline and the margin; the live window counts whole days', () => {
  const deadline = 300_000;
  const end = Date.parse('2026-01-02T00:00:00Z');
  assert.equal(isJobDayClosed('2026-01-01', new Date(end + deadline + DAY_CLOSE_MARGIN_MS - 1), deadline), false);
  assert.equal(isJobDayClosed('2026-01-01', new Date(end + deadline + DAY_CLOSE_MARGIN_MS), deadline), true);
  const now = new Date('2026-01-31T12:00:00Z');
  assert.equal(isPastLiveWindow('2026-01-01', now, 30), false, 'ends 2026-01-02, within 30 days of now');
  assert.equal(isPastLiveWindow('2025-12-31', now, 30), true);
  assert.deepEqual(partitionDaysAhead(new Date('2026-12-30T23:59:59Z'), 3), ['2026-12-30', '2026-12-31', '2027-01-01', '2027-01-02']);
});

test('the days a report reads raw are the runs of days that are not rolled up', () => {
  assert.deepEqual(spansWithout('2026-01-01', '2026-01-06', new Set(['2026-01-02', '2026-01-03', '2026-01-06'])), [
    { first: '2026-01-01', last: '2026-01-01' },
    { first: '2026-01-04', last: '2026-01-05' },
  ]);
  assert.deepEqual(spansWithout('2026-01-01', '2026-01-02', new Set(['2026-01-01', '2026-01-02'])), []);
});

test("a ledger day's hash depends on the previous hash, every rollup figure and the entries digest, not on row order", () => {
  const rows = [
    { account_id: 2, entries: 1, debits_micro: 0, credits_micro: 5, net_micro: 5 },
    { account_id: 1, entries: 1, debits_micro: 5, credits_micro: 0, net_micro: -5 },
  ];
  const digest = new LedgerEntriesDigest();
  digest.update({ id: 1, txn_id: 1, kind: 'topup', job_id: null, memo: '', created_at: '2026-01-01T00:00:00.000000Z', account_id: 1, amount: -5 });
  const day = { day: '2026-01-01', entries: 1, entriesDigest: digest.hex(), rows };
  const h = ledgerDayHash(LEDGER_GENESIS_HASH, day);
  assert.match(h, /^[0-9a-f]{64}$/);
  assert.equal(ledgerDayHash(LEDGER_GENESIS_HASH, { ...day, rows: [...rows].reverse() }), h);
  assert.notEqual(ledgerDayHash('11'.repeat(32), day), h);
  assert.notEqual(ledgerDayHash(LEDGER_GENESIS_HASH, { ...day, rows: [{ ...rows[0]!, credits_micro: 6, net_micro: 6 }, rows[1]!] }), h);
  assert.notEqual(ledgerDayHash(LEDGER_GENESIS_HASH, { ...day, entriesDigest: new LedgerEntriesDigest().hex() }), h);
  assert.ok(sameRollupRows(rows, [...rows].reverse()));
  assert.ok(!sameRollupRows(rows, rows.slice(1)));
});
