// Fast tier (docs/testing.md): RetentionService's rules (plans and their bounds, what a change of plan
// never shortens, metering and the fall-back of a namespace that cannot pay) on in-memory fakes of its
// store and payloads. The same service on the real engines: test/integration/space.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { RetentionService } from '../../src/space/retention.service.js';
import { storageChargeMicro } from '../../src/domain/retention.js';
import { AppError } from '../../src/errors.js';
import { FakeRetentionPayloads, FakeRetentionStore } from '../fakes/retention.store.js';

const NS = '00000000-0000-4000-8000-00000000000a';
const POOR = '00000000-0000-4000-8000-00000000000b';
const MISSING = '00000000-0000-4000-8000-00000000000f';
const STANDARD_HOURS = 72;
const MAX_DAYS = 30;
const PRICE = 1_000_000;
const GIB = 1024 ** 3;
const HOUR = 3_600_000;

function setUp() {
  const store = new FakeRetentionStore();
  const payloads = new FakeRetentionPayloads();
  const service = new RetentionService({ store, payloads, standardHours: STANDARD_HOURS, maxDays: MAX_DAYS, priceMicroPerGibDay: PRICE, logger: pino({ level: 'silent' }) });
  return { store, payloads, service };
}

const code = (c: string) => (e: unknown) => e instanceof AppError && e.code === c;

test('view: hours kept per plan (none for zero, the standard class, days of an extended plan); an unknown namespace is not found', async () => {
  const { store, service } = setUp();
  store.addNamespace(NS, 'standard', null);
  assert.equal((await service.view(NS)).retention_hours, STANDARD_HOURS);
  await service.setPlan(NS, 'zero', null, 'owner');
  assert.equal((await service.view(NS)).retention_hours, 0);
  const v = await service.setPlan(NS, 'extended', 7, 'owner');
  assert.deepEqual([v.retention_plan, v.retention_days, v.retention_hours, v.price_micro_per_gib_day], ['extended', 7, 168, PRICE]);
  await assert.rejects(service.view(MISSING), code('not_found'));
});

test('setPlan: each change is recorded as an event its owner sees, newest first, with who made it', async () => {
  const { store, service } = setUp();
  store.addNamespace(NS, 'standard', null);
  await service.setPlan(NS, 'extended', 14, 'owner');
  const v = await service.setPlan(NS, 'standard', null, 'admin');
  assert.deepEqual(v.events.map((e) => [e.kind, e.detail]), [
    ['plan_changed', { plan: 'standard', days: null, by: 'admin' }],
    ['plan_changed', { plan: 'extended', days: 14, by: 'owner' }],
  ]);
  await assert.rejects(service.setPlan(MISSING, 'standard', null, 'owner'), code('not_found'));
});

test('setPlan: extended days are whole, from 1 to the maximum; days only for extended; a refused plan writes nothing', async () => {
  const { store, service } = setUp();
  store.addNamespace(NS, 'standard', null);
  for (const [plan, days] of [['extended', 0], ['extended', MAX_DAYS + 1], ['extended', 1.5], ['extended', null], ['extended', undefined], ['standard', 3], ['zero', 1], ['forever', null]] as const) {
    await assert.rejects(service.setPlan(NS, plan, days, 'owner'), code('invalid_request'), `${plan} ${String(days)}`);
  }
  assert.equal(store.db.calls.filter((c) => c === 'setRetentionPlan').length, 0, 'refused before the store');
  assert.equal((await service.setPlan(NS, 'extended', 1, 'owner')).retention_days, 1);
  assert.equal((await service.setPlan(NS, 'extended', MAX_DAYS, 'owner')).retention_days, MAX_DAYS);
});

test('lowering a plan never lets go sooner than promised: nothing is deleted, keys live as long as the longest plan, old extended bytes are not billed', async () => {
  const { store, payloads, service } = setUp();
  const now = new Date('2026-03-31T12:00:00Z');
  store.addNamespace(NS, 'extended', MAX_DAYS, 10 * PRICE, 1);
  payloads.extendedBytes.set(NS, GIB);
  payloads.pinnedBytes.set(NS, GIB / 2);
  store.db.state.salts.push(
    { jobId: 'written under extended, 29 days ago', createdAt: new Date(now.getTime() - 29 * 24 * HOUR), pinned: false },
    { jobId: 'past any plan', createdAt: new Date(now.getTime() - (MAX_DAYS * 24 + 49) * HOUR), pinned: false },
    { jobId: 'pinned, past any plan', createdAt: new Date(now.getTime() - 400 * 24 * HOUR), pinned: true },
  );
  await service.setPlan(NS, 'standard', null, 'owner');
  assert.deepEqual(store.db.calls.filter((c) => c !== 'findNamespace'), ['setRetentionPlan'], 'a change of plan deletes nothing');
  assert.equal(store.db.state.namespaces.get(NS)?.pins, 1);
  assert.equal(await service.sweepExpiredKeys(now), 1);
  assert.deepEqual(store.db.state.salts.map((s) => s.jobId), ['written under extended, 29 days ago', 'pinned, past any plan']);
  const [outcome] = await service.meterDay('2026-03-30', now);
  assert.deepEqual(outcome, { namespaceId: NS, storedBytes: GIB / 2, chargedMicro: storageChargeMicro(GIB / 2, PRICE), fellBack: false }, 'pins alone are billed');
});

