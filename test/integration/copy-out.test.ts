// COPY TO read straight off the connection (src/postgres/copy-out.ts), against the real PostgreSQL: the
// blocks are exactly PostgreSQL's COPY text as pg-copy-streams reads it, cut by chunkAtRows's rule; an
// error before or during the COPY rejects and leaves the connection usable; so does leaving the loop early.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { CopyToBlocks } from '../../src/postgres/copy-out.js';
import { chunkAtRows } from '../../src/snapshots/copy-text.js';

const client = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });

before(async () => {
  await client.connect();
  // A notice per 1,000th row: the server slips NoticeResponse messages between the rows.
  await client.query(`CREATE FUNCTION pg_temp.noisy(g int) RETURNS int LANGUAGE plpgsql AS $$
    BEGIN IF g % 1000 = 0 THEN RAISE NOTICE 'row %', g; END IF; RETURN g; END $$`);
});
after(() => client.end());

/** Rows of every length, up to several blocks of 1,000 bytes, with values that COPY escapes. */
const VARIED = `COPY (SELECT pg_temp.noisy(g), repeat(chr(97 + g % 26), (g * 7919) % 3500), E'tab\\there\\nline\\\\', NULL
                        FROM generate_series(1, 3000) g) TO STDOUT`;

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of source) out.push(x);
  return out;
}

test('the blocks are the COPY text cut at rows by chunkAtRows\'s rule, with rows longer than a block cut inside', { timeout: 30_000 }, async () => {
  const reference = Buffer.concat(await collect(client.query(copyTo(VARIED)) as AsyncIterable<Buffer>));
  for (const blockBytes of [1000, 4096, 1024 * 1024]) {
    const blocks = await collect(client.query(new CopyToBlocks(VARIED, blockBytes)));
    assert.deepEqual(Buffer.concat(blocks), reference, `the same bytes (blocks of ${blockBytes})`);
    const expected = await collect(chunkAtRows((async function* () {
      yield reference;
    })(), blockBytes));
    assert.deepEqual(blocks.map((b) => b.length), expected.map((b) => b.length), `the same cuts (blocks of ${blockBytes})`);
    assert.ok(blocks.every((b) => b.length <= blockBytes));
    if (blockBytes === 1000) assert.ok(blocks.some((b) => b.at(-1) !== 0x0a), 'some rows are longer than a block');
  }
  const { rows } = await client.query<{ one: number }>('SELECT 1 AS one');
  assert.equal(rows[0]!.one, 1);
});

test('a large COPY read slowly: every row arrives, in order, while the socket is paused and resumed', { timeout: 30_000 }, async () => {
  const sql = `COPY (SELECT g, md5(g::text) FROM generate_series(1, 200000) g) TO STDOUT`;
  let text = '';
  for await (const block of client.query(new CopyToBlocks(sql, 64 * 1024))) {
    text += block.toString('utf8');
    await new Promise((resolve) => setImmediate(resolve));
  }
  const lines = text.split('\n');
  assert.equal(lines.length, 200001);
  assert.equal(lines[0], `1\tc4ca4238a0b923820dcc509a6f75849b`);
  assert.equal(lines[199999]!.split('\t')[0], '200000');
});

test('an error in the middle of the COPY rejects, and the connection serves the next query', { timeout: 30_000 }, async () => {
  const sql = `COPY (SELECT 1 / (g - 150000), md5(g::text) FROM generate_series(1, 200000) g) TO STDOUT`;
  let bytes = 0;
  await assert.rejects(async () => {
    for await (const block of client.query(new CopyToBlocks(sql, 64 * 1024))) bytes += block.length;
  }, /division by zero/);
  assert.ok(bytes > 0, 'rows before the error arrived');
  assert.equal((await client.query<{ two: number }>('SELECT 2 AS two')).rows[0]!.two, 2);
});

test('an error before the COPY (no such table) rejects, and the connection serves the next query', { timeout: 30_000 }, async () => {
  await assert.rejects(collect(client.query(new CopyToBlocks('COPY (SELECT * FROM no_such_table) TO STDOUT', 1000))), /no_such_table/);
  assert.equal((await client.query<{ three: number }>('SELECT 3 AS three')).rows[0]!.three, 3);
});

test('leaving the loop after the first block drops the rest, and the connection serves the next query', { timeout: 30_000 }, async () => {
  const sql = `COPY (SELECT g, md5(g::text) FROM generate_series(1, 300000) g) TO STDOUT`;
  const copy = new CopyToBlocks(sql, 16 * 1024);
  for await (const block of client.query(copy)) {
    assert.ok(block.length > 0);
    // Long enough for the blocks to pile up and the socket to be paused: leaving must resume it.
    await new Promise((resolve) => setTimeout(resolve, 300));
    break;
  }
  const next = client.query<{ four: number }>('SELECT 4 AS four');
  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('the connection is still busy 10 s later')), 10_000).unref());
  const r = (await Promise.race([next, timeout])) as pg.QueryResult<{ four: number }>;
  assert.equal(r.rows[0]!.four, 4);
});
