// domain/job-steps.ts: the scheduler's next step for a job, the no-node grace, and how a silent attempt
// is read, without an engine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { afterNoPlacement, afterSilence, endings, nextStep, NO_NODE_RECHECK_MS, PLACEMENT_RECHECK_MS } from '../../src/domain/job-steps.js';

const NOW = 1_000_000;

test('next step: the deadline first, then the attempts, else a placement bounded by the deadline', () => {
  assert.deepEqual(nextStep({ deadlineAt: NOW, maxAttempts: 3 }, 1, NOW, true), { kind: 'end', ending: endings.deadlineExceeded() });
  // Past its deadline and out of attempts: the deadline is the reason given (the client's outcome).
  assert.deepEqual(nextStep({ deadlineAt: NOW - 1, maxAttempts: 1 }, 2, NOW, true), { kind: 'end', ending: endings.deadlineExceeded() });
  assert.deepEqual(nextStep({ deadlineAt: NOW + 60_000, maxAttempts: 3 }, 4, NOW, true), { kind: 'end', ending: endings.attemptsExhausted(3) });
  assert.deepEqual(nextStep({ deadlineAt: NOW + 60_000, maxAttempts: 3 }, 3, NOW, true), { kind: 'place', waitMs: PLACEMENT_RECHECK_MS });
  // No eligible node seen yet: look again soon (the grace clock needs it).
  assert.deepEqual(nextStep({ deadlineAt: NOW + 60_000, maxAttempts: 3 }, 1, NOW, false), { kind: 'place', waitMs: NO_NODE_RECHECK_MS });
  // Never wait past the deadline, never less than 1 ms.
  assert.deepEqual(nextStep({ deadlineAt: NOW + 40, maxAttempts: 3 }, 1, NOW, true), { kind: 'place', waitMs: 40 });
});

test('no node: the grace starts when none is online, resets when one is, and gives up after the grace', () => {
  let s = afterNoPlacement(null, 0, NOW, 30_000);
  assert.deepEqual(s, { noNodeSince: NOW, giveUp: false });
  s = afterNoPlacement(s.noNodeSince, 0, NOW + 29_999, 30_000);
  assert.deepEqual(s, { noNodeSince: NOW, giveUp: false });
  // A node came (busy): the clock resets.
  s = afterNoPlacement(s.noNodeSince, 2, NOW + 29_999, 30_000);
  assert.deepEqual(s, { noNodeSince: null, giveUp: false });
  s = afterNoPlacement(s.noNodeSince, 0, NOW + 40_000, 30_000);
  assert.deepEqual(s, { noNodeSince: NOW + 40_000, giveUp: false });
  assert.deepEqual(afterNoPlacement(s.noNodeSince, 0, NOW + 70_000, 30_000), { noNodeSince: NOW + 40_000, giveUp: true });
});

test('a silent attempt near the job deadline is the deadline (expire, no blame); earlier, the node timed out', () => {
  assert.equal(afterSilence(NOW, NOW), 'expire');
  assert.equal(afterSilence(NOW - 100, NOW), 'expire');
  assert.equal(afterSilence(NOW - 60_000, NOW), 'timeout');
});

test("the endings' codes and statuses, as consumers and the quarantine see them", () => {
  assert.deepEqual(
    [endings.deadlineExceeded(), endings.attemptsExhausted(2), endings.noNodeAvailable('m', 5), endings.payloadMissing(), endings.streamInterrupted()].map((e) => `${e.status} ${e.code}`),
    ['expired deadline_exceeded', 'failed attempts_exhausted', 'failed no_node_available', 'failed payload_missing', 'failed stream_interrupted'],
  );
});
