// Upgrading from the version with one queue per model (`<prefix>.jobs.<model>`) to queues per model and
// priority class: a job still waiting in the old queue is published again, with its ticket, by the first
// scheduler that starts, republished to its class's queue, and completes. No accepted job is stranded.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Connection } from 'rabbitmq-client';
import { createBackbone, type Backbone } from '../../src/app.js';
import { jobBucket } from '../../src/mongo/payload-buckets.js';
import { TestStack, TEST_MODEL } from '../helpers/stack.js';

let stack: TestStack;
let scheduler: Backbone | null = null;

before(async () => {
  // Everything but the scheduler, so that the job waits in a queue until the test starts one.
  stack = await TestStack.start({ roles: ['cloud', 'io', 'gate', 'maintenance', 'status'], config: { OUTBOX_REPUBLISH_AFTER_MS: 300 } });
  await stack.model();
  await stack.node();
});

after(async () => {
  await scheduler?.close();
  await stack.close();
});

test('a job left in the pre-priority queue of its model is republished to its class queue and completes', () =>
  stack.check(async () => {
    const tenant = await stack.tenant(5);
    const res = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json', prefer: 'respond-async' },
      body: JSON.stringify({ model: TEST_MODEL, messages: [{ role: 'user', content: 'from before the upgrade' }], max_tokens: 8 }),
    });
    assert.equal(res.status, 202);
    const { id } = (await res.json()) as { id: string };

    // As the old version left it: its input stored (written behind the accept), the message in the model's
    // single queue, none in the class queues.
    const inputs = stack.backbone.mongo.db.collection<{ _id: string }>(jobBucket('job_payloads', id, stack.config.PAYLOAD_RETENTION_HOURS));
    await stack.until('the input copy to be written', async () => ((await inputs.countDocuments({ _id: id })) === 1 ? true : undefined));
    const prefix = stack.config.RABBITMQ_PREFIX;
    const legacy = `${prefix}.jobs.${TEST_MODEL}`;
    const rabbit = new Connection({ url: stack.config.RABBITMQ_URL, retryLow: 100, retryHigh: 500 });
    const ch = await rabbit.acquire();
    try {
      await ch.queuePurge({ queue: `${prefix}.jobs.${TEST_MODEL}.standard` });
      await ch.queueDeclare({ queue: legacy, durable: true, arguments: { 'x-dead-letter-exchange': `${prefix}.quarantine`, 'x-max-priority': 3 } });
      const pub = rabbit.createPublisher({ confirm: true });
      await pub.send({ routingKey: legacy, durable: true, messageId: id }, { jobId: id });
      await pub.close();
      assert.equal((await ch.queueDeclare({ queue: legacy, passive: true })).messageCount, 1);

      scheduler = await createBackbone({ config: stack.config, roles: ['scheduler'], logger: pino({ level: 'warn' }), mongoUrl: stack.mongoUrl, migrate: false });
      await scheduler.listen();
      await stack.until('the job to complete', async () => ((await stack.job(id))?.status === 'completed' ? true : undefined), 20_000);
      await assert.rejects(ch.queueDeclare({ queue: legacy, passive: true }), /NOT_FOUND/, 'the old queue is emptied and deleted');
    } finally {
      await ch.close().catch(() => undefined);
      await rabbit.close();
    }
  }));
