// The write-behind pieces of job logs and node stats on their own (no engine): the buffered writer's
// batching, bound and drops, and a node's stats window (clamping what a node declares, rates from what
// the backbone measured, merging instances' windows).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BufferedWriter } from '../../src/common/buffered-writer.js';
import { mergeWindows, NodeStatsWindow } from '../../src/domain/node-stats.js';
import { cleanStageMs, kindRank } from '../../src/domain/job-log.js';

/** A store that records batches and holds each write until released; once `fail`ed, every write fails. */
function heldStore() {
  const batches: number[][] = [];
  const gates: Array<{ ok: () => void; fail: (e: Error) => void }> = [];
  let down = false;
  const write = (items: readonly number[]) =>
    new Promise<void>((ok, fail) => {
      batches.push([...items]);
      if (down) fail(new Error('store down'));
      else gates.push({ ok, fail });
    });
  const fail = () => {
    down = true;
    gates.splice(0).forEach((g) => g.fail(new Error('store down')));
  };
  return { batches, write, release: () => gates.splice(0).forEach((g) => g.ok()), fail };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

test('records wait for flushMs and go together; a whole batch goes at once', async () => {
  const store = heldStore();
  const w = new BufferedWriter({ write: store.write, flushMs: 30, batchMax: 4, bufferMax: 100 });
  w.push(1);
  w.push(2);
  await tick();
  assert.deepEqual(store.batches, [], 'nothing is written before flushMs unless a batch is full');
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(store.batches, [[1, 2]]);
  store.release();
  for (const i of [3, 4, 5, 6]) w.push(i);
  await tick();
  assert.deepEqual(store.batches, [[1, 2], [3, 4, 5, 6]], 'a full batch does not wait');
  store.release();
  await w.flush();
});

test('one write at a time: records arriving meanwhile form the next batch', async () => {
  const store = heldStore();
  const w = new BufferedWriter({ write: store.write, flushMs: 1, batchMax: 2, bufferMax: 100 });
  for (const i of [1, 2, 3, 4, 5]) w.push(i);
  await tick();
  assert.deepEqual(store.batches, [[1, 2]]);
  store.release();
  await tick();
  await tick();
  assert.deepEqual(store.batches, [[1, 2], [3, 4]]);
  store.release();
  const flushed = w.flush();
  await tick();
  await tick();
  store.release();
  await flushed;
  assert.deepEqual(store.batches, [[1, 2], [3, 4], [5]]);
  assert.equal(w.pending, 0);
});

test('a store that is down: its batches are dropped and counted, the buffer stays bounded, push never blocks', async () => {
  const store = heldStore();
  const dropped: Record<string, number> = { buffer_full: 0, write_failed: 0 };
  const w = new BufferedWriter({ write: store.write, flushMs: 1, batchMax: 2, bufferMax: 3, onDropped: (n, reason) => (dropped[reason]! += n) });
  const accepted = [1, 2, 3, 4, 5, 6, 7].map((i) => w.push(i));
  // 1 and 2 are being written; 3, 4, 5 wait (the bound); 6 and 7 are refused.
  await tick();
  assert.deepEqual(accepted, [true, true, true, true, true, false, false]);
  assert.equal(dropped.buffer_full, 2);
  assert.equal(w.pending, 3);
  store.fail();
  await w.flush();
  assert.deepEqual(store.batches, [[1, 2], [3, 4], [5]]);
  assert.equal(dropped.write_failed, 5, 'every record accepted was either written or counted as dropped');
  assert.equal(w.pending, 0);
});

test('closing while the store is down: one failed write drops the rest, instead of waiting for each', async () => {
  const store = heldStore();
  let dropped = 0;
  const w = new BufferedWriter({ write: store.write, flushMs: 1_000, batchMax: 2, bufferMax: 100, onDropped: (n) => (dropped += n) });
  for (let i = 0; i < 9; i++) w.push(i);
  store.fail();
  await w.close();
  assert.equal(dropped, 9);
  assert.ok(store.batches.length <= 2, `${store.batches.length} writes tried`);
  assert.equal(w.push(10), false, 'a closed writer takes nothing more');
  assert.equal(dropped, 10);
});

test('options that cannot work are refused', () => {
  assert.throws(() => new BufferedWriter({ write: async () => undefined, flushMs: 10, batchMax: 10, bufferMax: 5 }), RangeError);
  assert.throws(() => new BufferedWriter({ write: async () => undefined, flushMs: 0, batchMax: 1, bufferMax: 5 }), RangeError);
});

test("a node's window clamps what it declares and rates what the backbone measured", () => {
  const w = new NodeStatsWindow('0xabc', 0);
  w.heartbeat(2, 4);
  w.heartbeat(99, 4); // more running than its capacity: full, no more
  w.heartbeat(-5, 1e9); // a capacity beyond the protocol's ceiling counts as that ceiling
  w.attemptCompleted('m/a', 100, 2_000);
  w.attemptCompleted('m/a', 50, 1_000);
  w.attemptCompleted('m/b', 10, -3); // a negative time (clock skew) counts as 1 ms
  w.attemptFailed('timeout');
  w.attemptFailed('whatever a caller says');
  const doc = w.close(60_000);
  assert.equal(doc.heartbeats, 3);
  assert.equal(doc.loadMax, 1);
  assert.equal(doc.loadAvg, Math.round(((0.5 + 1 + 0) / 3) * 1000) / 1000);
  assert.equal(doc.capacity, 1024);
  assert.equal(doc.completed, 3);
  assert.deepEqual(doc.failures, { failed: 0, timeout: 1, disconnected: 0, invalid_result: 0, other: 1 });
  const a = doc.models.find((m) => m.model === 'm/a')!;
  assert.equal(a.tokensPerSecond, 50);
  assert.equal(doc.models.find((m) => m.model === 'm/b')!.busyMs, 1);
});

test('windows of one node from two instances merge into one per window start', () => {
  const one = new NodeStatsWindow('0xabc', 60_000);
  one.heartbeat(1, 2);
  one.attemptCompleted('m', 30, 1_000);
  const two = new NodeStatsWindow('0xabc', 60_000);
  two.heartbeat(2, 2);
  two.heartbeat(2, 2);
  two.attemptCompleted('m', 30, 2_000);
  two.attemptFailed('failed');
  const later = new NodeStatsWindow('0xabc', 120_000);
  const merged = mergeWindows([later.close(180_000), one.close(100_000), two.close(120_000)]);
  assert.equal(merged.length, 2);
  const [first] = merged;
  assert.equal(first!.windowStart.getTime(), 60_000);
  assert.equal(first!.windowEnd.getTime(), 120_000);
  assert.equal(first!.heartbeats, 3);
  assert.equal(first!.loadAvg, Math.round(((0.5 + 1 + 1) / 3) * 1000) / 1000);
  assert.equal(first!.completed, 2);
  assert.equal(first!.failures.failed, 1);
  assert.deepEqual(first!.models, [{ model: 'm', completed: 2, completionTokens: 60, busyMs: 3_000, tokensPerSecond: 20 }]);
});

test('job log helpers: stage times are non-negative ms, kinds sort in lifecycle order', () => {
  assert.deepEqual(cleanStageMs({ a: 1.23456, b: -2, c: Number.NaN }), { a: 1.235, b: 0, c: 0 });
  assert.ok(kindRank('accepted') < kindRank('queued') && kindRank('dispatched') < kindRank('completed'));
  assert.ok(kindRank('unknown') > kindRank('cancelled'));
});
