// The shape of src/ (README, "Layout"): the folder import graph has no cycle, engine clients (pg,
// ioredis, mongodb, rabbitmq-client) are imported only in the engine folders, and SQL is sent only from
// src/postgres/. The lint rule in eslint.config.js forbids imports upward; this test catches cycles within
// a layer, which it allows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const SRC = join(ROOT, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** `src/<folder>/...` -> folder; a file directly in src/ is its own node. */
const folderOf = (file: string) => {
  const parts = relative(SRC, file).split('/');
  return parts.length > 1 ? parts[0]! : parts[0]!.replace(/\.ts$/, '');
};

const files = sources(SRC);
const imports = files.map((file) => ({
  file,
  specifiers: [...readFileSync(file, 'utf8').matchAll(/\bfrom '([^']+)'/g)].map((m) => m[1]!),
}));

test('no strongly connected group of folders in src/', () => {
  const edges = new Map<string, Set<string>>();
  for (const { file, specifiers } of imports) {
    for (const s of specifiers.filter((x) => x.startsWith('.'))) {
      const from = folderOf(file);
      const to = folderOf(normalize(join(dirname(file), s)));
      if (from !== to) (edges.get(from) ?? edges.set(from, new Set()).get(from)!).add(to);
    }
  }
  // Tarjan's algorithm: every component of more than one folder is a knot.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const knots: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    for (const w of edges.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (stack.includes(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        component.push(w);
      } while (w !== v);
      if (component.length > 1) knots.push(component.sort());
    }
  };
  for (const v of edges.keys()) if (!idx.has(v)) visit(v);
  assert.deepEqual(knots, []);
});

test('engine clients are imported only in the engine folders', () => {
  const ENGINE_FOLDERS = new Set(['postgres', 'redis', 'mongo', 'rabbitmq']);
  const found = imports
    .filter(({ file, specifiers }) => !ENGINE_FOLDERS.has(folderOf(file)) && specifiers.some((s) => ['pg', 'ioredis', 'mongodb', 'rabbitmq-client'].includes(s)))
    .map(({ file }) => relative(SRC, file))
    .sort();
  assert.deepEqual(found, []);
});

test('SQL is sent only from src/postgres/ (services call repositories; they never hold a query of their own)', () => {
  const found = files
    .filter((file) => folderOf(file) !== 'postgres' && /\.query(<[^>]*>)?\(/.test(readFileSync(file, 'utf8')))
    .map((file) => relative(SRC, file))
    .sort();
  assert.deepEqual(found, []);
});

test('every service has a fast test tier (docs/testing.md): test/unit/<name>.service.test.ts', () => {
  const missing = files
    .filter((file) => file.endsWith('.service.ts'))
    .map((file) => file.split('/').pop()!.replace(/\.ts$/, '.test.ts'))
    .filter((name) => !existsSync(join(ROOT, 'test/unit', name)))
    .sort();
  assert.deepEqual(missing, []);
});
