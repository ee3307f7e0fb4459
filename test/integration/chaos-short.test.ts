// The chaos run's short version (bench/chaos.ts; the full one is `npm run chaos`): the same script, the
// roles as separate processes on engines it starts itself, a few hundred jobs and a fault every couple of
// seconds (process kills, a Redis restart, dropped node connections). It exits 0 only when every check
// held: no accepted job lost, none charged twice, no namespace overspent, the ledger at zero, every hold
// released. Its report goes to a temporary file; the committed RELIABILITY.md is the full run's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

test('chaos, short: role processes killed and Redis restarted under load; every accepted job ends, charged once, ledger at zero', { timeout: 175_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'resultity-chaos-short-'));
  const report = join(dir, 'RELIABILITY.md');
  const stderr: string[] = [];
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, [fileURLToPath(new URL('../../bench/chaos.js', import.meta.url))], {
      env: {
        ...process.env,
        CHAOS_JOBS: '150',
        CHAOS_CONCURRENCY: '6',
        CHAOS_NODES: '4',
        // One instance of each role (the full run has two): the suite's time bound is the file's 180 s.
        CHAOS_INSTANCES: '1',
        CHAOS_JOB_DEADLINE_MS: '20000',
        CHAOS_FAULT_EVERY_MS: '1000',
        CHAOS_FAULTS: 'restart_redis,kill_scheduler,drop_nodes,kill_io,kill_cloud',
        CHAOS_TIME_LIMIT_S: '120',
        CHAOS_REPORT: report,
        // The wait for leaked node slots to heal (full run: 150 s); within the file's time bound.
        CHAOS_SLOT_HEAL_S: '20',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr.on('data', (b: Buffer) => stderr.push(b.toString()));
    // Stopped (it then cleans up its processes and engines) before the runner's per-file timeout would
    // kill this file and orphan them.
    const stop = setTimeout(() => child.kill('SIGTERM'), 160_000);
    child.once('exit', (c) => {
      clearTimeout(stop);
      resolve(c);
    });
  });
  const written = await readFile(report, 'utf8').catch(() => '');
  assert.equal(code, 0, `the chaos run failed:\n${stderr.join('')}\n${written}`);
  assert.match(written, /every check held/);
  assert.match(written, /Node slots held when every job had ended: \d+/, 'the node-slot check ran');
  assert.match(written, /\| restart_redis \| [1-9]/, 'at least one fault was injected');
  await rm(dir, { recursive: true, force: true });
});
