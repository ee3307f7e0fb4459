// Issue 9, billing and routing trust: nothing a node or a client declares is billed, routed on or
// penalised without a bound the backbone checks itself.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestStack, type Tenant } from '../helpers/stack.js';

let stack: TestStack;
let tenant: Tenant;

before(async () => {
  stack = await TestStack.start();
  tenant = await stack.tenant(100);
});

after(async () => {
  await stack.close();
});

const check = (fn: () => Promise<void>) => stack.check(fn);
const messages = [{ role: 'user' as const, content: 'Say something.' }];

/** A chat completion over HTTP with the given extra headers; the response as it came. */
function chat(body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${stack.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ messages, max_tokens: 50, ...body }),
  });
}

/** One job run to the end (the model's first), so that a scheduler consumes its queue before a test's short deadlines. */
async function warmUp(model: string): Promise<void> {
  const res = await chat({ model });
  assert.equal(res.status, 200, await res.text());
}

async function jobsOf(model: string): Promise<Array<{ id: string; status: string; charged_micro: number | null; completion_tokens: number | null }>> {
  const r = await stack.db.query<{ id: string; status: string; charged_micro: number | null; completion_tokens: number | null }>(
    `SELECT id, status, charged_micro, completion_tokens FROM jobs WHERE model = $1 ORDER BY created_at`,
    [model],
  );
  return r.rows;
}

test('an attempt cut by the client\'s deadline is the client\'s outcome: the job expires, the slow honest node is not blamed nor cooled down (item 4)', () =>
  check(async () => {
    const model = 'test/trust-deadline';
    await stack.model(model);
    // Slower than the clients will wait, and as many failures as the cooldown rule needs.
    const node = await stack.node({ models: [model], latencyMs: 4_000, capacity: stack.config.NODE_COOLDOWN_FAILURES });
    await warmUp(model);
    const answers = await Promise.all(
      Array.from({ length: stack.config.NODE_COOLDOWN_FAILURES }, () => chat({ model }, { 'x-resultity-deadline-ms': '1000' })),
    );
    for (const a of answers) assert.equal(a.status, 504, await a.text());
    const jobs = await stack.until('the jobs to end', async () => {
      const rows = (await jobsOf(model)).slice(1);
      return rows.every((j) => j.status !== 'queued' && j.status !== 'running') ? rows : undefined;
    });
    assert.deepEqual(jobs.map((j) => j.status), jobs.map(() => 'expired'));
    const blamed = await stack.db.query(
      `SELECT outcome FROM job_attempts WHERE job_id = ANY($1::uuid[]) AND outcome IN ('failed', 'timeout', 'invalid_result')`,
      [jobs.map((j) => j.id)],
    );
    assert.deepEqual(blamed.rows, [], 'no attempt cut by the deadline may count against the node');
    const flags = await stack.db.query<{ cooldown_until: Date | null }>(`SELECT cooldown_until FROM node_flags WHERE node_id = $1`, [node.nodeId]);
    assert.ok(!flags.rows[0]?.cooldown_until || flags.rows[0].cooldown_until.getTime() < Date.now(), 'the node must not be in cooldown');
    // And it still gets work: a client that waits long enough is served by it.
    const served = await chat({ model });
    assert.equal(served.status, 200, await served.text());
  }));
