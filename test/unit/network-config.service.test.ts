// Fast tier (docs/testing.md): NetworkConfigService (versions, publishing, the version in force) on an
// in-memory fake of its store. The same service on the real engines: test/integration/network-config.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { foreignSignedConfig, NetworkConfigService } from '../../src/network/network-config.service.js';
import { verifyNetworkConfig } from '../../src/domain/network-config.js';
import { addressOf, generatePrivateKey } from '../../src/domain/signatures.js';
import { loadConfig } from '../../src/config.js';
import { AppError } from '../../src/errors.js';
import { FakeNetworkConfigStore } from '../fakes/network-config.store.js';

const KEY = generatePrivateKey();

function setUp(networkKey: string | null = KEY) {
  const store = new FakeNetworkConfigStore();
  store.db.state.models.push({ name: 'org/model-a', version: '2', content_hash: null, min_gpu_memory_mb: 8192 });
  const online = new Map<string, string | null>();
  const config = { ...loadConfig({}), JOB_ATTEMPT_TIMEOUT_MS: 45_000, JOB_MAX_ATTEMPTS: 4 };
  const service = new NetworkConfigService({ store, networkKey, config, nodeDigests: { online: () => Promise.resolve(online) }, logger: pino({ level: 'silent' }) });
  return { store, service, online };
}

test('before genesis the environment\'s values apply; genesis makes version 1 once, signed by the network key', async () => {
  const { store, service } = setUp();
  assert.equal(service.current(), null);
  assert.equal(service.jobs().executionTimeoutMs, 45_000);
  assert.equal(service.jobs().maxAttempts, 4);
  const first = await service.ensureGenesis();
  const again = await service.ensureGenesis();
  assert.equal(first.version, 1);
  assert.equal(again.digest, first.digest, 'idempotent');
  assert.equal(store.db.state.versions.length, 1);
  assert.deepEqual(first.document.models.map((m) => [m.name, m.version]), [['org/model-a', '2']]);
  assert.equal(verifyNetworkConfig(first, addressOf(KEY)).ok, true, 'nodes pinning the network address accept it');
  assert.equal(store.db.state.adminChanges[0]!.action, 'network_config.publish');
});

test('a publish keeps every field it does not name, chains to the previous digest, and is in force at once', async () => {
  const { store, service } = setUp();
  const genesis = await service.ensureGenesis();
  const v2 = await service.publish({ jobs: { maxAttempts: 2, executionTimeoutMs: undefined } }, 'admin-api');
  assert.equal(v2.version, 2);
  assert.equal(v2.document.previousDigest, genesis.digest);
  assert.equal(v2.document.jobs.maxAttempts, 2);
  assert.equal(v2.document.jobs.executionTimeoutMs, 45_000, 'kept');
  assert.equal(service.jobs().maxAttempts, 2, 'in force on this instance at once');
  const log = store.db.state.adminChanges.at(-1)!;
  assert.deepEqual([log.actor, log.before, log.after], ['admin-api', { version: 1, digest: genesis.digest }, { version: 2, digest: v2.digest }]);
  assert.deepEqual((await service.list(10)).map((c) => c.version), [2, 1]);
  assert.equal((await service.get(1)).digest, genesis.digest);
  await assert.rejects(service.get(9), (e: unknown) => e instanceof AppError && e.code === 'not_found');
});

test('a bad publish is a 400 naming the field, and nothing is stored', async () => {
  const { store, service } = setUp();
  await service.ensureGenesis();
  await assert.rejects(service.publish({ jobs: { maxAttempts: 0 } }, 'admin-api'), (e: unknown) => e instanceof AppError && e.code === 'invalid_request' && /maxAttempts|max_attempts/.test(JSON.stringify(e.details) + e.message));
  await assert.rejects(service.publish({ surprise: true } as never, 'admin-api'), (e: unknown) => e instanceof AppError && e.code === 'invalid_request');
  assert.equal(store.db.state.versions.length, 1);
  assert.equal(store.db.state.adminChanges.length, 1);
});

test('an instance without the network key reads but never publishes', async () => {
  const { store, service } = setUp(null);
  await assert.rejects(service.publish({}, 'admin-api'), /needs the network key/);
  assert.equal(store.db.state.versions.length, 0);
});

test('a version taken by a racing publisher is a conflict, and the loser\'s log entry is not written', async () => {
  const { store, service } = setUp();
  await service.ensureGenesis();
  store.racing = () => {
    store.racing = null;
    store.db.state.versions.push({ ...store.db.state.versions[0]!, version: 2, published_by: 'elsewhere' });
  };
  await assert.rejects(service.publish({ jobs: { maxAttempts: 2 } }, 'admin-api'), (e: unknown) => e instanceof AppError && e.code === 'version_taken');
  assert.equal(store.db.state.adminChanges.length, 1);
});

test('refresh never goes back to an older version, and the longest timeout of any version sizes clean-ups', async () => {
  const { store, service } = setUp();
  await service.ensureGenesis();
  await service.publish({ jobs: { executionTimeoutMs: 120_000 } }, 'admin-api');
  await service.publish({ jobs: { executionTimeoutMs: 10_000 } }, 'admin-api');
  assert.equal(service.jobs().executionTimeoutMs, 10_000);
  assert.equal(service.longestExecutionTimeoutMs(), 120_000);
  store.db.state.versions.pop();
  await service.refresh();
  assert.equal(service.current()!.version, 3, 'kept the newer version it had');
});

test('adoption counts the online nodes on the version in force and lists the others', async () => {
  const { service, online } = setUp();
  const v1 = await service.ensureGenesis();
  online.set('0xa', v1.digest).set('0xb', null).set('0xc', 'old-digest');
  const a = await service.adoption();
  assert.deepEqual({ version: a.version, online: a.online, current: a.current }, { version: 1, online: 3, current: 1 });
  assert.deepEqual(a.behind, [{ nodeId: '0xb', digest: null }, { nodeId: '0xc', digest: 'old-digest' }]);
});

test('a config in force signed by another key is reported with its signer', async () => {
  const { store, service } = setUp();
  await service.ensureGenesis();
  assert.equal(await foreignSignedConfig(store, KEY), null);
  assert.deepEqual(await foreignSignedConfig(store, generatePrivateKey()), { version: 1, signer: addressOf(KEY) });
});
