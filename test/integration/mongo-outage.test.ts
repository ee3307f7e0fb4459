// MongoDB gone while a job runs: the result's output and its settlement are written side by side, and the
// job is reported completed only once both are done (src/io/results.service.ts). When MongoDB refuses the
// output every time, the settled job is still reported completed, so that the client gets the answer it
// was charged for, charged once; only the stored copy for reads after the fact is missing. The backbone
// runs against a FerretDB of this test's own (helpers/private-ferretdb.ts), killed mid-job.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { jobBucket } from '../../src/mongo/payload-buckets.js';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';
import { PrivateFerretDb } from '../helpers/private-ferretdb.js';

let ferret: PrivateFerretDb;
let stack: TestStack;
let tenant: Tenant;

before(async () => {
  ferret = await PrivateFerretDb.start(`rt_test_mongo_outage_${randomBytes(3).toString('hex')}`);
  // The attempt's timeout outlasts the result's two store tries against a dead MongoDB (each waits out the
  // driver's 5 s server selection): the result is settled and reported, not taken for a silent node.
  stack = await TestStack.start({ mongoBase: ferret.url, config: { JOB_DEADLINE_MS: 60_000, JOB_ATTEMPT_TIMEOUT_MS: 30_000 } });
  await stack.model();
  await stack.node({ latencyMs: 1_500, capacity: 2 });
  tenant = await stack.tenant(10);
});

after(async () => {
  // Back up (if a failed test left it down), so that the stack can drop its MongoDB database.
  await ferret.boot().catch(() => undefined);
  await stack.close();
  await ferret.destroy();
});

test('MongoDB killed while a job runs: the settled job is still answered and reported completed, charged once, its stored copy missing', () =>
  stack.check(async () => {
    const before = await stack.balance(tenant.namespaceId);
    const answer = fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: TEST_MODEL, messages: [{ role: 'user', content: 'outlive MongoDB' }], max_tokens: 8 }),
    });
    const running = await stack.until('the job to run on its node', async () => {
      const r = await stack.db.query<{ id: string }>(`SELECT id FROM jobs WHERE namespace_id = $1`, [tenant.namespaceId]);
      const id = r.rows[0]?.id;
      return id && (await stack.job(id))?.status === 'running' ? { id } : undefined;
    });
    await ferret.kill();

    const res = await answer;
    const body = (await res.json()) as { choices?: Array<{ message: { content: string } }>; error?: unknown };
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.match(body.choices![0]!.message.content, /^simulated answer/);

    const row = await stack.db.query<{ status: string; charged_micro: number }>(`SELECT status, charged_micro::int AS charged_micro FROM jobs WHERE id = $1`, [running.id]);
    assert.equal(row.rows[0]!.status, 'completed');
    const captures = await stack.db.query(`SELECT 1 FROM ledger_transactions WHERE job_id = $1 AND kind = 'capture'`, [running.id]);
    assert.equal(captures.rowCount, 1, 'charged once');
    const after = await stack.balance(tenant.namespaceId);
    assert.equal(after.held, 0);
    assert.equal(before.available - after.available, row.rows[0]!.charged_micro);

    // MongoDB back: the output was never stored, and a read after the fact says so.
    await ferret.boot();
    const stored = await stack.until('MongoDB to answer again', async () =>
      stack.backbone.mongo.db.collection(jobBucket('job_results', running.id, stack.config.PAYLOAD_RETENTION_HOURS)).countDocuments({ jobId: running.id }).catch(() => undefined),
    );
    assert.equal(stored, 0);
  }));
