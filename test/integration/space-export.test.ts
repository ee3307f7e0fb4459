// Export of 100,000 jobs through the API in constant memory (issue 10, part 4), and the CLI's export with
// its progress bar. Constant memory is checked with a streaming counter, not a heap reading: the documents
// the server has fetched from MongoDB (the driver's command replies) while the client has read only the
// first lines and then stopped. A server that streams is held back by the client's backpressure: it can be
// ahead only by what the socket and stream buffers hold. One that buffered the export (or read ahead
// without backpressure) would fetch all 100,000 before the client resumes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CommandSucceededEvent } from 'mongodb';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';
import { PayloadsRepository, type ResultToSave } from '../../src/mongo/payloads.repository.js';
import { newJobId } from '../../src/domain/job-ids.js';

const JOBS = 100_000;
/** Lines the client reads before it stops reading. */
const READ_FIRST = 2_000;
/**
 * Documents the server may have fetched by then: the lines read, plus what loopback socket buffers (a few
 * MB at most) and the reply stream hold at ~0.5 KB a line, plus a cursor batch. Half the export: a
 * buffering server fetches all of it.
 */
const AHEAD_BOUND = JOBS / 2;
const CLI = 'dist/src/cli/main.js';

let stack: TestStack;
let t: Tenant;

before(async () => {
  stack = await TestStack.start();
  await stack.model();
  t = await stack.tenant(1);
  // 100,000 results sealed and stored through the backbone's own grouped path, a few thousand at a time.
  const payloads = new PayloadsRepository(stack.backbone.mongo.db, stack.backbone.payloadKeys);
  const now = Date.now();
  for (let start = 0; start < JOBS; start += 5_000) {
    const batch: ResultToSave[] = [];
    for (let i = start; i < Math.min(JOBS, start + 5_000); i++) {
      batch.push({
        jobId: newJobId(now),
        namespaceId: t.namespaceId,
        model: TEST_MODEL,
        attempt: 1,
        output: { content: `exported answer ${i}: ${'lorem ipsum dolor sit amet '.repeat(10)}`, finish_reason: 'stop' },
        usage: { prompt_tokens: 3, completion_tokens: 60 },
        nodeId: '0x0000000000000000000000000000000000000000',
        retentionHours: 72,
      });
    }
    await Promise.all(batch.map((r) => payloads.saveResult(r)));
  }
});

after(async () => {
  await stack.close();
});

test(`export: ${JOBS} jobs streamed through GET /v1/jobs/export, with the server held to what the client reads`, () =>
  stack.check(async () => {
    let fetched = 0;
    const onReply = (e: CommandSucceededEvent) => {
      if (e.commandName !== 'find' && e.commandName !== 'getMore') return;
      const cursor = (e.reply as { cursor?: { firstBatch?: unknown[]; nextBatch?: unknown[]; ns?: string } }).cursor;
      if (cursor?.ns?.includes('job_results.')) fetched += (cursor.firstBatch ?? cursor.nextBatch ?? []).length;
    };
    const client = stack.backbone.mongo.client;
    client.on('commandSucceeded', onReply);
    try {
      const res = await fetch(`${stack.url}/v1/jobs/export`, { headers: { authorization: `Bearer ${t.apiKey}` } });
      assert.equal(res.status, 200);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      const decoder = new TextDecoder();
      let lines = 0;
      let rest = '';
      const seen = new Set<string>();
      const take = (chunk: Uint8Array) => {
        rest += decoder.decode(chunk, { stream: true });
        const parts = rest.split('\n');
        rest = parts.pop()!;
        for (const line of parts) {
          const row = JSON.parse(line) as { job_id: string; output: { content: string } };
          assert.match(row.output.content, /^exported answer \d+/);
          seen.add(row.job_id);
          lines++;
        }
      };
      while (lines < READ_FIRST) {
        const { value, done } = await reader.read();
        assert.ok(!done, 'the export ended early');
        take(value);
      }
      // Stopped reading: the server runs on until its buffers are full, then waits.
      let last = -1;
      for (let i = 0; i < 40 && fetched !== last; i++) {
        last = fetched;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      const ahead = fetched - lines;
      assert.ok(ahead < AHEAD_BOUND, `fetched ${fetched} documents while the client had read ${lines} lines: the server does not stream`);
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        take(value);
      }
      assert.equal(rest, '');
      assert.equal(lines, JOBS, 'every job exported');
      assert.equal(seen.size, JOBS, 'each once');
    } finally {
      client.off('commandSucceeded', onReply);
    }
  }));

test('CLI: `resultity space export` writes the namespace\'s results to a file, with a progress bar on standard error', async () => {
  const other = await stack.tenant(1);
  const payloads = new PayloadsRepository(stack.backbone.mongo.db, stack.backbone.payloadKeys);
  const ids: string[] = [];
  for (let i = 0; i < 25; i++) {
    const jobId = newJobId();
    ids.push(jobId);
    await payloads.saveResult({ jobId, namespaceId: other.namespaceId, model: TEST_MODEL, attempt: 1, output: { content: `cli ${i}`, finish_reason: 'stop' }, usage: { prompt_tokens: 1, completion_tokens: 1 }, nodeId: '0x0000000000000000000000000000000000000000', retentionHours: 72 });
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'space-export-'));
  const out = path.join(dir, 'export.ndjson');
  const keys = [...stack.config.PAYLOAD_MASTER_KEYS!].map(([v, k]) => `${v}:${k.toString('base64')}`).join(',');
  const { stderr } = await promisify(execFile)(process.execPath, [CLI, 'space', 'export', other.namespaceId, '--out', out], { env: stack.cliEnv({ MONGODB_URL: stack.mongoUrl, PAYLOAD_MASTER_KEYS: keys }) });
  const lines = (await readFile(out, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { job_id: string; output: { content: string } });
  assert.deepEqual(lines.map((l) => l.job_id).sort(), [...ids].sort());
  assert.match(lines[0]!.output.content, /^cli \d+$/, 'opened with the master key');
  assert.match(stderr, /export \[[^\]]*\] 25\/25 jobs|exported 25 job result/);
  // Without the master key the CLI cannot read sealed payloads: it exports nothing rather than ciphertext.
  const bare = path.join(dir, 'bare.ndjson');
  const keyless = stack.cliEnv({ MONGODB_URL: stack.mongoUrl });
  delete keyless.PAYLOAD_MASTER_KEYS;
  await promisify(execFile)(process.execPath, [CLI, 'space', 'export', other.namespaceId, '--out', bare], { env: keyless });
  assert.equal((await readFile(bare, 'utf8')).trim(), '');
});
