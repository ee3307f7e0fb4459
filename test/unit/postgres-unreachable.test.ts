// Which PostgreSQL errors the HTTP layer answers with a 503 to retry (src/postgres/db.ts isPostgresUnreachable):
// the server down, restarting or cutting the connection; never a statement's own error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isPostgresUnreachable } from '../../src/postgres/db.js';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

test('connection-level failures are unreachable', () => {
  for (const err of [
    withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'),
    withCode('read ECONNRESET', 'ECONNRESET'),
    withCode('terminating connection due to administrator command', '57P01'),
    withCode('the database system is starting up', '57P03'),
    withCode('the database system is shutting down', '57P03'),
    withCode('connection failure', '08006'),
    new Error('Connection terminated unexpectedly'),
    new Error('Client has encountered a connection error and is not queryable'),
    new Error('timeout exceeded when trying to connect'),
  ]) {
    assert.equal(isPostgresUnreachable(err), true, err.message);
  }
});

test("a statement's own error is not", () => {
  for (const err of [
    withCode('duplicate key value violates unique constraint', '23505'),
    withCode('could not serialize access due to concurrent update', '40001'),
    withCode('syntax error at or near', '42601'),
    withCode('canceling statement due to statement timeout', '57014'),
    new Error('something else'),
  ]) {
    assert.equal(isPostgresUnreachable(err), false, err.message);
  }
  assert.equal(isPostgresUnreachable('Connection terminated'), false, 'not an Error');
});
