// The dispatch order of waiting jobs (src/scheduler/fair-queue.ts): fair between namespaces within a
// class, weighted between classes, FIFO within a namespace, no credit for idling.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FairQueue, type FairEntry } from '../../src/scheduler/fair-queue.js';
import type { PriorityClass } from '../../src/domain/priority.js';

let clock = 0;
function entry(namespaceId: string, priority: PriorityClass = 'standard', arrivedAt = ++clock): FairEntry {
  return { jobId: `${namespaceId}-${priority}-${arrivedAt}`, namespaceId, priority, arrivedAt };
}

/** Takes `n` entries in order, as the dispatcher would when every offer succeeds. */
function drain(q: FairQueue<FairEntry>, n = Infinity): FairEntry[] {
  const out: FairEntry[] = [];
  while (out.length < n) {
    const next = q.order().next();
    if (next.done) break;
    q.taken(next.value);
    out.push(next.value);
  }
  return out;
}

test('a flooding namespace gets one turn per round: a quiet namespace arriving later goes next, not after the flood', () => {
  const q = new FairQueue<FairEntry>();
  for (let i = 0; i < 100; i++) q.add(entry('flood'));
  assert.equal(drain(q, 10).every((e) => e.namespaceId === 'flood'), true);
  const quiet = [entry('quiet'), entry('quiet')];
  for (const e of quiet) q.add(e);
  const next = drain(q, 4).map((e) => e.namespaceId);
  assert.deepEqual(next, ['quiet', 'flood', 'quiet', 'flood']);
  assert.equal(q.size, 100 - 10 - 2);
});

test('within a namespace jobs go in arrival order, and a retried job (older arrival) goes first', () => {
  const q = new FairQueue<FairEntry>();
  const a = entry('ns', 'standard', 10);
  const b = entry('ns', 'standard', 20);
  const retried = entry('ns', 'standard', 5);
  q.add(a);
  q.add(b);
  q.add(retried);
  assert.deepEqual(drain(q), [retried, a, b]);
});

test('classes share by weight: urgent overtakes bulk without starving it', () => {
  const q = new FairQueue<FairEntry>();
  for (let i = 0; i < 200; i++) q.add(entry('a', 'bulk'));
  for (let i = 0; i < 200; i++) q.add(entry('a', 'urgent'));
  const first = drain(q, 50);
  const urgent = first.filter((e) => e.priority === 'urgent').length;
  const bulk = first.filter((e) => e.priority === 'bulk').length;
  // Weights 8:2 → 40:10 of every 50 while both wait.
  assert.equal(urgent, 40);
  assert.equal(bulk, 10);
  // The first dispatch goes to urgent, and bulk is never kept waiting more than a few turns.
  assert.equal(first[0]!.priority, 'urgent');
  let gap = 0;
  let worst = 0;
  for (const e of first) {
    gap = e.priority === 'bulk' ? 0 : gap + 1;
    worst = Math.max(worst, gap);
  }
  assert.ok(worst <= 4, `bulk waited ${worst} urgent dispatches in a row`);
});

test('a class or namespace that was idle earns no credit to burst with later', () => {
  const q = new FairQueue<FairEntry>();
  for (let i = 0; i < 50; i++) q.add(entry('busy', 'standard'));
  drain(q, 40);
  // 'late' arrives after 40 dispatches of 'busy': it alternates with busy, it does not get 40 in a row.
  for (let i = 0; i < 10; i++) q.add(entry('late', 'standard'));
  const next = drain(q, 6).map((e) => e.namespaceId);
  assert.deepEqual(next, ['late', 'busy', 'late', 'busy', 'late', 'busy']);
  // Same across classes: bulk idle for a while, then both wait: bulk gets its share, not a backlog of turns.
  const r = new FairQueue<FairEntry>();
  for (let i = 0; i < 100; i++) r.add(entry('x', 'urgent'));
  drain(r, 60);
  for (let i = 0; i < 100; i++) r.add(entry('x', 'bulk'));
  const mix = drain(r, 10);
  assert.ok(mix.filter((e) => e.priority === 'bulk').length <= 3, 'bulk did not burst after idling');
  assert.ok(mix.some((e) => e.priority === 'bulk'), 'bulk got a turn');
});

test('order() does not change the queue; remove() takes an entry out without charging its namespace', () => {
  const q = new FairQueue<FairEntry>();
  const a1 = entry('a');
  const b1 = entry('b');
  const a2 = entry('a');
  q.add(a1);
  q.add(b1);
  q.add(a2);
  const peek = [...q.order()];
  assert.deepEqual(peek, [...q.order()]);
  assert.equal(peek.length, 3);
  assert.equal(q.remove(a1), true);
  assert.equal(q.remove(a1), false);
  assert.equal(q.has(a2), true);
  assert.equal(q.size, 2);
  // a's removal was not a turn: a2 is still first (a and b both at pass 0; a is looked at first).
  assert.equal(q.order().next().value, a2);
});

test('taking a later entry (the first one found no node) charges that entry\'s namespace, not the first one\'s', () => {
  const q = new FairQueue<FairEntry>();
  const a = entry('a');
  const b = entry('b');
  q.add(a);
  q.add(b);
  q.taken(b);
  q.add(entry('b'));
  assert.equal(q.order().next().value, a);
});
