// What each snapshot part's COPY reads: the raw job parts in primary-key order without a sort (format 3),
// every other part sorted as before, and an older format's order when comparing its parts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copySource, DAY_PARTS, FORMAT_2_ORDER, PART_SETTINGS, partSpec } from '../../src/snapshots/snapshot-parts.js';

test('raw job parts are read in primary-key order with sorts off; every other part with sorts on (a setting lasts the transaction)', () => {
  const params = { day: '2026-01-02', epochs: [5, 6] };
  const jobs = copySource(partSpec('jobs')!, params);
  assert.equal(jobs.source.orderBy, 'id, created_at');
  assert.equal(jobs.settings['enable_sort'], 'off');
  assert.equal(jobs.settings[PART_SETTINGS.day], '2026-01-02');
  assert.equal(jobs.settings[PART_SETTINGS.epochs], '{5,6}');
  assert.equal(copySource(partSpec('job_attempts')!, params).settings['enable_sort'], 'off');
  for (const spec of DAY_PARTS.filter((s) => s.name !== 'jobs' && s.name !== 'job_attempts')) {
    assert.equal(copySource(spec, params).settings['enable_sort'], 'on', spec.name);
  }
  // The part's condition reads the settings, never a value written into the SQL.
  assert.doesNotMatch(jobs.source.where, /2026-01-02/);
  assert.match(jobs.source.where, /current_setting\('resultity\.snapshot_day'\)/);
});

test('a format-2 part is copied in its own order (by time), with sorts on', () => {
  const old = copySource(partSpec('jobs')!, { day: '2026-01-02', epochs: [] }, FORMAT_2_ORDER['jobs']);
  assert.equal(old.source.orderBy, 'created_at, id');
  assert.equal(old.settings['enable_sort'], 'on');
});
