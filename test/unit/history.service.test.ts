// Fast tier (docs/testing.md): the history tasks' rules (maintenance/history.service.ts) on in-memory
// fakes of their store, the ledger chain and the snapshot gate. The same tasks on the real engines:
// test/integration/history.test.ts and snapshots.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { HistoryMaintenance } from '../../src/maintenance/history.service.js';
import { FakeHistoryStore, FakeSnapshotGate } from '../fakes/history.store.js';

const config = { JOB_DEADLINE_MS: 3_600_000, JOBS_LIVE_WINDOW_DAYS: 7, JOB_PARTITIONS_AHEAD_DAYS: 3, HISTORY_INTERVAL_MS: 60_000 };

function setUp(now = '2026-03-20T06:00:00Z') {
  const store = new FakeHistoryStore();
  store.clock = new Date(now);
  const snapshots = new FakeSnapshotGate();
  const ledgerDays: string[] = [];
  const ledgerChain = { rollUpClosedDays: () => Promise.resolve(ledgerDays) };
  const history = new HistoryMaintenance({ config, store, ledgerChain, snapshots, logger: pino({ level: 'silent' }) });
  return { store, snapshots, history };
}

test('another instance holding the lock: nothing runs', async () => {
  const { store, history } = setUp();
  store.lockedElsewhere = true;
  assert.equal(await history.run(), null);
  assert.deepEqual(store.db.calls, ['runExclusive']);
});

test('partitions are made for today and the days ahead; a day whose DDL times out stops the run\'s making, not the run', async () => {
  const { store, history } = setUp();
  store.ddlBlocked.add('2026-03-22');
  const report = await history.run();
  assert.deepEqual(report?.partitionsCreated, ['2026-03-20', '2026-03-21']);
  store.ddlBlocked.clear();
  assert.deepEqual((await history.run())?.partitionsCreated, ['2026-03-22', '2026-03-23']);
});

test('closed days are rolled up oldest first; a day with unfinished jobs holds back every later one', async () => {
  const { store, history } = setUp();
  store.addDay('2026-03-16', [10, 20]);
  store.addDay('2026-03-17', [5], 1);
  store.addDay('2026-03-18', [7]);
  assert.deepEqual((await history.run())?.rolledUp, ['2026-03-16']);
  assert.deepEqual(store.db.state.rollups['2026-03-16'], { day: '2026-03-16', jobs: 2, charged_micro: 30, raw_dropped: false });
  store.db.state.jobs['2026-03-17']!.unfinished = 0;
  assert.deepEqual((await history.run())?.rolledUp, ['2026-03-17', '2026-03-18']);
});

test('a raw partition past the live window is dropped only with a verified snapshot, re-rolled from the rows that go', async () => {
  const { store, snapshots, history } = setUp();
  store.addDay('2026-03-01', [10, 20]);
  store.addDay('2026-03-02', [30]);
  await history.run();
  // A job written to the closed day after its rollup: the drop re-rolls, so the rollup that stays holds it.
  store.db.state.jobs['2026-03-01']!.charged.push(5);
  assert.deepEqual((await history.run())?.dropped, [], 'no verified snapshot: nothing dropped');
  assert.deepEqual(store.db.state.partitions.slice(0, 2), ['2026-03-01', '2026-03-02']);
  assert.deepEqual(snapshots.asked, ['2026-03-01', '2026-03-01'], 'the first unverified day holds back the later ones');

  snapshots.verified.add('2026-03-01');
  assert.deepEqual((await history.run())?.dropped, ['2026-03-01'], 'the next day waits for its own snapshot');
  assert.deepEqual(store.db.state.rollups['2026-03-01'], { day: '2026-03-01', jobs: 3, charged_micro: 35, raw_dropped: true });
});

test('a drop that fails mid-way drops nothing and rolls nothing back into a half state', async () => {
  const { store, snapshots, history } = setUp();
  store.addDay('2026-03-01', [10]);
  await history.run();
  snapshots.verified.add('2026-03-01');
  store.db.failNext('dropJobPartitions');
  assert.deepEqual((await history.run())?.dropped, []);
  assert.ok(store.db.state.partitions.includes('2026-03-01'));
  assert.equal(store.db.state.rollups['2026-03-01']!.raw_dropped, false);
  assert.deepEqual((await history.run())?.dropped, ['2026-03-01']);
});
