// The fleet gauges' label bound (src/metrics/fleet.ts): past MAX_MODEL_LABELS models, the rest are summed
// under model="other", so that a large catalogue cannot become a series per model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boundedReading, MAX_MODEL_LABELS, OTHER_MODELS, type FleetReading } from '../../src/metrics/fleet.js';

const model = (i: number, queued: FleetReading['models'][number]['queued'] = [{ priority: 'standard', ready: i }]) => ({ model: `m${i}`, onlineNodes: 1, freeSlots: i, queued });

test('a catalogue within the bound is exported as it is', () => {
  const r = { models: Array.from({ length: MAX_MODEL_LABELS }, (_, i) => model(i)) };
  assert.deepEqual(boundedReading(r), r);
});

test('models past the bound are summed under "other", keeping the label set at MAX_MODEL_LABELS', () => {
  const n = MAX_MODEL_LABELS + 25;
  const r = boundedReading({ models: Array.from({ length: n }, (_, i) => model(i)) });
  assert.equal(r.models.length, MAX_MODEL_LABELS);
  const other = r.models.at(-1)!;
  assert.equal(other.model, OTHER_MODELS);
  const folded = Array.from({ length: n - (MAX_MODEL_LABELS - 1) }, (_, k) => k + MAX_MODEL_LABELS - 1);
  assert.equal(other.onlineNodes, folded.length);
  assert.equal(other.freeSlots, folded.reduce((s, i) => s + i, 0));
  assert.deepEqual(other.queued, [{ priority: 'standard', ready: folded.reduce((s, i) => s + i, 0) }]);
  // Nothing lost: the totals are the same before and after.
  assert.equal(r.models.reduce((s, m) => s + m.freeSlots, 0), Array.from({ length: n }, (_, i) => i).reduce((s, i) => s + i, 0));
});

test('when the broker did not answer for a folded model, "other" has no queue depths rather than a short count', () => {
  const models = Array.from({ length: MAX_MODEL_LABELS + 3 }, (_, i) => model(i, i === MAX_MODEL_LABELS + 1 ? null : undefined));
  assert.equal(boundedReading({ models }).models.at(-1)!.queued, null);
});
