// The group-commit batcher on its own (no engine): how batches form, and that each caller gets its own
// item's outcome.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupCommit, type ItemOutcome } from '../../src/common/group-commit.js';

/** A runner that records its batches and holds each one until released. */
function recordingRunner() {
  const batches: number[][] = [];
  const gates: Array<() => void> = [];
  const run = async (items: readonly number[]): Promise<Array<ItemOutcome<number>>> => {
    batches.push([...items]);
    await new Promise<void>((resolve) => gates.push(resolve));
    return items.map((i) => (i < 0 ? { ok: false, error: new Error(`refused ${i}`) } : { ok: true, value: i * 10 }));
  };
  const releaseAll = () => {
    for (const g of gates.splice(0)) g();
  };
  return { batches, run, releaseAll };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

test('an idle batcher starts at once; items arriving while every slot is busy go together, up to maxItems', async () => {
  const r = recordingRunner();
  const gc = new GroupCommit(r.run, { maxItems: 3, maxInFlight: 1, lingerMs: 0 });
  const first = gc.submit(1);
  const rest = [2, 3, 4, 5, 6].map((i) => gc.submit(i));
  await tick();
  assert.deepEqual(r.batches, [[1]]);
  r.releaseAll();
  assert.equal(await first, 10);
  await tick();
  assert.deepEqual(r.batches, [[1], [2, 3, 4]]);
  r.releaseAll();
  await tick();
  assert.deepEqual(r.batches, [[1], [2, 3, 4], [5, 6]]);
  r.releaseAll();
  assert.deepEqual(await Promise.all(rest), [20, 30, 40, 50, 60]);
  await gc.drained();
});

test('each caller gets its own outcome; a runner that throws fails only its own batch', async () => {
  let calls = 0;
  const gc = new GroupCommit<number, number>(
    async (items) => {
      calls++;
      if (items.includes(13)) throw new Error('batch broke');
      return items.map((i) => (i < 0 ? { ok: false, error: new Error(`refused ${i}`) } : { ok: true, value: i }));
    },
    { maxItems: 10, maxInFlight: 1, lingerMs: 20 },
  );
  const outcomes = await Promise.allSettled([gc.submit(1), gc.submit(-2), gc.submit(3)]);
  assert.equal(calls, 1, 'the linger window gathered the three into one batch');
  assert.deepEqual(
    outcomes.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).message)),
    [1, 'refused -2', 3],
  );
  const broken = await Promise.allSettled([gc.submit(13), gc.submit(4)]);
  assert.deepEqual(
    broken.map((o) => o.status),
    ['rejected', 'rejected'],
  );
  assert.equal(await gc.submit(5), 5, 'the batcher goes on after a failed batch');
  await gc.drained();
});

test('maxInFlight batches run at once, no more', async () => {
  const r = recordingRunner();
  const gc = new GroupCommit(r.run, { maxItems: 1, maxInFlight: 2, lingerMs: 0 });
  const all = [1, 2, 3].map((i) => gc.submit(i));
  await tick();
  assert.deepEqual(r.batches, [[1], [2]]);
  r.releaseAll();
  await tick();
  assert.deepEqual(r.batches, [[1], [2], [3]]);
  r.releaseAll();
  assert.deepEqual(await Promise.all(all), [10, 20, 30]);
});

test('invalid options are refused', () => {
  assert.throws(() => new GroupCommit(async () => [], { maxItems: 0, maxInFlight: 1, lingerMs: 0 }), RangeError);
  assert.throws(() => new GroupCommit(async () => [], { maxItems: 1, maxInFlight: 0, lingerMs: 0 }), RangeError);
});
