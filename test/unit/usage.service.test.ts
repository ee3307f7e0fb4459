// Fast tier (docs/testing.md): UsageService's rules (each day read from its rollup or from the raw jobs,
// never both and never neither; storage charges beside; the CSV form) on an
// in-memory fake of its store. The same service on the real engines: test/integration/usage.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { STORAGE_CSV_MODEL, UsageService } from '../../src/space/usage.service.js';
import type { UsageRow } from '../../src/postgres/usage.repository.js';
import { FakeUsageStore } from '../fakes/usage.store.js';

const NS = '00000000-0000-4000-8000-00000000000a';
const OTHER = '00000000-0000-4000-8000-00000000000b';
const KEY = '00000000-0000-4000-8000-0000000000c1';

function usage(day: string, requests: number, model = 'm'): UsageRow {
  return { day, model, api_key_id: KEY, key_prefix: 'rk_abc', requests, completed: requests, failed: 0, expired: 0, prompt_tokens: 10 * requests, completion_tokens: 20 * requests, charged_micro: 1_000 * requests };
}

/**
 * Five days: the 1st rolled up with its raw rows still there, the 2nd raw only, the 3rd rolled up with its
 * raw rows dropped, the 4th raw only, the 5th nothing at all.
 */
function setUp() {
  const store = new FakeUsageStore();
  for (const [day, n] of [['2026-03-01', 1], ['2026-03-02', 2], ['2026-03-04', 8]] as const) store.raw.push({ namespaceId: NS, row: usage(day, n) });
  store.raw.push({ namespaceId: OTHER, row: usage('2026-03-02', 100) });
  for (const [day, n] of [['2026-03-01', 1], ['2026-03-03', 4]] as const) {
    store.rolledUpDays.add(day);
    store.rollups.push({ namespaceId: NS, row: usage(day, n) });
  }
  store.meterings.push({ namespaceId: NS, row: { day: '2026-03-02', stored_bytes: 2048, charged_micro: 1_500_000, fell_back: false } });
  return { store, service: new UsageService(store) };
}

test('rolled-up days come from their rollups and the other days from the raw jobs: each counted once', async () => {
  const { store, service } = setUp();
  const r = await service.report(NS, { from: '2026-03-01', to: '2026-03-05' });
  assert.deepEqual(r.data.map((x) => [x.day, x.requests]), [['2026-03-01', 1], ['2026-03-02', 2], ['2026-03-03', 4], ['2026-03-04', 8]]);
  assert.equal(r.data.reduce((n, x) => n + x.requests, 0), 15, 'no day twice, none missing');
  // The raw jobs are read over the spans between rolled-up days only.
  const rawReads = store.calls.filter((c) => c.op === 'usageFromJobs').map((c) => c.args);
  assert.deepEqual(rawReads, [['2026-03-02T00:00:00.000Z', '2026-03-03T00:00:00.000Z'], ['2026-03-04T00:00:00.000Z', '2026-03-06T00:00:00.000Z']]);
});

test('with no day rolled up the rollups are not read, and the whole range comes from the raw jobs', async () => {
  const { store, service } = setUp();
  const r = await service.report(NS, { from: '2026-03-02', to: '2026-03-02' });
  assert.deepEqual(r.data.map((x) => [x.day, x.requests, x.credits_charged]), [['2026-03-02', 2, '0.002000']]);
  assert.equal(store.calls.some((c) => c.op === 'usageFromRollups'), false);
});

test("another namespace's usage is never in the report; storage charges are, formatted, and as CSV rows of their own", async () => {
  const { service } = setUp();
  const r = await service.report(NS, { from: '2026-03-02', to: '2026-03-02' });
  assert.deepEqual(r.storage, [{ day: '2026-03-02', stored_bytes: 2048, credits_charged: '1.500000', fell_back: false }]);
  const csv = service.toCsv(r.data, r.storage).trim().split('\n');
  assert.equal(csv.length, 3, 'header, one usage row, one storage row');
  assert.ok(csv[2]?.startsWith(`2026-03-02,${STORAGE_CSV_MODEL},,,0,`) && csv[2].endsWith(',1.500000'));
});

test('rows are ordered by day, then model', async () => {
  const { store, service } = setUp();
  store.raw.push({ namespaceId: NS, row: usage('2026-03-02', 1, 'a-model') });
  const r = await service.report(NS, { from: '2026-03-01', to: '2026-03-03' });
  assert.deepEqual(r.data.map((x) => [x.day, x.model]), [['2026-03-01', 'm'], ['2026-03-02', 'a-model'], ['2026-03-02', 'm'], ['2026-03-03', 'm']]);
});
