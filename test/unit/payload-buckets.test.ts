// The payload buckets' names and lifetimes (src/mongo/payload-buckets.ts): a read by job id names its day,
// and a bucket is dropped only once its last possible document has expired.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { newJobId } from '../../src/domain/job-ids.js';
import { bucketExpiresAtMs, bucketName, bucketsOfJob, expiryOf, parseBucketName } from '../../src/mongo/payload-buckets.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;

test('a bucket is named by kind, class and UTC day of creation, and parses back', () => {
  const t = Date.UTC(2026, 11, 5, 23, 59, 59, 999);
  assert.equal(bucketName('job_results', 72, t), 'job_results.r72h.20261205');
  assert.deepEqual(parseBucketName('job_results.r72h.20261205'), { kind: 'job_results', retentionHours: 72, dayStartMs: Date.UTC(2026, 11, 5) });
  assert.equal(parseBucketName('job_results'), null);
  assert.equal(parseBucketName('job_results.r72h.2026120'), null);
  assert.equal(parseBucketName('other.r72h.20261205'), null);
  assert.throws(() => bucketName('job_trace', 0, t), RangeError);
});

test("a bucket expires when its day's last job has expired, never before", () => {
  const dayStart = Date.UTC(2026, 11, 5);
  const b = parseBucketName(bucketName('job_payloads', 24, dayStart))!;
  const lastJob = newJobId(dayStart + DAY - 1);
  assert.ok(expiryOf(lastJob, 24).getTime() < bucketExpiresAtMs(b));
  assert.equal(bucketExpiresAtMs(b), dayStart + DAY + 24 * HOUR);
  // Every job of that day, at any millisecond, expires no later than its bucket.
  for (const at of [0, 1, HOUR, DAY / 2, DAY - 1]) {
    const id = newJobId(dayStart + at);
    assert.equal(bucketName('job_payloads', 24, dayStart + at), `job_payloads.r24h.20261205`);
    assert.ok(expiryOf(id, 24).getTime() <= bucketExpiresAtMs(b));
  }
});

test("a read visits only its job's day's buckets (every class), never other days'", () => {
  const day = Date.UTC(2026, 11, 5, 12);
  const names = [
    'job_payloads.r72h.20261204',
    'job_payloads.r72h.20261205',
    'job_payloads.r720h.20261205',
    'job_results.r72h.20261205',
    'job_payloads.r72h.20261206',
    'job_payloads',
    'unrelated',
  ];
  assert.deepEqual(bucketsOfJob(names, 'job_payloads', newJobId(day)), ['job_payloads.r72h.20261205', 'job_payloads.r720h.20261205']);
  assert.deepEqual(bucketsOfJob(names, 'job_results', newJobId(day)), ['job_results.r72h.20261205']);
  // An id that carries no time (not one the backbone makes) has to look in every bucket of its kind.
  assert.equal(bucketsOfJob(names, 'job_payloads', randomUUID()).length, 4);
});
