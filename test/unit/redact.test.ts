import { test } from 'node:test';
import assert from 'node:assert/strict';
import { redactUrl } from '../../src/domain/redact.js';

test('redactUrl: credential query values and user-info passwords go, the rest stays', () => {
  assert.equal(redactUrl('/v1/models?api_key=rk_abc&format=csv'), '/v1/models?api_key=[redacted]&format=csv');
  assert.equal(redactUrl('/x?TOKEN=1&Access_Token=2&x-amz-signature=3&password=4&limit=5'), '/x?TOKEN=[redacted]&Access_Token=[redacted]&x-amz-signature=[redacted]&password=[redacted]&limit=5');
  assert.equal(redactUrl('/x?api%5Fkey=1'), '/x?api%5Fkey=[redacted]', 'an escaped name is judged decoded');
  assert.equal(redactUrl('amqp://guest:guest@127.0.0.1:5672'), 'amqp://guest:[redacted]@127.0.0.1:5672');
  assert.equal(redactUrl('postgres://postgres@127.0.0.1:5432/db'), 'postgres://postgres@127.0.0.1:5432/db');
  assert.equal(redactUrl('/v1/jobs/abc'), '/v1/jobs/abc');
  assert.equal(redactUrl('/x?flag&key='), '/x?flag&key=[redacted]');
});
