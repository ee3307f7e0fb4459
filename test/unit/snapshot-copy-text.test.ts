// A snapshot part's encoding (src/snapshots/copy-text.ts, car-file.ts encodePart): PostgreSQL COPY text
// parsed back into values, rows counted from newlines, the stream cut into raw blocks at rows' ends; no database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chunkAtRows, copyLines, copyText, countRows, parseCopyText } from '../../src/snapshots/copy-text.js';
import { createHash } from 'node:crypto';
import { encodePart } from '../../src/snapshots/car-file.js';
import { CHUNK_MAX_BYTES, type Block, type Row } from '../../src/snapshots/snapshot.format.js';

const bytes = (s: string) => Buffer.from(s, 'utf8');

async function* pieces(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of source) out.push(Buffer.from(c));
  return out;
}

test('parseCopyText reads values, NULL and every escape COPY writes', () => {
  const text = 'a\tb\\tc\t\\N\n' + '\\\\N\t\tline\\nbreak\n' + 'x\\ry\\bz\t\\f\\v\t\\\\x00ff\n';
  assert.deepEqual(parseCopyText(bytes(text), 3), [
    ['a', 'b\tc', null],
    ['\\N', '', 'line\nbreak'],
    ['x\ry\bz', '\f\v', '\\x00ff'],
  ]);
});

test('parseCopyText reads octal and hex byte escapes (UTF-8 bytes), and takes any other escaped byte as itself', () => {
  // é is C3 A9 in UTF-8: as octal \303\251 or as hex \xc3\xa9; \q is q; \x without hex digits is x.
  assert.deepEqual(parseCopyText(bytes('\\303\\251\t\\xc3\\xa9\t\\q\\x\t\\101\\0\n'), 4), [['é', 'é', 'qx', 'A\u0000']]);
  // A backslash escapes even a raw newline or tab (PostgreSQL reads them as data).
  assert.deepEqual(parseCopyText(bytes('a\\\nb\tc\\\td\n'), 2), [['a\nb', 'c\td']]);
});

test('parseCopyText round-trips what copyText writes, Unicode included', () => {
  const rows: Row[] = [
    ['plain', null, ''],
    ['tab\there', 'new\nline\r\n', 'back\\slash\\N'],
    ['日本語 ✓ 🚀', '\\', '\\N'],
    [null, null, null],
  ];
  assert.deepEqual(parseCopyText(bytes(copyLines(rows)), 3), rows);
  assert.equal(copyText(null), '\\N');
  assert.equal(copyText('\\N'), '\\\\N');
});

