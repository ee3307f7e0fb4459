// The pure parts of the metrics module: statement classification, transaction counting, label
// sanitising, and reading the exposition format back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clientLabel, mongoCommandLabel, pgStatementKind, PgTransactionTracker, redisCommandLabel } from '../../src/metrics/labels.js';
import { parseExposition, sumSamples } from '../../src/metrics/exposition.js';

test('pgStatementKind: the first keyword, after comments and blanks; transaction control spelled every way', () => {
  assert.equal(pgStatementKind('SELECT 1'), 'select');
  assert.equal(pgStatementKind('  \n  update jobs SET x = 1'), 'update');
  assert.equal(pgStatementKind('-- a comment\nINSERT INTO t VALUES (1)'), 'insert');
  assert.equal(pgStatementKind('/* hint */ WITH a AS (SELECT 1) SELECT * FROM a'), 'with');
  assert.equal(pgStatementKind('BEGIN ISOLATION LEVEL REPEATABLE READ'), 'begin');
  assert.equal(pgStatementKind('START TRANSACTION'), 'begin');
  assert.equal(pgStatementKind('END'), 'commit');
  assert.equal(pgStatementKind('ABORT'), 'rollback');
  assert.equal(pgStatementKind('ROLLBACK TO SAVEPOINT a'), 'savepoint');
  assert.equal(pgStatementKind('VACUUM t'), 'other');
  assert.equal(pgStatementKind(''), 'other');
});

test('PgTransactionTracker: COMMIT ends an explicit transaction, a lone statement is one, ROLLBACK is counted apart', () => {
  const t = new PgTransactionTracker();
  const seq = (kinds: Parameters<PgTransactionTracker['observe']>[0][]) => kinds.map((k) => t.observe(k));
  assert.deepEqual(seq(['select', 'insert']), ['implicit', 'implicit']);
  assert.deepEqual(seq(['begin', 'insert', 'update', 'commit']), [null, null, null, 'explicit']);
  assert.deepEqual(seq(['begin', 'savepoint', 'update', 'rollback', 'select']), [null, null, null, 'rollback', 'implicit']);
  // A stray COMMIT (no transaction open) commits nothing on the server.
  assert.deepEqual(seq(['commit', 'rollback']), [null, null]);
});

test('labels stay bounded: unknown MongoDB commands, odd Redis names and client names collapse to other', () => {
  assert.equal(mongoCommandLabel('insert'), 'insert');
  assert.equal(mongoCommandLabel('someNewCommand'), 'other');
  assert.equal(redisCommandLabel('EVALSHA'), 'evalsha');
  assert.equal(redisCommandLabel('rt:node:0xabc'), 'other');
  assert.equal(redisCommandLabel('x'.repeat(40)), 'other');
  assert.equal(clientLabel('stream-sub'), 'stream-sub');
  assert.equal(clientLabel('a b'), 'other');
});

test('parseExposition and sumSamples read what prom-client writes', () => {
  const text = [
    '# HELP resultity_redis_commands_total Commands',
    '# TYPE resultity_redis_commands_total counter',
    'resultity_redis_commands_total{client="main",command="get"} 3',
    'resultity_redis_commands_total{client="sub",command="publish"} 2',
    'resultity_http_responses_total{route="/v1/x",method="GET",status="2xx"} 1',
    'weird{a="q\\"uote",b="back\\\\slash"} 1.5e3',
    'bare_total 7',
  ].join('\n');
  const s = parseExposition(text);
  assert.equal(s.length, 5);
  assert.equal(sumSamples(s, 'resultity_redis_commands_total'), 5);
  assert.equal(sumSamples(s, 'resultity_redis_commands_total', { client: 'main' }), 3);
  assert.equal(sumSamples(s, 'resultity_redis_commands_total', { command: ['get', 'publish'] }), 5);
  assert.equal(sumSamples(s, 'missing_total'), 0);
  assert.deepEqual(s[3]!.labels, { a: 'q"uote', b: 'back\\slash' });
  assert.equal(s[3]!.value, 1500);
  assert.equal(sumSamples(s, 'bare_total'), 7);
  assert.throws(() => parseExposition('not a sample line at all!'));
});
