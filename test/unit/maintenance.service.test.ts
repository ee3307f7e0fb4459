// Fast tier (docs/testing.md): the maintenance tick's rules on in-memory fakes of its store and
// collaborators. The same tick on the real engines: test/integration/maintenance.test.ts and the chaos tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { Config } from '../../src/config.js';
import type { JobRequest } from '../../src/domain/protocol.js';
import { Maintenance } from '../../src/maintenance/maintenance.service.js';
import { FakeMaintenanceCollaborators, FakeMaintenanceStore, fakeJob } from '../fakes/maintenance.store.js';

const NOW = new Date('2026-03-10T12:00:00Z');
const ago = (ms: number) => new Date(NOW.getTime() - ms);
const config = { SWEEP_INTERVAL_MS: 5_000, OUTBOX_REPUBLISH_AFTER_MS: 10_000, PAYLOAD_SWEEP_INTERVAL_MS: 60_000 } as unknown as Config;
const input = { model: 'm', messages: [{ role: 'user', content: 'hi' }] } as unknown as JobRequest;

function setUp() {
  const store = new FakeMaintenanceStore();
  const c = new FakeMaintenanceCollaborators();
  const maintenance = new Maintenance({ config, store, ...c, rcpClock: { epochSeconds: 3_600, uptimeSlotSeconds: 60 }, logger: pino({ level: 'silent' }) });
  return { store, c, maintenance };
}

test('another instance holding the lock: the tick does nothing and says so', async () => {
  const { store, c, maintenance } = setUp();
  store.lockedElsewhere = true;
  store.db.state.jobs.push(fakeJob('00000000-0000-4000-8000-0000000000a1', ago(60_000), ago(1)));
  assert.equal(await maintenance.tick(NOW), false);
  assert.deepEqual(store.db.calls, ['runExclusive']);
  assert.deepEqual([c.published, c.ended, c.metered], [[], [], []]);
});

test('outbox: an unconfirmed job is republished from its stored input; one without a stored input is marked, not failed', async () => {
  const { store, c, maintenance } = setUp();
  const withInput = fakeJob('00000000-0000-4000-8000-0000000000b1', ago(60_000), new Date(NOW.getTime() + 60_000));
  const without = fakeJob('00000000-0000-4000-8000-0000000000b2', ago(50_000), new Date(NOW.getTime() + 60_000));
  const recent = fakeJob('00000000-0000-4000-8000-0000000000b3', ago(1_000), new Date(NOW.getTime() + 60_000));
  store.db.state.jobs.push(withInput, without, recent);
  c.inputs.set(withInput.id, input);
  assert.equal(await maintenance.tick(NOW), true);
  assert.deepEqual(c.published.map((t) => t.jobId), [withInput.id], 'the recent job is left to its own publish');
  assert.equal(c.published[0]!.request, input);
  assert.equal(without.published_at?.getTime(), NOW.getTime(), 'marked so that the outbox stops asking');
  assert.deepEqual(c.ended, [], 'no accepted job is failed for a missing input copy');
});

test('outbox: a failing broker stops the tick\'s republishing at the first refusal', async () => {
  const { store, c, maintenance } = setUp();
  for (let i = 1; i <= 3; i++) {
    const job = fakeJob(`00000000-0000-4000-8000-0000000000c${i}`, ago(60_000 - i), new Date(NOW.getTime() + 60_000));
    store.db.state.jobs.push(job);
    c.inputs.set(job.id, input);
  }
  c.brokerFailsAfter = 1;
  let asked = 0;
  const publish = c.lifecycle.publish;
  c.lifecycle.publish = (t, o) => {
    asked += 1;
    return publish(t, o);
  };
  await maintenance.tick(NOW);
  assert.equal(c.published.length, 1);
  assert.equal(asked, 2, 'not one call per remaining job');
});

test('deadlines: overdue jobs are ended; one that cannot be ended does not stop the others', async () => {
  const { store, c, maintenance } = setUp();
  const ids = ['00000000-0000-4000-8000-0000000000d1', '00000000-0000-4000-8000-0000000000d2', '00000000-0000-4000-8000-0000000000d3'];
  ids.forEach((id, i) => store.db.state.jobs.push({ ...fakeJob(id, ago(120_000), ago(10_000 - i)), published_at: ago(100_000) }));
  c.endFails.add(ids[0]!);
  await maintenance.tick(NOW);
  assert.deepEqual(c.ended.sort(), [ids[1], ids[2]].sort());
});

test('node flags in force are written to the mirror every tick (a lost Redis has them back within one)', async () => {
  const { store, c, maintenance } = setUp();
  store.db.state.flags.push({ nodeId: '0xa', paused: true, frozen: false, shadowBanned: false, cooldownUntil: null, reason: 'ops' });
  await maintenance.tick(NOW);
  assert.deepEqual(c.mirrored.get('0xa'), { paused: true, frozen: false, shadowBanned: false, cooldownUntil: null });
  c.mirrored.clear();
  await maintenance.tick(new Date(NOW.getTime() + 5_000));
  assert.ok(c.mirrored.has('0xa'));
});

test('closed uptime epochs are written as points and forgotten; the open epoch is left counting', async () => {
  const { store, c, maintenance } = setUp();
  const current = Math.floor(NOW.getTime() / 3_600_000);
  c.counted.set(current - 1, [{ nodeId: '0xa', slots: 30 }]);
  c.counted.set(current, [{ nodeId: '0xa', slots: 5 }]);
  await maintenance.tick(NOW);
  assert.deepEqual(store.db.state.uptime, [{ epoch: current - 1, nodeId: '0xa', points: 30 * 60 }]);
  assert.deepEqual([...c.counted.keys()], [current]);
});

test('payloads and logs are swept on their own interval, and yesterday is metered once', async () => {
  const { c, maintenance } = setUp();
  await maintenance.tick(NOW);
  await maintenance.tick(new Date(NOW.getTime() + 5_000));
  assert.deepEqual(c.calls.filter((x) => x === 'sweepPayloads').length, 1, 'not again within PAYLOAD_SWEEP_INTERVAL_MS');
  await maintenance.tick(new Date(NOW.getTime() + 61_000));
  assert.deepEqual(c.calls.filter((x) => x === 'sweepPayloads').length, 2);
  assert.deepEqual(c.metered, ['2026-03-09']);
});
