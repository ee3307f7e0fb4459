// Fast tier (docs/testing.md): SpaceJobs' rules (pins, job deletion) on in-memory fakes of its store,
// payloads and zero-plan holds. The same service on the real engines: test/integration/space-keep.test.ts
// and space-shred-instances.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { SpaceJobs } from '../../src/space/space-jobs.service.js';
import { AppError } from '../../src/errors.js';
import { FakeSpaceJobsStore, FakeSpacePayloads } from '../fakes/space-jobs.store.js';

const NS = '00000000-0000-4000-8000-00000000000a';
const OTHER = '00000000-0000-4000-8000-00000000000b';
const JOB = '00000000-0000-4000-8000-000000000001';
const RUNNING = '00000000-0000-4000-8000-000000000002';

function setUp(encrypted = true) {
  const store = new FakeSpaceJobsStore();
  const payloads = new FakeSpacePayloads();
  const dropped: string[] = [];
  const zeroHolds = {
    drop: (_ns: string, jobId: string) => {
      dropped.push(jobId);
      return Promise.resolve(true);
    },
  };
  store.addJob(NS, JOB, 'completed', 2);
  store.addJob(NS, RUNNING, 'running');
  payloads.stored.set(JOB, [
    { from: 'job_payloads', doc: { _id: JOB, bytes: 100 } },
    { from: 'job_results', doc: { _id: `${JOB}#1`, bytes: 250 } },
  ]);
  return { store, payloads, dropped, service: new SpaceJobs({ store, payloads, encrypted, zeroHolds, logger: pino({ level: 'silent' }) }) };
}

const code = (c: string) => (e: unknown) => e instanceof AppError && e.code === c;

test('pin: copies what is held, records the bytes and an event; pinning twice is pinning once', async () => {
  const { store, payloads, service } = setUp();
  assert.deepEqual(await service.pin(NS, JOB), { job_id: JOB, pinned: true, bytes: 350 });
  assert.equal(payloads.copies.get(JOB), 350);
  assert.deepEqual(await service.pin(NS, JOB), { job_id: JOB, pinned: true, bytes: 350 });
  assert.deepEqual((await service.list(NS)).map((p) => [p.job_id, p.bytes]), [[JOB, 350]]);
  assert.deepEqual(store.db.state.events.map((e) => e.kind), ['pinned'], 'one pin, one event');
});

test("pin: refused for a job not finished, for one with nothing held, and for another namespace's (not found)", async () => {
  const { store, payloads, service } = setUp();
  await assert.rejects(service.pin(NS, RUNNING), code('job_not_finished'));
  payloads.stored.delete(JOB);
  await assert.rejects(service.pin(NS, JOB), code('nothing_to_pin'));
  await assert.rejects(service.pin(OTHER, JOB), code('job_not_found'));
  await assert.rejects(service.pin(NS, 'not-a-uuid'), code('job_not_found'));
  assert.equal(store.db.state.pins.size, 0);
  assert.equal(store.db.calls.filter((c) => c === 'findJob').length, 3, 'a malformed id is refused before the store');
});

test('unpin: the pin and its copy go; unpinning what is not pinned changes nothing', async () => {
  const { store, payloads, service } = setUp();
  await service.pin(NS, JOB);
  assert.deepEqual(await service.unpin(NS, JOB), { job_id: JOB, pinned: false, bytes: 0 });
  assert.equal(payloads.copies.size, 0);
  assert.deepEqual(await service.unpin(NS, JOB), { job_id: JOB, pinned: false, bytes: 0 });
  assert.deepEqual(store.db.state.events.map((e) => e.kind), ['pinned', 'unpinned']);
});

test("delete: the job's keys, its pin, its copy and its zero-plan hold go, with an event counting the keys; idempotent", async () => {
  const { store, payloads, dropped, service } = setUp();
  await service.pin(NS, JOB);
  assert.deepEqual(await service.deleteJob(NS, JOB), { id: JOB, object: 'chat.completion.job.deleted', deleted: true });
  assert.equal(store.db.state.payloadKeys.has(JOB), false, 'its keys are destroyed');
  assert.equal(store.db.state.pins.size, 0);
  assert.equal(payloads.copies.size, 0);
  assert.deepEqual(dropped, [JOB]);
  assert.deepEqual(store.db.state.events.map((e) => [e.kind, e.documents]), [['pinned', undefined], ['job_shredded', undefined], ['job_shredded', 2]]);
  await service.deleteJob(NS, JOB);
  assert.equal(store.db.state.events.at(-1)?.documents, 0, 'again: nothing left to shred');
});

test('delete: refused for a job not finished and for another namespace, and nothing is touched', async () => {
  const { store, dropped, service } = setUp();
  await assert.rejects(service.deleteJob(NS, RUNNING), code('job_not_finished'));
  await assert.rejects(service.deleteJob(OTHER, JOB), code('job_not_found'));
  assert.equal(store.db.state.payloadKeys.get(JOB), 2);
  assert.deepEqual(dropped, []);
  assert.ok(!store.db.calls.includes('shredPayloadKeys'));
});

test('delete: when recording it fails, no key is destroyed and no pin goes (one transaction), and the hold stays', async () => {
  const { store, payloads, dropped, service } = setUp();
  await service.pin(NS, JOB);
  store.db.failNext('recordShred');
  await assert.rejects(service.deleteJob(NS, JOB), /recordShred failed/);
  assert.equal(store.db.state.payloadKeys.get(JOB), 2, 'the keys are back');
  assert.equal(store.db.state.pins.size, 1, 'the pin is back');
  assert.equal(payloads.copies.get(JOB), 350, 'and its copy');
  assert.deepEqual(dropped, []);
});

test('delete without encryption (no master keys): no key is asked for; the pin and hold still go', async () => {
  const { store, dropped, service } = setUp(false);
  await service.deleteJob(NS, JOB);
  assert.ok(!store.db.calls.includes('shredPayloadKeys'));
  assert.equal(store.db.state.events.at(-1)?.documents, 0);
  assert.deepEqual(dropped, [JOB]);
});
