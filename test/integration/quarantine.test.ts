// The quarantine through the admin API: jobs that ended without a result are listed with their reason,
// then re-queued once (a new job, held and charged like any other; the original stays failed) or
// discarded.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestStack, TEST_MODEL } from '../helpers/stack.js';

let stack: TestStack;
const check = (fn: () => Promise<void>) => stack.check(fn);

before(async () => {
  stack = await TestStack.start({ config: { JOB_MAX_ATTEMPTS: 1, NODE_COOLDOWN_FAILURES: 100 } });
  await stack.model();
});

after(async () => {
  await stack.close();
});

function admin(method: string, path: string): Promise<Response> {
  return fetch(`${stack.url}${path}`, { method, headers: { authorization: `Bearer ${stack.config.ADMIN_TOKEN}` } });
}

interface Entry {
  job_id: string;
  reason: string;
  status: string;
  model: string;
}

test('failed jobs are listed with their reason; one is re-queued once and completes, one is discarded', () =>
  check(async () => {
    const broken = await stack.brokenNode();
    const tenant = await stack.tenant(5);
    const failed: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${stack.url}/v1/chat/completions`, {
        method: 'POST',
        // The first one urgent: a re-queued job keeps its priority class.
        headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json', ...(i === 0 ? { 'x-resultity-priority': 'urgent' } : {}) },
        body: JSON.stringify({ model: TEST_MODEL, messages: [{ role: 'user', content: `try ${i}` }], max_tokens: 8 }),
      });
      assert.equal(res.status, 502);
      failed.push(res.headers.get('x-resultity-job-id')!);
    }
    broken.kill();

    const listed = ((await (await admin('GET', '/admin/quarantine')).json()) as { data: Entry[] }).data;
    assert.deepEqual(listed.map((e) => [e.job_id, e.reason, e.status]).sort(), failed.map((id) => [id, 'attempts_exhausted', 'failed']).sort());

    await stack.node();
    const requeued = await admin('POST', `/admin/quarantine/${failed[0]}/requeue`);
    assert.equal(requeued.status, 201);
    const fresh = (await requeued.json()) as { id: string };
    assert.notEqual(fresh.id, failed[0]);
    const priority = await stack.db.query<{ priority: string }>(`SELECT priority FROM jobs WHERE id = $1`, [fresh.id]);
    assert.equal(priority.rows[0]?.priority, 'urgent');
    await stack.until('the re-queued job to complete', async () => ((await stack.job(fresh.id))?.status === 'completed' ? true : undefined));
    assert.equal((await stack.job(failed[0]!))?.status, 'failed', 'the original stays as it ended');
    assert.equal((await admin('POST', `/admin/quarantine/${failed[0]}/requeue`)).status, 404, 're-queued once');

    assert.equal((await admin('POST', `/admin/quarantine/${failed[1]}/discard`)).status, 204);
    const left = ((await (await admin('GET', '/admin/quarantine')).json()) as { data: Entry[] }).data;
    assert.deepEqual(left, []);
    // The re-queued job was charged like any other; the failed ones were not.
    const charges = await stack.db.query<{ id: string; charged_micro: number }>(`SELECT id, charged_micro FROM jobs WHERE namespace_id = $1`, [tenant.namespaceId]);
    for (const row of charges.rows) assert.equal(row.charged_micro > 0, row.id === fresh.id);
  }));

test("a job whose key was revoked is not re-queued on its behalf", () =>
  check(async () => {
    const tenant = await stack.tenant(1);
    const broken = await stack.brokenNode(['test/other'], 1);
    await stack.model('test/other');
    const res = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'test/other', messages: [{ role: 'user', content: 'x' }], max_tokens: 8 }),
    });
    const jobId = res.headers.get('x-resultity-job-id')!;
    broken.kill();
    await stack.backbone.admin.apiKeys.revokeApiKey(tenant.keyId);
    assert.equal((await admin('POST', `/admin/quarantine/${jobId}/requeue`)).status, 409);
    assert.equal((await admin('POST', `/admin/quarantine/${jobId}/discard`)).status, 204);
  }));
