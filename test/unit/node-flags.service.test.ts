// Fast tier (docs/testing.md): NodeFlagsService's rules on in-memory fakes of its store and mirror. The
// same service on the real engines: test/integration/node-flags.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NodeFlagsService, type CooldownRule } from '../../src/network/node-flags.service.js';
import { AppError } from '../../src/errors.js';
import { FakeNodeFlagsMirror, FakeNodeFlagsStore } from '../fakes/node-flags.store.js';

const RULE: CooldownRule = { failures: 3, seconds: 60, windowMs: 600_000 };

function setUp() {
  const store = new FakeNodeFlagsStore();
  const mirror = new FakeNodeFlagsMirror();
  store.addNode('0xnode');
  return { store, mirror, service: new NodeFlagsService({ store, mirror, rule: RULE }) };
}

test('a change keeps the flags it does not name, is logged with its before and after, and reaches the mirror', async () => {
  const { store, mirror, service } = setUp();
  await service.set('0xnode', { paused: true }, 'maintenance', 'admin-api');
  const after = await service.set('0xnode', { frozen: true }, 'audit', 'cli:ops');
  assert.deepEqual(
    { paused: after.paused, frozen: after.frozen, shadowBanned: after.shadowBanned, reason: after.reason },
    { paused: true, frozen: true, shadowBanned: false, reason: 'audit' },
  );
  assert.deepEqual(mirror.flags.get('0xnode'), { paused: true, frozen: true, shadowBanned: false, cooldownUntil: null });
  const changes = store.db.state.adminChanges;
  assert.deepEqual(changes.map((c) => [c.actor, c.action, c.subject]), [['admin-api', 'node_flags.set', '0xnode'], ['cli:ops', 'node_flags.set', '0xnode']]);
  assert.equal(changes[0]!.before, null, 'the first change replaces nothing');
  assert.equal((changes[1]!.before as { paused: boolean }).paused, true);
});

test('an unknown node is not found, and nothing is written', async () => {
  const { store, mirror, service } = setUp();
  await assert.rejects(service.set('0xnobody', { paused: true }), (e: unknown) => e instanceof AppError && e.code === 'not_found');
  assert.equal(store.db.state.flags.size, 0);
  assert.equal(mirror.flags.size, 0);
});

test('a change whose log entry fails is not made: not in the store, not in the mirror', async () => {
  const { store, mirror, service } = setUp();
  store.db.failNext('recordAdminChange');
  await assert.rejects(service.set('0xnode', { shadowBanned: true }, 'spam', 'admin-api'), /recordAdminChange failed/);
  assert.equal(store.db.state.flags.size, 0, 'the flags written before the failed log entry rolled back');
  assert.equal(mirror.flags.size, 0);
});

test('rule-made changes (no actor) are not in the admin change log', async () => {
  const { store, service } = setUp();
  await service.set('0xnode', { cooldownSeconds: 30 }, 'rule');
  assert.equal(store.db.state.flags.get('0xnode')!.reason, 'rule');
  assert.deepEqual(store.db.state.adminChanges, []);
});

test('the rule\'s number of failures in a row puts the node in cooldown for the rule\'s time, and the streak starts again', async () => {
  const { store, mirror, service } = setUp();
  const start = Date.now();
  await service.recordFailure('0xnode', 'timeout');
  await service.recordFailure('0xnode', 'error');
  assert.equal(store.db.state.flags.size, 0, 'two failures: no cooldown yet');
  await service.recordFailure('0xnode', 'invalid_result');
  const flags = store.db.state.flags.get('0xnode')!;
  assert.ok(flags.cooldownUntil! >= start + RULE.seconds * 1000 && flags.cooldownUntil! <= Date.now() + RULE.seconds * 1000);
  assert.match(flags.reason, /3 failed attempts in a row \(last: invalid_result\)/);
  assert.equal(mirror.streaks.has('0xnode'), false, 'the streak was cleared when it put the node in cooldown');
  assert.equal(mirror.flags.get('0xnode')!.cooldownUntil, flags.cooldownUntil);
});

test('a completed attempt ends the streak: failures either side of it do not add up', async () => {
  const { store, service } = setUp();
  await service.recordFailure('0xnode', 'timeout');
  await service.recordFailure('0xnode', 'timeout');
  await service.recordSuccess('0xnode');
  await service.recordFailure('0xnode', 'timeout');
  await service.recordFailure('0xnode', 'timeout');
  assert.equal(store.db.state.flags.size, 0);
});

test('reinstating clears every flag and a cooldown in force', async () => {
  const { mirror, service } = setUp();
  await service.set('0xnode', { paused: true, frozen: true, shadowBanned: true, cooldownSeconds: 600 }, 'all', 'admin-api');
  const back = await service.reinstate('0xnode', 'reviewed', 'admin-api');
  assert.deepEqual({ ...back }, { nodeId: '0xnode', paused: false, frozen: false, shadowBanned: false, cooldownUntil: null, reason: 'reviewed' });
  assert.deepEqual(mirror.flags.get('0xnode'), { paused: false, frozen: false, shadowBanned: false, cooldownUntil: null });
});
