// The rule that cuts a snapshot part's COPY text into blocks (src/common/row-blocks.ts): greedy, at the
// last row's end that fits, inside a row only when the row alone is longer than a block.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RowBlocks } from '../../src/common/row-blocks.js';

/** Pushes each row whole, or in fragments of `fragment` bytes, and returns the blocks as text. */
function cut(rows: string[], maxBytes: number, fragment = Infinity): string[] {
  const out: string[] = [];
  const blocks = new RowBlocks(maxBytes, (b) => out.push(b.toString('latin1')));
  for (const row of rows) {
    const bytes = Buffer.from(row, 'latin1');
    for (let at = 0; at < bytes.length; at += Math.min(fragment, bytes.length)) {
      const end = Math.min(at + fragment, bytes.length);
      blocks.push(bytes.subarray(at, end), end === bytes.length ? [end - at] : []);
    }
  }
  blocks.end();
  return out;
}

const row = (n: number, c = 'a') => `${c.repeat(n - 1)}\n`;

test('rows fill a block exactly, then the next block begins', () => {
  assert.deepEqual(cut([row(10), row(10), row(10)], 20), [row(10) + row(10), row(10)]);
});

test('a row that does not fit goes whole to the next block', () => {
  assert.deepEqual(cut([row(8), row(8), row(8, 'b')], 20), [row(8) + row(8), row(8, 'b')]);
});

test('a row longer than a block is cut inside it, and the rows after it go on in its last block', () => {
  assert.deepEqual(cut([row(5), row(45, 'x'), row(5, 'y')], 20), [row(5), 'x'.repeat(20), 'x'.repeat(20), `${'x'.repeat(4)}\n${row(5, 'y')}`]);
});

test('the cuts do not depend on the fragments the bytes come in', () => {
  const rows = Array.from({ length: 500 }, (_, i) => row(1 + ((i * 7919) % 97), String.fromCharCode(97 + (i % 26))));
  const whole = cut(rows, 256);
  assert.equal(whole.join(''), rows.join(''));
  assert.ok(whole.every((b) => b.length <= 256));
  for (const fragment of [1, 3, 64, 1000]) assert.deepEqual(cut(rows, 256, fragment), whole, `fragments of ${fragment}`);
  // Runs of many rows at once, cut anywhere: the same blocks.
  for (const run of [1, 50, 333, 4096]) {
    const text = Buffer.from(rows.join(''), 'latin1');
    const out: string[] = [];
    const blocks = new RowBlocks(256, (b) => out.push(b.toString('latin1')));
    for (let at = 0; at < text.length; at += run) {
      const piece = text.subarray(at, at + run);
      const ends: number[] = [];
      for (let i = 0; i < piece.length; i++) if (piece[i] === 0x0a) ends.push(i + 1);
      blocks.push(piece, ends);
    }
    blocks.end();
    assert.deepEqual(out, whole, `runs of ${run} bytes`);
  }
});

test('nothing in, nothing out; a block size must be a positive integer', () => {
  assert.deepEqual(cut([], 10), []);
  assert.throws(() => new RowBlocks(0, () => undefined), /positive integer/);
});
