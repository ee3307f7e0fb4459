// RabbitMQ quorum queues by configuration (issue 13, part 5): with RABBITMQ_QUEUE_TYPE=quorum the job
// queues and the quarantine are declared as quorum queues on the real broker (the machine's RabbitMQ,
// this stack's own queue prefix), and jobs flow end to end through them: synchronous, asynchronous and
// streamed, and a job whose deadline passes in its queue is dead-lettered to the quarantine by the broker
// (per-message TTL and dead-lettering on a quorum queue: RabbitMQ 3.10 or later).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { AMQPChannelError, Connection } from 'rabbitmq-client';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';
import { JobQueue } from '../../src/rabbitmq/job-queue.js';
import { connectRabbit } from '../../src/rabbitmq/client.js';

let stack: TestStack;
let tenant: Tenant;
let rabbit: Connection;

before(async () => {
  stack = await TestStack.start({ config: { RABBITMQ_QUEUE_TYPE: 'quorum' } });
  await stack.model();
  await stack.node({ capacity: 4 });
  tenant = await stack.tenant(10);
  rabbit = new Connection({ url: stack.config.RABBITMQ_URL, retryLow: 100, retryHigh: 200 });
});

after(async () => {
  await rabbit.close();
  await stack.close();
});

/** The broker's answer to declaring `queue` again with `args`: 'ok', or the refusal's text. */
async function redeclare(queue: string, args: Record<string, unknown>): Promise<string> {
  const ch = await rabbit.acquire();
  try {
    await ch.queueDeclare({ queue, durable: true, arguments: args });
    return 'ok';
  } catch (err) {
    if (err instanceof AMQPChannelError) return `${err.code}: ${err.message}`;
    throw err;
  } finally {
    await ch.close();
  }
}

test('jobs flow end to end through quorum queues: sync, async and streamed', () =>
  stack.check(async () => {
    const sync = await tenant.client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: 'user', content: 'quorum sync' }], max_tokens: 8 });
    assert.match(sync.choices[0]?.message.content ?? '', /^simulated answer/);

    const res = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json', prefer: 'respond-async' },
      body: JSON.stringify({ model: TEST_MODEL, messages: [{ role: 'user', content: 'quorum async' }], max_tokens: 8 }),
    });
    assert.equal(res.status, 202);
    const { id } = (await res.json()) as { id: string };
    const done = await stack.until('the async job to complete', async () => {
      const j = await stack.job(id);
      return j?.status === 'completed' ? j : undefined;
    });
    assert.ok((done.charged_micro ?? 0) > 0);

    let streamed = '';
    const stream = await tenant.client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: 'user', content: 'quorum stream' }], max_tokens: 8, stream: true });
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? '';
    assert.match(streamed, /^simulated answer/);
    assert.equal((await stack.balance(tenant.namespaceId)).held, 0);
  }));

test('the queues are quorum queues: the broker refuses to redeclare them as classic', () =>
  stack.check(async () => {
    const prefix = stack.config.RABBITMQ_PREFIX;
    const jobQueue = `${prefix}.jobs.${TEST_MODEL}.standard`;
    const deadLetter = { 'x-dead-letter-exchange': `${prefix}.quarantine` };
    assert.equal(await redeclare(jobQueue, { ...deadLetter, 'x-queue-type': 'quorum' }), 'ok');
    assert.match(await redeclare(jobQueue, { ...deadLetter, 'x-queue-type': 'classic' }), /PRECONDITION_FAILED.*x-queue-type/);
    assert.match(await redeclare(`${prefix}.quarantine`, { 'x-queue-type': 'classic', 'x-message-ttl': 7 * 24 * 3_600_000, 'x-max-length': 100_000 }), /PRECONDITION_FAILED.*x-queue-type/);
  }));

test('a process configured for classic queues on this quorum network refuses to start, and says why', () =>
  stack.check(async () => {
    const conn = connectRabbit(stack.config.RABBITMQ_URL, pino({ level: 'silent' }));
    const classic = new JobQueue(conn, stack.config.RABBITMQ_PREFIX, 'classic');
    try {
      await assert.rejects(classic.verifyTopology(), /another queue type than RABBITMQ_QUEUE_TYPE=classic.*RABBITMQ_PREFIX/);
    } finally {
      await classic.close();
      await conn.close();
    }
  }));

test('a job whose deadline passes in its quorum queue is dead-lettered to the quarantine by the broker', () =>
  stack.check(async () => {
    // A model no scheduler consumes (not in the catalogue): the message can only expire where it waits.
    const model = `quorum-idle-${randomUUID().slice(0, 8)}`;
    const conn = connectRabbit(stack.config.RABBITMQ_URL, pino({ level: 'silent' }));
    const queue = new JobQueue(conn, stack.config.RABBITMQ_PREFIX, 'quorum');
    const jobId = randomUUID();
    try {
      await queue.declareModel(model);
      await queue.publish({
        jobId,
        namespaceId: tenant.namespaceId,
        priority: 'standard',
        placement: { network: 'mainnet', model, region: null, subcloud: null },
        deadlineAt: Date.now() + 200,
        maxAttempts: 1,
        attemptTimeoutMs: null,
        terms: { holdMicro: 0, inputPriceMicro: 0, outputPriceMicro: 0, minChargeMicro: 0, surchargeBps: 0 },
        request: { messages: [{ role: 'user', content: 'too late' }], max_tokens: 8 },
      });
    } finally {
      await queue.close();
      await conn.close();
    }
    const ch = await rabbit.acquire();
    try {
      const dead = await stack.until('the expired message in the quarantine', async () => {
        for (let msg = await ch.basicGet({ queue: `${stack.config.RABBITMQ_PREFIX}.quarantine` }); msg; msg = await ch.basicGet({ queue: `${stack.config.RABBITMQ_PREFIX}.quarantine` })) {
          ch.basicAck({ deliveryTag: msg.deliveryTag });
          if ((msg.body as { jobId?: string } | null)?.jobId === jobId) return msg;
        }
        return undefined;
      });
      assert.equal(dead.headers?.['x-first-death-reason'], 'expired');
      assert.equal(dead.headers?.['x-first-death-queue'], `${stack.config.RABBITMQ_PREFIX}.jobs.${model}.standard`);
    } finally {
      await ch.close();
      const cleanup = await rabbit.acquire();
      for (const p of ['urgent', 'standard', 'bulk', 'test']) await cleanup.queueDelete({ queue: `${stack.config.RABBITMQ_PREFIX}.jobs.${model}.${p}` }).catch(() => undefined);
      await cleanup.close();
    }
  }));
