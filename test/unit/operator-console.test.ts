// What an operator is shown of its node (gate/operator-console.service.ts nodeView): flags in force with
// their reason, an expired cooldown as none, and a shadow ban never, not even through its reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeView } from '../../src/gate/operator-console.service.js';
import type { OperatorNodeRow } from '../../src/postgres/operator-nodes.repository.js';
import { operatorNodeRow } from '../fakes/operator-console.store.js';

const NOW = Date.parse('2026-12-05T10:00:00Z');

function row(over: Partial<OperatorNodeRow> = {}): OperatorNodeRow {
  return operatorNodeRow('0x00000000000000000000000000000000000000aa', { created_at: new Date(NOW - 86_400_000), last_registered_at: new Date(NOW - 60_000), ...over });
}

test('a node never flagged nor scored is in rotation, offline without presence, with no score', () => {
  const v = nodeView(row(), null, NOW);
  assert.equal(v.online, false);
  assert.equal(v.in_rotation, true);
  assert.deepEqual(v.flags, { paused: false, frozen: false, cooldown_until: null, reason: null, updated_at: null });
  assert.equal(v.score, null);
});

test('a cooldown in force is shown with its reason; an expired one is not a flag', () => {
  const until = new Date(NOW + 300_000);
  const cooling = nodeView(row({ cooldown_until: until, reason: 'cooldown: 3 failed attempts in a row', paused: false, frozen: false, shadow_banned: false }), null, NOW);
  assert.equal(cooling.flags.cooldown_until, until);
  assert.equal(cooling.flags.reason, 'cooldown: 3 failed attempts in a row');
  assert.equal(cooling.in_rotation, false);
  const over = nodeView(row({ cooldown_until: new Date(NOW - 1), reason: 'cooldown: old' }), null, NOW);
  assert.equal(over.flags.cooldown_until, null);
  assert.equal(over.in_rotation, true);
});

test('a shadow ban is never told: no flag, no reason, even beside a visible flag', () => {
  const banned = nodeView(row({ shadow_banned: true, reason: 'shadow: copies answers' }), null, NOW);
  assert.ok(!JSON.stringify(banned).includes('shadow'));
  assert.equal(banned.flags.reason, null);
  assert.equal(banned.in_rotation, true);
  const both = nodeView(row({ shadow_banned: true, paused: true, reason: 'shadow: copies answers' }), null, NOW);
  assert.equal(both.flags.paused, true);
  assert.equal(both.flags.reason, null);
});

test('a scored node shows the score and its parts', () => {
  const updated = new Date(NOW - 30_000);
  const v = nodeView(row({ score: 0.4, success_rate: 0.8, latency_factor: 0.5, blind_accuracy: 0.667, attempts: 12, blind_jobs: 3, score_updated_at: updated }), null, NOW);
  assert.deepEqual(v.score, { score: 0.4, success_rate: 0.8, latency_factor: 0.5, blind_accuracy: 0.667, attempts: 12, blind_jobs: 3, updated_at: updated });
});
