// Fast tier (docs/testing.md): the operator console's scoping and views on an in-memory fake of its
// store. The same console on the real engines: test/integration/account-console.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OperatorConsoleService, type OperatorsPort } from '../../src/gate/operator-console.service.js';
import type { AccountPrincipal } from '../../src/gate/account.service.js';
import type { NodePresence } from '../../src/redis/node-presence.view.js';
import { AppError } from '../../src/errors.js';
import { FakeOperatorConsoleStore } from '../fakes/operator-console.store.js';

const MINE = '0x' + 'a'.repeat(40);
const THEIRS = '0x' + 'b'.repeat(40);
const me = { accountId: 'op-1' } as AccountPrincipal;

function setUp() {
  const store = new FakeOperatorConsoleStore();
  store.addNode('op-1', MINE, { shadow_banned: true, reason: 'shadow: copies answers' });
  store.addNode('op-2', THEIRS);
  const online = new Map<string, NodePresence | null>([[MINE, { seen_at: new Date(), network: 'mainnet', region: null, gpu: 'A100', gpu_memory_mb: 81920, capacity: 4, in_use: 1, models: ['org/m@1'] }]]);
  const presence = { read: (ids: readonly string[]) => Promise.resolve(new Map(ids.map((id) => [id, online.get(id) ?? null]))) };
  const operators = {
    requestWithdrawal: (operatorId: string, credits: number, destination: string) =>
      Promise.resolve({ id: 'w-1', operator_account_id: operatorId, amount_micro: credits * 1_000_000, destination, status: 'requested' as const, created_at: new Date(), exported_at: null }),
  } as unknown as OperatorsPort;
  return { store, service: new OperatorConsoleService({ store, presence, operators, rcpEpochSeconds: 3600 }) };
}

test("an operator lists only its own nodes, with presence; another operator's node is not found, like none", async () => {
  const { service } = setUp();
  const nodes = await service.nodes(me);
  assert.deepEqual(nodes.map((n) => [n.id, n.online, n.presence?.gpu]), [[MINE, true, 'A100']]);
  await assert.rejects(service.node(me, THEIRS), (e: unknown) => e instanceof AppError && e.code === 'not_found');
  await assert.rejects(service.node(me, '0x' + 'c'.repeat(40)), (e: unknown) => e instanceof AppError && e.code === 'not_found');
  await assert.rejects(service.contributionPoints(me, THEIRS, 5), (e: unknown) => e instanceof AppError && e.code === 'not_found');
  assert.equal((await service.node(me, MINE.toUpperCase().replace('0X', '0x'))).id, MINE, 'any case of its address');
});

test('a malformed node id is not found without a query', async () => {
  const { store, service } = setUp();
  await assert.rejects(service.node(me, "x' OR 1=1 --"), (e: unknown) => e instanceof AppError && e.code === 'not_found');
  assert.equal(store.db.calls.includes('findNode'), false);
});

test('a shadow-banned node shows no trace of it to its operator', async () => {
  const { service } = setUp();
  const view = await service.node(me, MINE);
  assert.ok(!JSON.stringify(view).includes('shadow'));
  assert.equal(view.flags.reason, null);
});

test('contribution points per epoch: newest first, bounded in count, each with its time span and total', async () => {
  const { store, service } = setUp();
  store.db.state.points.set(MINE, [
    { epoch: 10, job_points: 5, uptime_points: 2 },
    { epoch: 12, job_points: 1, uptime_points: 0 },
    { epoch: 11, job_points: 0, uptime_points: 3 },
  ]);
  const epochs = await service.contributionPoints(me, MINE, 2);
  assert.deepEqual(epochs.map((e) => [e.epoch, e.total_points]), [[12, 1], [11, 3]]);
  assert.deepEqual([epochs[0]!.starts_at.toISOString(), epochs[0]!.ends_at.toISOString()], ['1970-01-01T12:00:00.000Z', '1970-01-01T13:00:00.000Z']);
});

test('withdrawals are the caller\'s own, with the amount in credits', async () => {
  const { store, service } = setUp();
  store.db.state.withdrawals.push(
    { id: 'w-a', operator_account_id: 'op-1', amount_micro: 1_500_000, destination: 'iban:A', status: 'requested', created_at: new Date(), exported_at: null },
    { id: 'w-b', operator_account_id: 'op-2', amount_micro: 9_000_000, destination: 'iban:B', status: 'requested', created_at: new Date(), exported_at: null },
  );
  assert.deepEqual((await service.withdrawals(me, 10)).map((w) => [w.id, w.amount]), [['w-a', '1.500000']]);
  assert.equal((await service.requestWithdrawal(me, 2, 'iban:A')).amount, '2.000000');
});
