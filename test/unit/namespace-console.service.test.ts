// Fast tier (docs/testing.md): the namespace console's scoping and views on an in-memory fake of its
// store. The same console on the real engines: test/integration/account-console.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NamespaceConsoleService } from '../../src/gate/namespace-console.service.js';
import type { AccountPrincipal } from '../../src/gate/account.service.js';
import type { NamespaceJobRow } from '../../src/postgres/namespace-jobs.repository.js';
import { AppError } from '../../src/errors.js';
import { FakeNamespaceConsoleStore } from '../fakes/namespace-console.store.js';

const me = { accountId: 'acct-1' } as AccountPrincipal;

function job(id: string, namespace_id: string, ageMs: number, over: Partial<NamespaceJobRow> = {}): NamespaceJobRow & { namespace_id: string } {
  return { id, namespace_id, api_key_id: 'k', model: 'org/m', status: 'completed', priority: 'standard', attempt: 1, prompt_tokens: 3, completion_tokens: 5, hold_micro: 2_500_000, charged_micro: 1_250_000, error_code: null, created_at: new Date(Date.now() - ageMs), finished_at: new Date(), ...over };
}

function setUp() {
  const store = new FakeNamespaceConsoleStore();
  store.addNamespace('acct-1', 'ns-mine');
  store.addNamespace('acct-2', 'ns-theirs');
  store.addNamespace('acct-1', 'ns-deleted', true);
  const balances = new Map([['ns-mine', { namespace_id: 'ns-mine', available_micro: 7_000_000, held_micro: 500_000 }]]);
  const credits = { balance: (id: string) => Promise.resolve(balances.get(id) ?? { namespace_id: id, available_micro: 0, held_micro: 0 }) };
  return { store, service: new NamespaceConsoleService({ store, credits }) };
}

const notFound = (e: unknown) => e instanceof AppError && e.code === 'not_found';

test("another account's namespace, and a deleted one, are not found, and nothing of them is read", async () => {
  const { store, service } = setUp();
  await assert.rejects(service.balance(me, 'ns-theirs'), notFound);
  await assert.rejects(service.recentJobs(me, 'ns-theirs', 10), notFound);
  await assert.rejects(service.balance(me, 'ns-deleted'), notFound);
  await assert.rejects(service.balance(me, 'ns-none'), notFound);
  assert.equal(store.db.calls.includes('listRecentJobs'), false);
});

test('the balance in micro-credits and in credits', async () => {
  const { service } = setUp();
  assert.deepEqual(await service.balance(me, 'ns-mine'), { namespace_id: 'ns-mine', available_micro: 7_000_000, held_micro: 500_000, available: '7.000000', held: '0.500000' });
});

test('recent jobs: the last week only, newest first, bounded, with hold and charge in credits (null until settled)', async () => {
  const { store, service } = setUp();
  store.db.state.jobs.push(
    job('old', 'ns-mine', 8 * 86_400_000),
    job('j1', 'ns-mine', 3_000),
    job('j2', 'ns-mine', 1_000, { status: 'running', charged_micro: null, finished_at: null }),
    job('j3', 'ns-mine', 2_000),
    job('other', 'ns-theirs', 500),
  );
  const jobs = await service.recentJobs(me, 'ns-mine', 2);
  assert.deepEqual(jobs.map((j) => [j.id, j.hold, j.credits_charged]), [['j2', '2.500000', null], ['j3', '2.500000', '1.250000']]);
  assert.deepEqual((await service.recentJobs(me, 'ns-mine', 10)).map((j) => j.id), ['j2', 'j3', 'j1']);
});
