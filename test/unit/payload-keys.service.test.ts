// Fast tier (docs/testing.md): PayloadKeys' rules (documents sealed per namespace and job, master key
// versions and rotation, a shred makes what it covers unreadable on every instance at once) on an
// in-memory fake of its store; the AES-GCM and HKDF are node:crypto's, real. The same service on the real
// engines: test/integration/space-keep.test.ts and space-shred-instances.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { NamespaceShreddedError, PayloadKeys } from '../../src/space/payload-keys.service.js';
import { FakePayloadKeysStore } from '../fakes/payload-keys.store.js';

const NS = '00000000-0000-4000-8000-00000000000a';
const OTHER_NS = '00000000-0000-4000-8000-00000000000b';
const JOB = '00000000-0000-4000-8000-000000000001';
const JOB2 = '00000000-0000-4000-8000-000000000002';
const V1 = randomBytes(32);
const V2 = randomBytes(32);

function setUp() {
  const store = new FakePayloadKeysStore();
  store.namespaces.add(NS);
  store.namespaces.add(OTHER_NS);
  return { store, keysWith: (masterKeys: Map<number, Buffer>) => new PayloadKeys({ store, masterKeys, logger: pino({ level: 'silent' }) }) };
}

async function sealed(keys: PayloadKeys, namespaceId: string, jobId: string, text: string) {
  const { sealed: s, stored } = await keys.seal(namespaceId, jobId, Buffer.from(text));
  await stored;
  return s;
}

const texts = (bufs: Array<Buffer | null>) => bufs.map((b) => b?.toString() ?? null);

test('seal and open: a document opens for its own namespace and job only, and its box holds no plaintext', async () => {
  const { store, keysWith } = setUp();
  const keys = keysWith(new Map([[1, V1]]));
  const s = await sealed(keys, NS, JOB, 'a secret prompt');
  assert.ok(!s.box.includes(Buffer.from('secret')));
  assert.deepEqual(texts(await keys.open([{ namespaceId: NS, jobId: JOB, sealed: s }])), ['a secret prompt']);
  assert.deepEqual(texts(await keys.open([{ namespaceId: OTHER_NS, jobId: JOB, sealed: s }, { namespaceId: NS, jobId: JOB2, sealed: s }])), [null, null]);
  const tampered = { ...s, box: Buffer.from(s.box) };
  tampered.box[tampered.box.length - 1]! ^= 1;
  assert.deepEqual(texts(await keys.open([{ namespaceId: NS, jobId: JOB, sealed: tampered }])), [null]);
  assert.equal(store.keys.get(NS)?.master_version, 1, "the namespace's key is wrapped under the current master version");
  assert.ok(!store.keys.get(NS)?.wrapped?.equals(V1));
});

test("shredding a job makes its documents unreadable, and only its own", async () => {
  const { store, keysWith } = setUp();
  const keys = keysWith(new Map([[1, V1]]));
  const a = await sealed(keys, NS, JOB, 'one');
  const b = await sealed(keys, NS, JOB2, 'two');
  assert.equal(store.shredJob(JOB), 1);
  assert.deepEqual(texts(await keys.open([{ namespaceId: NS, jobId: JOB, sealed: a }, { namespaceId: NS, jobId: JOB2, sealed: b }])), [null, 'two']);
});

test('shredding a namespace: its documents and held results are unreadable on every instance, and no new one is sealed', async () => {
  const { keysWith } = setUp();
  const here = keysWith(new Map([[1, V1]]));
  const elsewhere = keysWith(new Map([[1, V1]]));
  const s = await sealed(here, NS, JOB, 'doc');
  await sealed(elsewhere, NS, JOB2, 'warms the other instance');
  const held = await elsewhere.sealHeld(NS, JOB, Buffer.from('held'));
  assert.equal((await here.openHeld(NS, JOB, held))?.toString(), 'held');
  const other = await sealed(here, OTHER_NS, JOB, 'not shredded');
  assert.equal(await here.shredNamespace(NS), true);
  assert.equal(await here.shredNamespace(NS), false, 'once');
  // The other instance remembers the key for sealing, but reads never use what is remembered.
  assert.deepEqual(texts(await elsewhere.open([{ namespaceId: NS, jobId: JOB, sealed: s }, { namespaceId: OTHER_NS, jobId: JOB, sealed: other }])), [null, 'not shredded']);
  assert.equal(await elsewhere.openHeld(NS, JOB, held), null);
  await assert.rejects(here.seal(NS, JOB2, Buffer.from('x')), NamespaceShreddedError);
  elsewhere.onCatalogChange({ table: 'namespaces', key: NS });
  await assert.rejects(elsewhere.sealHeld(NS, JOB2, Buffer.from('x')), NamespaceShreddedError, 'the announcement drops the remembered key');
});

test('rotation re-wraps every key under the newest master version; documents open under it alone; once is enough', async () => {
  const { store, keysWith } = setUp();
  const old = keysWith(new Map([[1, V1]]));
  const a = await sealed(old, NS, JOB, 'under v1');
  const b = await sealed(old, OTHER_NS, JOB, 'also v1');
  const both = keysWith(new Map([[1, V1], [2, V2]]));
  let progress = 0;
  assert.equal(await both.rewrapAll((n) => (progress = n)), 2);
  assert.equal(progress, 2);
  assert.deepEqual([...store.keys.values()].map((k) => k.master_version), [2, 2]);
  assert.equal(await both.rewrapAll(), 0);
  const onlyV2 = keysWith(new Map([[2, V2]]));
  assert.deepEqual(texts(await onlyV2.open([{ namespaceId: NS, jobId: JOB, sealed: a }, { namespaceId: OTHER_NS, jobId: JOB, sealed: b }])), ['under v1', 'also v1']);
  const onlyV1 = keysWith(new Map([[1, V1]]));
  await assert.rejects(onlyV1.open([{ namespaceId: NS, jobId: JOB, sealed: a }]), /master key version 2 is not in PAYLOAD_MASTER_KEYS/);
});

test('versions: new keys are wrapped under the highest version; a key under a version no longer configured is refused, not misread', async () => {
  const { store, keysWith } = setUp();
  const v1 = keysWith(new Map([[1, V1]]));
  const a = await sealed(v1, NS, JOB, 'v1');
  const v2 = keysWith(new Map([[1, V1], [2, V2]]));
  await sealed(v2, OTHER_NS, JOB, 'v2');
  assert.deepEqual([store.keys.get(NS)?.master_version, store.keys.get(OTHER_NS)?.master_version], [1, 2]);
  const wrongKey = keysWith(new Map([[1, V2]]));
  await assert.rejects(wrongKey.open([{ namespaceId: NS, jobId: JOB, sealed: a }]), /does not open under master key version 1/);
  assert.throws(() => keysWith(new Map()), /no master key/);
});

test("concurrent first seals of a namespace share one key lookup and make one key", async () => {
  const { store, keysWith } = setUp();
  const keys = keysWith(new Map([[1, V1]]));
  const docs = await Promise.all([JOB, JOB2, JOB].map((j, i) => sealed(keys, NS, j, `d${i}`)));
  assert.equal(store.calls.filter((c) => c === 'insertNamespaceKey').length, 1);
  assert.equal(store.calls.filter((c) => c === 'findNamespaceKey').length, 2, 'one lookup (and the insert reading back its row)');
  assert.deepEqual(texts(await keys.open(docs.map((s, i) => ({ namespaceId: NS, jobId: [JOB, JOB2, JOB][i]!, sealed: s })))), ['d0', 'd1', 'd2']);
});
