// Fast tier (docs/testing.md): the snapshot service's decisions on an in-memory fake of its records: the
// offload gate (a raw partition is dropped only after its day's snapshot was read back and verified), the
// choice of the next day due, and the operators' epoch proofs. Exports, verification of real snapshots and
// the Kubo store run on the real engines: test/integration/snapshots.test.ts and history.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { SnapshotService } from '../../src/snapshots/snapshot.service.js';
import { StoreUnavailableError, type SnapshotStore } from '../../src/snapshots/snapshot-store.js';
import { epochTree } from '../../src/snapshots/epoch-merkle.js';
import { generatePrivateKey } from '../../src/domain/signatures.js';
import type { Db } from '../../src/postgres/db.js';
import { FakeSnapshotRecords } from '../fakes/snapshot-records.store.js';

const NODE_A = '0x' + 'a'.repeat(40);
const NODE_B = '0x' + 'b'.repeat(40);

function setUp(opts: { key?: string | null; store?: Partial<SnapshotStore> } = {}) {
  const records = new FakeSnapshotRecords();
  const reads: string[] = [];
  const store: SnapshotStore = {
    name: 'fake',
    put: () => Promise.resolve(),
    get: (cid) => {
      reads.push(cid);
      return Promise.resolve((async function* () {
        yield new Uint8Array([1, 2, 3]);
      })());
    },
    ...opts.store,
  };
  const service = new SnapshotService({
    // The export session is not used by these tests (no snapshot is taken here).
    db: undefined as unknown as Db,
    records,
    store,
    networkKey: opts.key === undefined ? generatePrivateKey() : opts.key,
    rcpClock: { epochSeconds: 86_400, uptimeSlotSeconds: 60 },
    jobDeadlineMs: 300_000,
    logger: pino({ level: 'silent' }),
  });
  return { records, service, reads };
}

test('a day without a snapshot is not ready to drop', async () => {
  const { records, service, reads } = setUp();
  records.db.state.partitions.set('2026-12-01', 10);
  assert.equal(await service.readyToDrop('2026-12-01'), false);
  assert.deepEqual(reads, []);
});

test('a snapshot that does not hold every raw row the partition still has keeps the partition, without reading the store', async () => {
  const { records, service, reads } = setUp();
  records.db.state.partitions.set('2026-12-01', 11);
  records.addSnapshot('2026-12-01', 'bafy-day1', 10);
  assert.equal(await service.readyToDrop('2026-12-01'), false);
  assert.deepEqual(reads, []);
  assert.equal(records.db.calls.includes('markVerified'), false);
});

test('with the store down, or a stored snapshot that does not read back as a CAR, the drop waits and nothing is marked verified', async () => {
  const down = setUp({ store: { get: () => Promise.reject(new StoreUnavailableError('fake', { cause: new Error('connection refused') })) } });
  down.records.db.state.partitions.set('2026-12-01', 10);
  down.records.addSnapshot('2026-12-01', 'bafy-day1', 10);
  assert.equal(await down.service.readyToDrop('2026-12-01'), false);
  const garbage = setUp();
  garbage.records.db.state.partitions.set('2026-12-01', 10);
  garbage.records.addSnapshot('2026-12-01', 'bafy-day1', 10);
  assert.equal(await garbage.service.readyToDrop('2026-12-01'), false);
  assert.deepEqual(garbage.reads, ['bafy-day1'], 'read back by its CID');
  for (const { records } of [down, garbage]) assert.equal(records.db.state.snapshots[0]!.verified_at, null);
});

test('without the network key no snapshot is taken, so nothing becomes droppable', async () => {
  const { records, service } = setUp({ key: null });
  records.db.state.extent = { first_day: '2026-11-01', last_rolled_up: '2026-11-30', first_ledger_day: null, last_ledger_day: null };
  assert.deepEqual(await service.createDue(new Date('2026-12-05T12:00:00Z')), []);
});

test('the next day due: none before history starts, none while the day is neither rolled up nor closed, none while its ledger day is not sealed', async () => {
  const now = new Date('2026-12-05T12:00:00Z');
  const { records, service } = setUp();
  const due = (s: SnapshotService) => (s as unknown as { nextDueDay(now: Date): Promise<string | null> }).nextDueDay(now);
  assert.equal(await due(service), null, 'no history');
  records.db.state.extent = { first_day: '2026-12-03', last_rolled_up: null, first_ledger_day: '2026-12-03', last_ledger_day: '2026-12-03' };
  records.db.state.partitions.set('2026-12-03', 5);
  assert.equal(await due(service), null, 'its partition is not rolled up yet');
  records.db.state.rolledUp.add('2026-12-03');
  assert.equal(await due(service), '2026-12-03');
  records.addSnapshot('2026-12-03', 'bafy-3', 5);
  assert.equal(await due(service), null, 'the next day (12-04) has no sealed ledger day yet');
  records.db.state.extent = { ...records.db.state.extent, last_ledger_day: '2026-12-04' };
  assert.equal(await due(service), '2026-12-04', 'no partition, the day closed long ago, its ledger day sealed');
  records.addSnapshot('2026-12-04', 'bafy-4', 0);
  assert.equal(await due(service), null, 'today is never due');
});

test('epoch proofs: the node\'s proof in each sealed epoch it has points in, and records that no longer give the sealed root are refused', async () => {
  const { records, service } = setUp();
  const e1 = [
    { epoch: 1, node_id: NODE_A, points: 10 },
    { epoch: 1, node_id: NODE_B, points: 4 },
  ];
  const e2 = [{ epoch: 2, node_id: NODE_B, points: 7 }];
  records.db.state.points.push(...e1, ...e2);
  const seal = (epoch: number, pts: typeof e1) => {
    const t = epochTree(pts);
    return { epoch, merkle_root: t.root, nodes: t.nodes, points: t.points, snapshot_cid: `bafy-e${epoch}` };
  };
  records.db.state.sealed.push(seal(1, e1), seal(2, e2));
  const proofs = await service.epochProofs(NODE_A, null);
  assert.deepEqual(proofs.map((p) => [p.epoch, p.snapshot_cid]), [[1, 'bafy-e1']], 'no proof where the node has no points');
  assert.deepEqual([proofs[0]!.merkle_root, proofs[0]!.points], [records.db.state.sealed[0]!.merkle_root, 10]);
  records.db.state.points[0]!.points = 11;
  await assert.rejects(service.epochProofs(NODE_A, [1]), /no longer give the sealed root/);
});
