// Fast tier (docs/testing.md): OperatorsService (enrolment, earnings, withdrawals) on an in-memory fake of
// its store. The same service on the real engines: test/integration/operators.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OperatorsService } from '../../src/gate/operators.service.js';
import { AppError } from '../../src/errors.js';
import { addressOf, generatePrivateKey } from '../../src/domain/signatures.js';
import { enrolmentTokenProblem } from '../../src/domain/enrolment.js';
import { FakeOperatorsStore } from '../fakes/operators.store.js';

const NODE = '0x' + 'ab'.repeat(20);
const KEY = generatePrivateKey();
const OP1 = '00000000-0000-4000-8000-000000000001';
const OP2 = '00000000-0000-4000-8000-000000000002';

function setUp(networkKey: string | null = KEY) {
  const store = new FakeOperatorsStore();
  store.db.state.accounts.add(OP1).add(OP2);
  return { store, service: new OperatorsService({ store, networkKey }) };
}

const code = (c: string) => (e: unknown) => e instanceof AppError && e.code === c;

test('enrolment: any case of an address, idempotent, refused when another operator holds the node', async () => {
  const { store, service } = setUp();
  assert.deepEqual(await service.enrolNode(OP1, NODE.toUpperCase().replace('0X', '0x')), { node_id: NODE, operator_account_id: OP1 });
  await service.enrolNode(OP1, NODE);
  await assert.rejects(service.enrolNode(OP2, NODE), code('node_enrolled_elsewhere'));
  await assert.rejects(service.enrolNode(OP1, 'not-an-address'), /EVM address/);
  await assert.rejects(service.enrolNode('00000000-0000-4000-8000-000000000009', NODE), code('not_found'));
  assert.equal(store.db.state.nodes.get(NODE), OP1);
});

test('an enrolment token names the node and operator, is signed by the network key and bounded in time', async () => {
  const { service } = setUp();
  const t = await service.enrolmentToken(OP1, NODE, 2);
  assert.equal(t.node_id, NODE);
  assert.equal(enrolmentTokenProblem(t.token, addressOf(KEY), NODE, OP1), null);
  assert.notEqual(enrolmentTokenProblem(t.token, addressOf(KEY), NODE, OP2), null, 'bound to its operator');
  assert.notEqual(enrolmentTokenProblem(t.token, addressOf(KEY), NODE, OP1, Date.parse(t.expires_at) + 1), null, 'expires');
  await assert.rejects(service.enrolmentToken(OP1, NODE, 0), /ttl_hours/);
  await assert.rejects(service.enrolmentToken(OP1, NODE, Number.NaN), /ttl_hours/);
  await assert.rejects(setUp(null).service.enrolmentToken(OP1, NODE), /NETWORK_SIGNING_KEY/);
});

test('a withdrawal moves credits from earnings to pending in one balanced posting, and is exported once', async () => {
  const { store, service } = setUp();
  store.earn(OP1, 5_000_000);
  const w = await service.requestWithdrawal(OP1, 2, 'iban:XX');
  assert.equal(w.amount_micro, 2_000_000);
  const e = await service.earnings(OP1);
  assert.deepEqual([e.earned, e.pending_withdrawal], ['3.000000', '2.000000']);
  const first = await service.exportWithdrawals();
  assert.deepEqual(first.rows.map((r) => r.id), [w.id]);
  assert.match(first.csv, /^id,operator_account_id,amount,destination,created_at\r\n/);
  assert.match(first.csv, /,2\.000000,iban:XX,/);
  assert.deepEqual((await service.exportWithdrawals()).rows, [], 'exported once');
});

test('a withdrawal above earnings is a 402 and writes nothing; bad amounts and destinations are 400s', async () => {
  const { store, service } = setUp();
  store.earn(OP1, 1_000_000);
  await assert.rejects(service.requestWithdrawal(OP1, 1.000001, 'iban:XX'), code('insufficient_credits'));
  await assert.rejects(service.requestWithdrawal(OP1, 0.0000001, 'iban:XX'), /at least 0.000001/);
  await assert.rejects(service.requestWithdrawal(OP1, Number.POSITIVE_INFINITY, 'iban:XX'), /at least 0.000001/);
  await assert.rejects(service.requestWithdrawal(OP1, 1, '  '), /destination/);
  await assert.rejects(service.requestWithdrawal(OP1, 1, 'x'.repeat(201)), /destination/);
  assert.deepEqual([store.db.state.postings.length, store.db.state.withdrawals.length], [0, 0]);
});

test('when recording the withdrawal fails, its posting rolls back with it', async () => {
  const { store, service } = setUp();
  store.earn(OP1, 1_000_000);
  store.db.failNext('insertWithdrawal');
  await assert.rejects(service.requestWithdrawal(OP1, 1, 'iban:XX'), /insertWithdrawal failed/);
  assert.equal((await service.earnings(OP1)).earned, '1.000000');
  assert.equal(store.db.state.postings.length, 0);
});
