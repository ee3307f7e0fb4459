// PostgreSQL COPY's text format, the encoding of a snapshot part (format 2): what `COPY (SELECT ...) TO
// STDOUT` prints and `COPY ... FROM STDIN` reads back, so that export and restore never touch a value.
//
//   one row per line, ended by \n; values separated by a tab; NULL is \N; in a value, a backslash escapes
//   the next byte: \\ \b \f \n \r \t \v, \<1-3 octal digits>, \x<1-2 hex digits> (a byte), any other
//   byte stands for itself. (https://www.postgresql.org/docs/current/sql-copy.html, "Text Format")
//
// COPY TO escapes every newline, tab and backslash in a value, so in what it prints each raw \n byte ends
// a row: rows are counted, and parts cut into chunks, at raw newlines without parsing anything.
import { RowBlocks } from '../common/row-blocks.js';
import type { Cell, Row } from './snapshot.format.js';

const TAB = 0x09;
const NEWLINE = 0x0a;
const BACKSLASH = 0x5c;

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** One value as COPY's text format writes it. */
export function copyText(cell: Cell): string {
  if (cell === null) return '\\N';
  return cell.replace(/[\\\n\r\t]/g, (c) => (c === '\\' ? '\\\\' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t'));
}

/** Rows as COPY's text format writes them (tests, tools). */
export function copyLines(rows: Iterable<Row>): string {
  let out = '';
  for (const row of rows) out += `${row.map(copyText).join('\t')}\n`;
  return out;
}

/** Rows in COPY text that COPY TO printed: its raw newlines. */
export function countRows(bytes: Uint8Array): number {
  const buf = asBuffer(bytes);
  let n = 0;
  for (let i = buf.indexOf(NEWLINE); i >= 0; i = buf.indexOf(NEWLINE, i + 1)) n += 1;
  return n;
}

const hexValue = (c: number): number => (c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1);
const isOctal = (c: number | undefined): c is number => c !== undefined && c >= 0x30 && c <= 0x37;

const SIMPLE_ESCAPES: Readonly<Record<number, number>> = { 0x62: 0x08, 0x66: 0x0c, 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09, 0x76: 0x0b };

/** A value's bytes [start, end) with its escapes undone; \N alone is NULL (as PostgreSQL reads it). */
function field(buf: Buffer, start: number, end: number, escaped: boolean): Cell {
  if (!escaped) return buf.toString('utf8', start, end);
  if (end - start === 2 && buf[start + 1] === 0x4e) return null;
  const out = Buffer.allocUnsafe(end - start);
  let o = 0;
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    if (c !== BACKSLASH) {
      out[o++] = c;
      continue;
    }
    const d = buf[++i]!;
    const simple = SIMPLE_ESCAPES[d];
    if (simple !== undefined) out[o++] = simple;
    else if (isOctal(d)) {
      let v = d - 0x30;
      for (let k = 0; k < 2 && i + 1 < end && isOctal(buf[i + 1]); k++) v = v * 8 + (buf[++i]! - 0x30);
      out[o++] = v & 0xff;
    } else if (d === 0x78 && i + 1 < end && hexValue(buf[i + 1]!) >= 0) {
      let v = hexValue(buf[++i]!);
      if (i + 1 < end && hexValue(buf[i + 1]!) >= 0) v = v * 16 + hexValue(buf[++i]!);
      out[o++] = v;
    } else out[o++] = d;
  }
  return out.toString('utf8', 0, o);
}

/**
 * Parses COPY text into rows of `width` values (text, or null for NULL). Throws naming the row when a row
 * has another number of values, or when the text does not end at a row's end.
 */
export function parseCopyText(bytes: Uint8Array, width: number): Row[] {
  const buf = asBuffer(bytes);
  const rows: Row[] = [];
  let row: Row = [];
  let start = 0;
  let escaped = false;
  const n = buf.length;
  for (let i = 0; i < n; i++) {
    const c = buf[i]!;
    if (c === BACKSLASH) {
      // A backslash escapes the next byte, whatever it is (PostgreSQL reads even a raw newline after one as data).
      if (i + 1 >= n) throw new Error(`row ${rows.length + 1} ends in the middle of an escape`);
      escaped = true;
      i += 1;
    } else if (c === TAB || c === NEWLINE) {
      row.push(field(buf, start, i, escaped));
      start = i + 1;
      escaped = false;
      if (c === NEWLINE) {
        if (row.length !== width) throw new Error(`row ${rows.length + 1} has ${row.length} values, the part has ${width} columns`);
        rows.push(row);
        row = [];
      }
    }
  }
  if (start !== n) throw new Error(`the text does not end with a row's newline (row ${rows.length + 1} is cut short)`);
  return rows;
}

/**
 * Cuts a stream of COPY text into chunks of at most `maxBytes`, each ending at a row's end (the last raw
 * newline that fits), by the rule of RowBlocks. A row longer than `maxBytes` alone cannot fit: the chunk is
 * cut inside it, and the row goes on in the next chunk (a part is read as its chunks concatenated; chunks
 * are cut at rows so that a reader can take one alone when rows are of the usual size). The export reads
 * its chunks straight off the COPY protocol (postgres/copy-out.ts); this is the same cut for text alone.
 */
export async function* chunkAtRows(source: AsyncIterable<Uint8Array>, maxBytes: number): AsyncGenerator<Buffer> {
  const ready: Buffer[] = [];
  const blocks = new RowBlocks(maxBytes, (b) => ready.push(b));
  for await (const piece of source) {
    const b = asBuffer(piece);
    const rowEnds: number[] = [];
    for (let nl = b.indexOf(NEWLINE); nl >= 0; nl = b.indexOf(NEWLINE, nl + 1)) rowEnds.push(nl + 1);
    blocks.push(b, rowEnds);
    yield* ready.splice(0);
  }
  blocks.end();
  yield* ready.splice(0);
}
