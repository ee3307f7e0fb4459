// Fast tier (docs/testing.md): EligibilityService's rules on in-memory fakes of its store and mirror.
// The same service on the real engines: test/integration/eligibility.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EligibilityService } from '../../src/network/eligibility.service.js';
import { AppError } from '../../src/errors.js';
import { FakeEligibilityMirror, FakeEligibilityStore } from '../fakes/eligibility.store.js';

const NODE = '0x' + 'a'.repeat(40);

function setUp() {
  const store = new FakeEligibilityStore();
  const mirror = new FakeEligibilityMirror();
  return { store, mirror, service: new EligibilityService({ store, mirror }) };
}

const code = (c: string) => (e: unknown) => e instanceof AppError && e.code === c;

test('a bad subcloud name, network or policy is refused before anything is written', async () => {
  const { store, mirror, service } = setUp();
  await assert.rejects(service.create('Bad Name', 'mainnet'), code('invalid_request'));
  await assert.rejects(service.create('vault', 'moonnet' as 'mainnet'), /network must be one of/);
  await assert.rejects(service.create('vault', 'mainnet', { allowedModels: ['not a model!'] }), /is not a model name/);
  await assert.rejects(service.create('vault', 'mainnet', { allowedModels: Array.from({ length: 257 }, (_, i) => `org/m${i}`) }), /at most 256/);
  await assert.rejects(service.create('vault', 'mainnet', { minGpuMemoryMb: -1 }), /min_gpu_memory_mb/);
  await assert.rejects(service.create('vault', 'mainnet', { minGpuMemoryMb: 1.5 }), /min_gpu_memory_mb/);
  assert.equal(store.db.state.subclouds.size, 0);
  assert.equal(store.db.state.revision, 0);
  assert.equal(mirror.replaced, 0);
});

test('a change commits with a revision bump and its log entry, then the mirror gets the new rules', async () => {
  const { store, mirror, service } = setUp();
  const view = await service.create('vault', 'mainnet', { allowedModels: ['org/b', 'org/a', 'org/a'], isolate: true }, 'admin-api');
  assert.deepEqual(view.allowed_models, ['org/a', 'org/b'], 'deduplicated and sorted');
  assert.equal(store.db.state.revision, 1);
  assert.deepEqual(store.db.state.adminChanges.map((c) => [c.actor, c.action, c.subject]), [['admin-api', 'subcloud.create', 'vault']]);
  assert.equal(mirror.rules?.revision, 'fake:1');
  assert.deepEqual(mirror.rules?.subclouds.map((s) => [s.name, s.isolate, s.models]), [['vault', true, ['org/a', 'org/b']]]);
});

test('a taken name is a conflict and logs nothing', async () => {
  const { store, service } = setUp();
  await service.create('vault', 'mainnet');
  await assert.rejects(service.create('vault', 'testnet'), code('conflict'));
  assert.equal(store.db.state.subclouds.get('vault')!.network, 'mainnet');
  assert.equal(store.db.state.adminChanges.length, 1);
});

test('an update changes only the policy fields it names', async () => {
  const { store, service } = setUp();
  await service.create('vault', 'mainnet', { allowedModels: ['org/a'], minGpuMemoryMb: 8192, isolate: true });
  const after = await service.update('vault', { minGpuMemoryMb: 16384 }, 'cli:ops');
  assert.deepEqual([after.allowed_models, after.min_gpu_memory_mb, after.isolate], [['org/a'], 16384, true]);
  const log = store.db.state.adminChanges.at(-1)!;
  assert.equal((log.before as { min_gpu_memory_mb: number }).min_gpu_memory_mb, 8192);
  await assert.rejects(service.update('nowhere', { isolate: false }), code('not_found'));
});

test('a subcloud with namespaces bound to it is not deleted; an unbound one is, with its members', async () => {
  const { store, service } = setUp();
  store.addNamespace('ns-1');
  store.addNode(NODE);
  await service.create('vault', 'mainnet');
  await service.addMember('vault', NODE);
  await service.bindNamespace('ns-1', 'vault');
  await assert.rejects(service.delete('vault'), /unbind them first/);
  assert.ok(store.db.state.subclouds.has('vault'));
  await service.bindNamespace('ns-1', null);
  await service.delete('vault', 'admin-api');
  assert.equal(store.db.state.subclouds.size, 0);
  assert.equal(store.db.state.members.has('vault'), false);
  await assert.rejects(service.delete('vault'), code('not_found'));
});

test('members: a node id must be an address and a registered node; adding twice logs once; removing a non-member is not found', async () => {
  const { store, mirror, service } = setUp();
  await service.create('vault', 'mainnet');
  await assert.rejects(service.addMember('vault', 'node-1'), /lower-case addresses/);
  const revision = store.db.state.revision;
  await assert.rejects(service.addMember('vault', NODE), code('not_found'));
  assert.equal(store.db.state.revision, revision, 'the refused change rolled back with its revision bump');
  store.addNode(NODE);
  await service.addMember('vault', NODE, 'admin-api');
  await service.addMember('vault', NODE, 'admin-api');
  assert.equal(store.db.state.adminChanges.filter((c) => c.action === 'subcloud.member_add').length, 1);
  assert.deepEqual(mirror.rules?.subclouds[0]!.members, [NODE]);
  await service.removeMember('vault', NODE);
  await assert.rejects(service.removeMember('vault', NODE), code('not_found'));
  await assert.rejects(service.addMember('nowhere', NODE), code('not_found'));
});

test('a namespace binds only to a subcloud of its own network, and the binding is logged', async () => {
  const { store, service } = setUp();
  store.addNamespace('ns-main', 'mainnet');
  await service.create('lab', 'testnet');
  await assert.rejects(service.bindNamespace('ns-main', 'lab'), /serves testnet; the namespace is on mainnet/);
  await assert.rejects(service.bindNamespace('ns-main', 'nowhere'), code('not_found'));
  await assert.rejects(service.bindNamespace('ns-gone', null), code('not_found'));
  assert.equal(store.db.state.namespaces.get('ns-main')!.subcloud, null);
  await service.create('vault', 'mainnet');
  const bound = await service.bindNamespace('ns-main', 'vault', 'admin-api');
  assert.equal(bound.subcloud, 'vault');
  assert.deepEqual(store.db.state.adminChanges.at(-1), { actor: 'admin-api', action: 'namespace.subcloud_bind', subject: 'ns-main', before: { subcloud: null }, after: { subcloud: 'vault' } });
});

test('with the mirror down a change stays committed, and the next stale check mirrors it once', async () => {
  const { store, mirror, service } = setUp();
  mirror.down = true;
  await assert.rejects(service.create('vault', 'mainnet'), /Redis is down/);
  assert.ok(store.db.state.subclouds.has('vault'), 'committed in the store before the mirror write');
  mirror.down = false;
  assert.equal(await service.syncIfStale(), true);
  assert.deepEqual(mirror.rules?.subclouds.map((s) => s.name), ['vault']);
  assert.equal(await service.syncIfStale(), false, 'up to date: nothing to do');
});

test('concurrent syncs in one process share one read of the rules', async () => {
  const { store, service } = setUp();
  await Promise.all([service.sync(), service.sync(), service.sync()]);
  assert.equal(store.db.calls.filter((c) => c === 'readRules').length, 1);
});
