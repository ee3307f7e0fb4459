// A snapshot part's encoding (src/snapshots/copy-text.ts): PostgreSQL COPY text parsed back into values,
// rows counted from newlines, and the stream cut into chunks at rows' ends; no database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chunkAtRows, copyLines, copyText, countRows, parseCopyText } from '../../src/snapshots/copy-text.js';
import type { Row } from '../../src/snapshots/snapshot.format.js';

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