test('meterDay: an extended namespace pays its bytes of the day once, through a storage posting, whoever meters again', async () => {
  const { store, payloads, service } = setUp();
  store.addNamespace(NS, 'extended', 7, 10 * PRICE);
  store.addNamespace(POOR, 'standard', null, 0);
  payloads.extendedBytes.set(NS, 3 * GIB);
  const charge = storageChargeMicro(3 * GIB, PRICE);
  assert.deepEqual(await service.meterDay('2026-03-30'), [{ namespaceId: NS, storedBytes: 3 * GIB, chargedMicro: charge, fellBack: false }]);
  assert.deepEqual(payloads.asked, [{ namespaceId: NS, aboveHours: STANDARD_HOURS }], 'classes above the standard one are billed');
  assert.deepEqual(await service.meterDay('2026-03-30'), [], 'the same day again charges nothing');
  assert.equal(store.db.state.namespaces.get(NS)?.balance, 10 * PRICE - charge);
  assert.deepEqual(store.db.state.postings.map((p) => [p.namespaceId, p.micro]), [[NS, charge]]);
  const [row] = store.db.state.meterings;
  assert.deepEqual([row?.row.charged_micro, row?.ledgerTxnId], [charge, 1], 'the metering names its posting');
  assert.equal((await service.meterDay('2026-03-31')).length, 1, 'the next day is its own');
});

test('meterDay: nothing held is metered as nothing, with no posting', async () => {
  const { store, service } = setUp();
  store.addNamespace(NS, 'extended', 7, 0);
  assert.deepEqual(await service.meterDay('2026-03-30'), [{ namespaceId: NS, storedBytes: 0, chargedMicro: 0, fellBack: false }]);
  assert.deepEqual(store.db.state.postings, []);
  assert.equal(store.db.state.namespaces.get(NS)?.retention_plan, 'extended', 'owing nothing is not failing to pay');
});

test('meterDay: a namespace that cannot pay is charged nothing, falls back to standard with an event, and loses its pins', async () => {
  const { store, payloads, service } = setUp();
  store.addNamespace(POOR, 'extended', 30, 1, 2);
  payloads.extendedBytes.set(POOR, GIB);
  payloads.pinnedBytes.set(POOR, GIB);
  assert.deepEqual(await service.meterDay('2026-03-30'), [{ namespaceId: POOR, storedBytes: 2 * GIB, chargedMicro: 0, fellBack: true }]);
  const ns = store.db.state.namespaces.get(POOR);
  assert.deepEqual([ns?.retention_plan, ns?.retention_days, ns?.balance, ns?.pins], ['standard', null, 1, 0]);
  assert.deepEqual(store.db.state.postings, []);
  assert.equal(payloads.pinnedBytes.has(POOR), false, 'its pinned copies go');
  assert.deepEqual(store.db.state.meterings.map((m) => [m.row.charged_micro, m.row.fell_back]), [[0, true]]);
  assert.deepEqual((await service.view(POOR)).events.map((e) => [e.kind, e.detail.by]), [['fell_back', 'metering']]);
  assert.deepEqual(await service.meterDay('2026-03-31'), [], 'standard without pins pays nothing more');
});

test('meterDay: a failure after the posting leaves no charge and no claim (the day can be metered again)', async () => {
  const { store, payloads, service } = setUp();
  store.addNamespace(NS, 'extended', 7, 10 * PRICE);
  payloads.extendedBytes.set(NS, GIB);
  store.db.failNext('claimMetering');
  await assert.rejects(service.meterDay('2026-03-30'), /claimMetering failed/);
  assert.deepEqual([store.db.state.namespaces.get(NS)?.balance, store.db.state.postings.length, store.db.state.meterings.length], [10 * PRICE, 0, 0]);
  assert.equal((await service.meterDay('2026-03-30')).length, 1);
});

test('meterDay: two instances metering the same day at once charge it once (the losing claim rolls its posting back)', async () => {
  const { store, payloads, service } = setUp();
  store.addNamespace(NS, 'extended', 7, 10 * PRICE);
  payloads.extendedBytes.set(NS, GIB);
  const [a, b] = await Promise.all([service.meterDay('2026-03-30'), service.meterDay('2026-03-30')]);
  assert.equal(a.length + b.length, 1);
  assert.equal(store.db.calls.filter((c) => c === 'chargeStorage').length, 2, 'both reached the posting');
  assert.deepEqual([store.db.state.postings.length, store.db.state.namespaces.get(NS)?.balance], [1, 10 * PRICE - storageChargeMicro(GIB, PRICE)]);
});
