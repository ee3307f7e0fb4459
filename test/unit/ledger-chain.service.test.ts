// Fast tier (docs/testing.md): LedgerChainService's rules on an in-memory fake of its store. The same
// service on the real engine: test/integration/ledger-history.test.ts and history.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LEDGER_GENESIS_HASH } from '../../src/domain/ledger-chain.js';
import { LedgerChainService } from '../../src/maintenance/ledger-chain.service.js';
import { FakeLedgerChainStore } from '../fakes/ledger-chain.store.js';

function setUp() {
  const store = new FakeLedgerChainStore();
  store.addTransfer('2026-03-01T10:00:00.000Z', 1, 2, 500);
  store.addTransfer('2026-03-01T23:59:59.999Z', 2, 3, 200);
  // No ledger activity on 03-02: the day is chained all the same (empty), so the chain has no gap.
  store.addTransfer('2026-03-03T08:00:00.000Z', 1, 3, 50);
  return { store, service: new LedgerChainService(store) };
}

test('closed days are chained oldest first, each linked to the one before; an empty day is chained too', async () => {
  const { store, service } = setUp();
  assert.deepEqual(await service.rollUpClosedDays(new Date('2026-03-04T00:01:01Z')), ['2026-03-01', '2026-03-02', '2026-03-03']);
  const [d1, d2, d3] = store.db.state.days;
  assert.equal(d1!.prev_hash, LEDGER_GENESIS_HASH);
  assert.equal(d2!.prev_hash, d1!.hash);
  assert.equal(d3!.prev_hash, d2!.hash);
  assert.equal(d1!.entries, 4);
  assert.equal(d2!.entries, 0);
  assert.deepEqual(store.db.state.rollups.get('2026-03-01')!.map((r) => [r.account_id, r.net_micro]), [[1, -500], [2, 300], [3, 200]]);

  const report = await service.verify();
  assert.deepEqual({ ok: report.ok, days: report.days_verified, head: report.head_hash }, { ok: true, days: 3, head: d3!.hash });
  // Run again: nothing new to chain.
  assert.deepEqual(await service.rollUpClosedDays(new Date('2026-03-04T00:01:01Z')), []);
});

test('a day waits for its close margin and for transactions that started before its end', async () => {
  const { store, service } = setUp();
  // 03-01 ended at midnight; a minute has not passed yet.
  assert.deepEqual(await service.rollUpClosedDays(new Date('2026-03-02T00:00:30Z')), []);
  store.openTransactionSince = new Date('2026-03-01T23:59:00Z');
  assert.deepEqual(await service.rollUpClosedDays(new Date('2026-03-02T00:05:00Z')), [], 'an open transaction may still add entries to the day');
  store.openTransactionSince = null;
  assert.deepEqual(await service.rollUpClosedDays(new Date('2026-03-02T00:05:00Z')), ['2026-03-01']);
});

test('a day whose chaining fails is not chained at all, and the next run chains it', async () => {
  const { store, service } = setUp();
  store.db.failNext('insertLedgerDay');
  await assert.rejects(service.rollUpClosedDays(new Date('2026-03-04T00:01:01Z')), /insertLedgerDay failed/);
  assert.deepEqual(store.db.state.days, []);
  assert.equal(store.db.state.rollups.size, 0);
  assert.deepEqual(await service.rollUpClosedDays(new Date('2026-03-04T00:01:01Z')), ['2026-03-01', '2026-03-02', '2026-03-03']);
});

test('verify names the first broken day: an entry changed, a rollup row changed, a link changed, a day missing', async () => {
  const now = new Date('2026-03-04T00:01:01Z');
  {
    const { store, service } = setUp();
    await service.rollUpClosedDays(now);
    store.db.state.entries.get('2026-03-03')![0]!.memo = 'rewritten';
    const r = await service.verify();
    assert.equal(r.ok, false);
    assert.equal(r.days_verified, 2);
    assert.equal(r.broken?.day, '2026-03-03');
    assert.match(r.broken?.reason ?? '', /no longer match their digest/);
  }
  {
    const { store, service } = setUp();
    await service.rollUpClosedDays(now);
    store.db.state.rollups.get('2026-03-01')![0]!.net_micro += 1;
    const r = await service.verify();
    assert.equal(r.broken?.day, '2026-03-01');
    assert.match(r.broken?.reason ?? '', /does not match the day's rollup rows and digest/);
  }
  {
    const { store, service } = setUp();
    await service.rollUpClosedDays(now);
    store.db.state.days[1] = { ...store.db.state.days[1]!, prev_hash: 'ab'.repeat(32) };
    const r = await service.verify();
    assert.equal(r.broken?.day, '2026-03-02');
    assert.match(r.broken?.reason ?? '', /prev_hash .* does not match the previous day's hash/);
  }
  {
    const { store, service } = setUp();
    await service.rollUpClosedDays(now);
    store.db.state.days.splice(1, 1);
    const r = await service.verify();
    assert.equal(r.broken?.day, '2026-03-02');
    assert.match(r.broken?.reason ?? '', /missing from the chain \(the next chained day is 2026-03-03\)/);
  }
});
