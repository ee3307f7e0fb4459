import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toCsv } from '../../src/domain/csv.js';

test('CSV: header, quoting of commas, quotes and newlines, and no formula injection', () => {
  const rows = [
    { a: 'plain', b: 1 },
    { a: 'with, comma', b: 2 },
    { a: 'say "hi"\nthen', b: 3 },
    { a: '=HYPERLINK("x")', b: 4 },
  ];
  assert.equal(toCsv(['a', 'b'], rows), 'a,b\r\nplain,1\r\n"with, comma",2\r\n"say ""hi""\nthen",3\r\n"\'=HYPERLINK(""x"")",4\r\n');
});

test('CSV: a leading tab or carriage return is neutralised too (some spreadsheets skip it and run what follows)', () => {
  const rows = [{ a: '\t=1+2' }, { a: '\r=cmd' }, { a: 'mid\tdle' }];
  assert.equal(toCsv(['a'], rows), "a\r\n'\t=1+2\r\n\"'\r=cmd\"\r\nmid\tdle\r\n");
});
