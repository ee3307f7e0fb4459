// Fast tier (docs/testing.md): ModelsAdminService's rules on in-memory fakes of the gate's tables. The
// same service on the real engines: test/integration/admin.test.ts, priority.test.ts, cloud-api-tools.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ModelsAdminService, type ModelInput } from '../../src/gate/models-admin.service.js';
import { AppError } from '../../src/errors.js';
import { FakeGateDatabase } from '../fakes/gate-tables.js';
import { FakeModelSideEffects, FakeModelsAdminStore } from '../fakes/models-admin.store.js';

const refused = (code: string) => (e: unknown) => e instanceof AppError && e.code === code;
const MODEL: ModelInput = { name: 'meta/llama-8b', inputPricePerMtok: 10, outputPricePerMtok: 20 };

function setUp() {
  const db = new FakeGateDatabase();
  const effects = new FakeModelSideEffects(db);
  const service = new ModelsAdminService({ store: new FakeModelsAdminStore(db), eligibility: effects.eligibility, queue: effects.queue });
  return { db, effects, service };
}

test('a model change is logged with its before and after, bumps the eligibility revision, then is mirrored and its queue declared', async () => {
  const { db, effects, service } = setUp();
  await service.putModel({ ...MODEL, version: '2', minGpuMemoryMb: 8000, prioritySurchargeBps: { urgent: 5000 } }, 'cli:ops');
  const row = await service.putModel({ ...MODEL, inputPricePerMtok: 11 }, 'admin-api');
  assert.deepEqual([row.input_price_micro, row.version, row.min_gpu_memory_mb, row.priority_surcharge_bps], [11, '2', 8000, { urgent: 5000 }], 'requirements left out are kept');
  const changes = db.state.adminChanges;
  assert.deepEqual(changes.map((c) => [c.actor, c.action, c.subject]), [['cli:ops', 'model.put', MODEL.name], ['admin-api', 'model.put', MODEL.name]]);
  assert.equal(changes[0]!.before, null);
  assert.equal((changes[1]!.before as { input_price_micro: number }).input_price_micro, 10);
  assert.equal(db.state.revision, 2);
  assert.equal(effects.syncedRevision, 2, 'the mirror was synced after the revision was bumped');
  assert.deepEqual(effects.declared, [MODEL.name, MODEL.name]);
});

test('bad names, versions, hashes, prices, GPU floors and surcharges are refused before anything is written', async () => {
  const { db, effects, service } = setUp();
  const bad: ModelInput[] = [
    { ...MODEL, name: 'has space' },
    { ...MODEL, version: 'v 1' },
    { ...MODEL, contentHash: 'ABC' },
    { ...MODEL, inputPricePerMtok: 1.5 },
    { ...MODEL, outputPricePerMtok: -1 },
    { ...MODEL, minCharge: -1 },
    { ...MODEL, minGpuMemoryMb: -5 },
    { ...MODEL, prioritySurchargeBps: { express: 100 } },
    { ...MODEL, prioritySurchargeBps: { bulk: -10_000 } },
  ];
  for (const m of bad) await assert.rejects(service.putModel(m), refused('invalid_request'), JSON.stringify(m));
  assert.equal(db.state.models.size, 0);
  assert.equal(db.calls.length, 0, 'no store call was made');
  assert.deepEqual(effects.declared, []);
});

test('a model change whose log entry fails is not made: not stored, revision not bumped, not mirrored, no queue', async () => {
  const { db, effects, service } = setUp();
  db.failNext('recordAdminChange');
  await assert.rejects(service.putModel(MODEL, 'admin-api'), /recordAdminChange failed/);
  assert.equal(db.state.models.size, 0);
  assert.equal(db.state.revision, 0);
  assert.equal(effects.syncedRevision, -1);
  assert.deepEqual(effects.declared, []);
});

test('a usage bound names a registered tokenizer and a ratio in (0, 8]; it is logged', async () => {
  const { db, service } = setUp();
  await service.putModel(MODEL);
  await assert.rejects(service.setUsageBound(MODEL.name, { maxTokensPerByte: 0 }), refused('invalid_request'));
  await assert.rejects(service.setUsageBound(MODEL.name, { maxTokensPerByte: 9 }), refused('invalid_request'));
  await assert.rejects(service.setUsageBound(MODEL.name, { tokenizerSha256: 'a'.repeat(64) }), refused('invalid_request'));
  await assert.rejects(service.setUsageBound('nobody', { maxTokensPerByte: 2 }), refused('not_found'));
  db.state.tokenizers.set('b'.repeat(64), { sha256: 'b'.repeat(64), tokenizer: '{}', config: {} });
  const row = await service.setUsageBound(MODEL.name, { tokenizerSha256: 'b'.repeat(64), maxTokensPerByte: 2 }, 'cli:ops');
  assert.deepEqual([row.tokenizer_sha256, row.max_tokens_per_byte], ['b'.repeat(64), 2]);
  assert.deepEqual(db.state.adminChanges.at(-1)!.action, 'model.usage_bound');
});

test('a tokenizer the library cannot load is refused', async () => {
  const { db, service } = setUp();
  await assert.rejects(service.putTokenizer('{"not": "a tokenizer"}'), refused('invalid_request'));
  assert.equal(db.state.tokenizers.size, 0);
});

test('aliases replace the list (duplicates once), are logged, and may not be a model\'s name or another model\'s alias', async () => {
  const { db, service } = setUp();
  await service.putModel(MODEL);
  await service.putModel({ ...MODEL, name: 'other' });
  assert.deepEqual(await service.setModelAliases(MODEL.name, ['llama', 'llama', 'l8b'], 'admin-api'), { model: MODEL.name, aliases: ['l8b', 'llama'] });
  assert.deepEqual(db.state.adminChanges.at(-1)!.after, { aliases: ['l8b', 'llama'] });
  const logged = db.state.adminChanges.length;
  await assert.rejects(service.setModelAliases('other', ['llama']), refused('conflict'));
  await assert.rejects(service.setModelAliases('other', [MODEL.name]), (e: unknown) => refused('conflict')(e) && /the name of a model/.test((e as Error).message));
  await assert.rejects(service.setModelAliases('other', ['bad alias']), refused('invalid_request'));
  await assert.rejects(service.setModelAliases('nobody', ['x']), refused('not_found'));
  assert.equal(db.state.adminChanges.length, logged, 'refused changes are not logged');
  assert.deepEqual([...db.state.aliases], [['llama', MODEL.name], ['l8b', MODEL.name]]);
});
