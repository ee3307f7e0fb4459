// Fast tier (docs/testing.md): CreditsAdminService's rules on in-memory fakes of the gate's tables. The
// same service on the real engines: test/integration/ledger.test.ts, admin.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { CreditsAdminService, MAX_TOPUP_CREDITS } from '../../src/gate/credits-admin.service.js';
import { AppError } from '../../src/errors.js';
import { FakeGateDatabase } from '../fakes/gate-tables.js';
import { FakeCreditsAdminStore } from '../fakes/credits-admin.store.js';

const refused = (code: string) => (e: unknown) => e instanceof AppError && e.code === code;

function setUp() {
  const db = new FakeGateDatabase();
  const store = new FakeCreditsAdminStore(db);
  const ns = db.addNamespace(db.addAccount('acme').id, 'prod');
  return { db, store, ns, service: new CreditsAdminService({ store }) };
}

test('a top-up is one balanced posting from the funding account, to the micro-credit', async () => {
  const { db, service, ns } = setUp();
  const b = await service.topUp(ns.id, 2.5, 'first');
  await service.topUp(ns.id, 0.000001);
  assert.deepEqual(await service.balance(ns.id), { namespace_id: ns.id, available_micro: 2_500_001, held_micro: 0 });
  assert.equal(b.available_micro, 2_500_000);
  assert.equal(db.ledgerSum(), 0, 'the ledger sums to zero');
  assert.equal(db.balance('funding', null), -2_500_001);
  assert.deepEqual(db.state.postings.map((p) => [p.kind, p.memo, p.lines.reduce((s, l) => s + l.amount, 0)]), [['topup', 'first', 0], ['topup', '', 0]]);
  assert.deepEqual(await service.ledgerTotals(), { entriesTotal: 0, balancesTotal: 0, mismatchedAccounts: 0 });
});

test('amounts outside (0, MAX_TOPUP_CREDITS], not numbers, or under a micro-credit are refused, and nothing is posted', async () => {
  const { db, service, ns } = setUp();
  for (const bad of [0, -1, Number.NaN, Infinity, MAX_TOPUP_CREDITS + 1, 0.0000004]) {
    await assert.rejects(service.topUp(ns.id, bad), refused('invalid_request'), String(bad));
  }
  assert.equal(db.state.postings.length, 0);
  assert.equal(db.calls.includes('post'), false);
});

test('an unknown or deleted namespace gets no credits', async () => {
  const { db, service, ns } = setUp();
  await assert.rejects(service.topUp(randomUUID(), 1), refused('not_found'));
  db.state.namespaces.get(ns.id)!.deleted = true;
  await assert.rejects(service.topUp(ns.id, 1), refused('not_found'));
  await assert.rejects(service.balance(ns.id), refused('not_found'));
  assert.equal(db.state.postings.length, 0);
});

test('a namespace deleted while the top-up waited for its ledger lock gets nothing: the posting rolls back', async () => {
  const { db, store, service, ns } = setUp();
  // The deletion commits between the first check and the re-check under the lock.
  const post = db.post.bind(db);
  db.post = (p) => {
    post(p);
    db.state.namespaces.get(ns.id)!.deleted = true;
  };
  await assert.rejects(service.topUp(ns.id, 5), refused('not_found'));
  assert.equal(db.state.postings.length, 0);
  assert.equal(db.balance('ns_available', ns.id), 0);
  assert.equal(db.ledgerSum(), 0);
  assert.ok(store.db.calls.filter((c) => c === 'findNamespace').length >= 2, 'checked again inside the transaction');
});
