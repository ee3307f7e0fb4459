// Writes docs/errors.md from the error catalogue (src/errors.ts ERROR_CATALOGUE):
// `node dist/scripts/write-errors-doc.js` after adding or changing a code (test/unit/error-catalogue.test.ts
// fails until the page matches).
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_CATALOGUE } from '../src/errors.js';
import { httpStatusOfCode } from '../src/http/errors.http.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

const page = [
  '# Error codes',
  '',
  'Every code the backbone answers with, from the one catalogue in `src/errors.ts` (`ERROR_CATALOGUE`;',
  'test/unit/error-catalogue.test.ts fails when this page and the catalogue differ; `node',
  'dist/scripts/write-errors-doc.js` rewrites it). The public API answers in OpenAI\'s error shape',
  '(`{"error": {"message", "type", "param", "code"}}`); the node protocol (io) with `{"type": "error", "code",',
  '"message"}` on the socket (a refused registration also closes it) and `{"error": {"code", "message"}}` on its',
  'HTTP posts. A failed or expired job answers with the code its ending recorded; a job ended by an older',
  'version may carry a code no longer listed here.',
  '',
  '| code | HTTP status | kind | meaning |',
  '| --- | --- | --- | --- |',
  ...Object.entries(ERROR_CATALOGUE).map(([code, e]) => `| \`${code}\` | ${httpStatusOfCode(code, e.kind)} | ${e.kind} | ${e.meaning} |`),
  '',
].join('\n');
writeFileSync(join(ROOT, 'docs/errors.md'), page);
