// Invariant 5: losing Redis loses no data. Every key of this stack's prefix is deleted while jobs are in
// flight (what FLUSHALL does to this network, without touching the other test files sharing the
// server): nodes re-register on their next heartbeat, queued jobs wait in RabbitMQ, in-flight jobs
// finish, and every accepted job reaches exactly one terminal state with the ledger balanced.
import { deleteKeysByPrefix } from '../../src/redis/client.js';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { TestStack, TEST_MODEL } from '../helpers/stack.js';

let stack: TestStack;

before(async () => {
  stack = await TestStack.start({ config: { HEARTBEAT_TTL_MS: 3000, NO_NODE_GRACE_MS: 10_000 } });
  await stack.model();
  await stack.node({ latencyMs: 300, capacity: 2 });
  await stack.node({ latencyMs: 300, capacity: 2 });
});

after(async () => {
  await stack.close();
});

async function flushPrefix(prefix: string): Promise<number> {
  const redis = new Redis(stack.config.REDIS_URL);
  try {
    return await deleteKeysByPrefix(redis, prefix);
  } finally {
    redis.disconnect();
  }
}

test('Redis loses everything mid-load: every accepted job still completes, charged once', () =>
  stack.check(async () => {
    const tenant = await stack.tenant(10);
    const submit = async () => {
      const res = await fetch(`${stack.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json', prefer: 'respond-async' },
        body: JSON.stringify({ model: TEST_MODEL, messages: [{ role: 'user', content: 'hello' }], max_tokens: 20 }),
      });
      assert.equal(res.status, 202);
      return ((await res.json()) as { id: string }).id;
    };
    const ids = await Promise.all(Array.from({ length: 16 }, submit));
    // Some jobs are running on the nodes, the rest wait in RabbitMQ: now lose Redis.
    await stack.until('a job to be running', async () => ((await stack.job(ids[0]!))?.status === 'running' ? true : undefined));
    const deleted = await flushPrefix(stack.config.REDIS_KEY_PREFIX);
    assert.ok(deleted > 0, 'the flush removed live state');

    const final = await stack.until(
      'every job to reach a terminal state',
      async () => {
        const r = await stack.db.query<{ status: string }>(`SELECT status FROM jobs WHERE id = ANY($1::uuid[])`, [ids]);
        return r.rows.every((x) => ['completed', 'failed', 'expired'].includes(x.status)) ? r.rows : undefined;
      },
      30_000,
    );
    assert.equal(final.length, ids.length);
    const notCompleted = await stack.db.query(`SELECT id, status, error_code, attempt FROM jobs WHERE id = ANY($1::uuid[]) AND status <> 'completed'`, [ids]);
    assert.deepEqual(notCompleted.rows, [], 'every job completed');
    const captures = await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ledger_transactions WHERE kind = 'capture' AND job_id = ANY($1::uuid[])`, [ids]);
    assert.equal(captures.rows[0]?.n, ids.length);
    assert.equal((await stack.balance(tenant.namespaceId)).held, 0);
    // The nodes are back in rotation (by their next heartbeat, at most a heartbeat interval away; the
    // prefix flush above is not atomic, so allow two) and a new synchronous request is served.
    await stack.until(
      'the model to be served again',
      async () => ((await tenant.client.models.list()).data.some((m) => (m as unknown as { resultity: { available: boolean } }).resultity.available) ? true : undefined),
      3_000,
    );
    const r = await tenant.client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: 'user', content: 'again' }], max_tokens: 5 });
    assert.equal(r.object, 'chat.completion');
  }));