test('parseCopyText names a row of the wrong width and text cut inside a row', () => {
  assert.throws(() => parseCopyText(bytes('a\tb\nc\n'), 2), /row 2 has 1 values, the part has 2 columns/);
  assert.throws(() => parseCopyText(bytes('a\tb\nc\td'), 2), /does not end with a row's newline \(row 2 is cut short\)/);
  assert.throws(() => parseCopyText(bytes('a\tb\\'), 2), /row 1 ends in the middle of an escape/);
  assert.deepEqual(parseCopyText(bytes(''), 2), []);
});

test('countRows counts rows, not the escaped newlines inside values', () => {
  const rows: Row[] = [['one\ntwo\nthree', 'x'], ['\n\n', null], ['last', '\\n']];
  const text = bytes(copyLines(rows));
  assert.equal(countRows(text), 3);
  assert.equal(parseCopyText(text, 2).length, 3);
});

test('chunkAtRows cuts at rows\' ends within the limit, whatever the pieces the stream comes in', async () => {
  const rows: Row[] = Array.from({ length: 500 }, (_, i) => [String(i), `value ${i}\nwith an escaped newline`.repeat(1 + (i % 7)), i % 3 === 0 ? null : 'z']);
  const text = bytes(copyLines(rows));
  for (const piece of [1, 7, 100, 4096, text.length]) {
    for (const max of [64, 300, 1000, 1 << 20]) {
      const chunks = await collect(chunkAtRows(pieces(text, piece), max));
      assert.deepEqual(Buffer.concat(chunks), text, `piece ${piece}, max ${max}: the chunks are the stream`);
      for (const c of chunks) assert.ok(c.length <= max, `piece ${piece}, max ${max}: a chunk of ${c.length} bytes`);
      // Rows here are under 300 bytes: from that limit on, every chunk ends at a row's end and parses alone.
      if (max >= 300) {
        let n = 0;
        for (const c of chunks) {
          assert.equal(c.at(-1), 0x0a);
          n += parseCopyText(c, 3).length;
          assert.equal(countRows(c), parseCopyText(c, 3).length);
        }
        assert.equal(n, rows.length);
        // Full: a chunk is cut only where the next row would not fit.
        for (const [i, c] of chunks.slice(0, -1).entries()) {
          const next = chunks[i + 1]!;
          assert.ok(c.length + next.indexOf(0x0a) + 1 > max, `piece ${piece}, max ${max}: chunk ${i} had room for the next row`);
        }
      }
      assert.equal(chunks.reduce((s, c) => s + countRows(c), 0), rows.length);
    }
  }
});

test('chunkAtRows cuts a row longer than the limit inside it, and gives nothing for nothing', async () => {
  const long = bytes(`${'x'.repeat(2500)}\nshort\n`);
  const chunks = await collect(chunkAtRows(pieces(long, 1000), 1000));
  assert.deepEqual(chunks.map((c) => c.length), [1000, 1000, 507]);
  assert.deepEqual(Buffer.concat(chunks), long);
  assert.deepEqual(await collect(chunkAtRows(pieces(Buffer.alloc(0), 1), 1000)), []);
});

test('encodePart: raw blocks of the COPY text\'s chunks, rows and sha256 over the whole; after a failed put it reads the COPY to its end, then throws', async () => {
  const rows: Row[] = Array.from({ length: 100_000 }, (_, i) => [String(i), `row ${i}\twith a tab`, null]);
  const text = bytes(copyLines(rows));
  const blocks: Block[] = [];
  const part = await encodePart('p', 't', ['a', 'b', 'c'], chunkAtRows(pieces(text, 65_536), CHUNK_MAX_BYTES), async (b) => void blocks.push(b));
  assert.equal(part.encoding, 'postgresql-copy-text');
  assert.equal(part.rows, rows.length);
  assert.equal(part.bytes, text.length);
  assert.equal(part.sha256, createHash('sha256').update(text).digest('hex'));
  assert.ok(blocks.length > 1 && blocks.every((b) => b.bytes.length <= CHUNK_MAX_BYTES && b.cid.code === 0x55 && b.bytes.at(-1) === 0x0a));
  assert.deepEqual(part.chunks.map(String), blocks.map((b) => b.cid.toString()));
  assert.deepEqual(parseCopyText(Buffer.concat(blocks.map((b) => b.bytes)), 3), rows);

  let read = 0;
  const counted = async function* () {
    for await (const p of pieces(text, 65_536)) {
      read += p.length;
      yield p;
    }
  };
  let puts = 0;
  await assert.rejects(
    encodePart('p', 't', ['a', 'b', 'c'], chunkAtRows(counted(), CHUNK_MAX_BYTES), async () => {
      if (++puts === 1) throw new Error('no space left on device');
    }),
    /no space left on device/,
  );
  assert.equal(puts, 1);
  assert.equal(read, text.length, 'the whole COPY was read');
});

test('encodePart refuses a chunk larger than a block may be', async () => {
  const big = Buffer.alloc(CHUNK_MAX_BYTES + 1, 0x61);
  await assert.rejects(encodePart('p', 't', ['a'], pieces(big, big.length), async () => undefined), /over the 1048576 a block may hold/);
});
