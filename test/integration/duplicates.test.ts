// Duplicate queue messages (an outbox republish after a lost markPublished, a publisher retry after a
// lost confirm) are normal in an at-least-once system. The job must still run once: one attempt, one
// charge, and no attempt cancelled by the duplicate's scheduler.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Connection } from 'rabbitmq-client';
import { TestStack, TEST_MODEL } from '../helpers/stack.js';

let stack: TestStack;

before(async () => {
  stack = await TestStack.start();
  await stack.model();
  await stack.node({ latencyMs: 600 });
  await stack.node({ latencyMs: 600 });
});

after(async () => {
  await stack.close();
});

test('the same job published three times runs once and is charged once', () =>
  stack.check(async () => {
    const tenant = await stack.tenant(5);
    const res = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json', prefer: 'respond-async' },
      body: JSON.stringify({ model: TEST_MODEL, messages: [{ role: 'user', content: 'once, please' }], max_tokens: 20 }),
    });
    assert.equal(res.status, 202);
    const { id } = (await res.json()) as { id: string };

    const rabbit = new Connection({ url: stack.config.RABBITMQ_URL, retryLow: 100, retryHigh: 500 });
    const pub = rabbit.createPublisher({ confirm: true });
    for (let i = 0; i < 2; i++) {
      await pub.send({ exchange: `${stack.config.RABBITMQ_PREFIX}.jobs`, routingKey: `${TEST_MODEL}.standard`, mandatory: true, durable: true, messageId: id }, { jobId: id });
    }
    await pub.close();
    await rabbit.close();

    const done = await stack.until('the job to complete', async () => ((await stack.job(id))?.status === 'completed' ? true : undefined), 20_000);
    assert.ok(done);
    // Let the duplicates' schedulers finish whatever they would do.
    await new Promise((r) => setTimeout(r, 1_000));
    const attempts = await stack.db.query<{ attempt: number; outcome: string }>(`SELECT attempt, outcome FROM job_attempts WHERE job_id = $1 ORDER BY attempt`, [id]);
    assert.deepEqual(attempts.rows, [{ attempt: 1, outcome: 'completed' }]);
    const captures = await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ledger_transactions WHERE job_id = $1 AND kind = 'capture'`, [id]);
    assert.equal(captures.rows[0]?.n, 1);
    // Both nodes' slots are free again.
    for (const n of stack.nodes) assert.equal((await stack.presence(n.nodeId)).reserved, '0');
  }));
