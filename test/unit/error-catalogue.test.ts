// The one error catalogue (src/errors.ts ERROR_CATALOGUE): every code a job can end with is in it under
// the kind of its status, and docs/errors.md lists exactly the catalogue, code by code, with its HTTP status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppError, ERROR_CATALOGUE, isErrorCode } from '../../src/errors.js';
import { endings } from '../../src/domain/job-states.js';
import { httpStatusOfCode } from '../../src/http/errors.http.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');

test("every ending of a job is a catalogued code under its status's kind", () => {
  for (const e of [endings.deadlineExceeded(), endings.attemptsExhausted(3), endings.noNodeAvailable('m', 1), endings.payloadMissing(), endings.streamInterrupted(), endings.cancelled()]) {
    assert.ok(isErrorCode(e.code), e.code);
    assert.equal(ERROR_CATALOGUE[e.code].kind, e.status === 'expired' ? 'job_expired' : 'job_failed', e.code);
    assert.equal(AppError.jobEnded(e.status === 'expired' ? 'expired' : 'failed', e.code, e.message).kind, ERROR_CATALOGUE[e.code].kind);
  }
});

test('a job ended with a code this version no longer makes keeps it, under its status', () => {
  const err = AppError.jobEnded('failed', 'some_old_code', null);
  assert.equal(err.code, 'some_old_code');
  assert.equal(err.kind, 'job_failed');
});

test('docs/errors.md lists the catalogue exactly', () => {
  const doc = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8');
  const rows = [...doc.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \| ([a-z_]+) \|/gm)].map((m) => [m[1], Number(m[2]), m[3]]);
  const expected = Object.entries(ERROR_CATALOGUE).map(([code, e]) => [code, httpStatusOfCode(code, e.kind), e.kind]);
  assert.deepEqual(rows, expected);
});
