// The baseline: BullMQ's bare add -> process -> complete cycle on the same Redis, driven by the same
// closed loop as the backbone. Each of `concurrency` loops adds a job and waits until BullMQ reports it
// completed through QueueEvents (the Redis event stream, as Job.waitUntilFinished does), then adds the
// next; a Worker with the same concurrency runs a no-op processor. Everything lives under a unique key
// prefix, obliterated and swept afterwards.
import { deleteKeysByPrefix } from '../src/redis/client.js';
import { randomBytes } from 'node:crypto';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { closedLoop, type LoadOptions, type LoadResult } from './load.js';

export const BULLMQ_REDIS = { host: '127.0.0.1', port: 6379 };
const QUEUE_NAME = 'bench';

export interface BullRun {
  result: LoadResult;
  prefix: string;
}

export async function runBullmq(load: LoadOptions): Promise<BullRun> {
  const prefix = `rt_bench_bull_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  // Each BullMQ object opens its own connections (the worker two: one of them blocking).
  const connection = { ...BULLMQ_REDIS, maxRetriesPerRequest: null };
  const queue = new Queue(QUEUE_NAME, {
    connection,
    prefix,
    // Bare: no retries, and a completed job is deleted at once (its `completed` event still carries it).
    defaultJobOptions: { removeOnComplete: true, removeOnFail: true, attempts: 1 },
  });
  const events = new QueueEvents(QUEUE_NAME, { connection, prefix });
  const worker = new Worker(QUEUE_NAME, async () => ({ ok: true }), { connection, prefix, concurrency: load.concurrency });
  const waiting = new Map<string, { resolve: () => void; reject: (err: Error) => void }>();
  events.on('completed', ({ jobId }) => {
    const w = waiting.get(jobId);
    waiting.delete(jobId);
    w?.resolve();
  });
  events.on('failed', ({ jobId, failedReason }) => {
    const w = waiting.get(jobId);
    waiting.delete(jobId);
    w?.reject(new Error(`job failed: ${failedReason}`));
  });
  worker.on('error', (err) => process.stderr.write(`bullmq worker error: ${err.message}\n`));

  try {
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady(), worker.waitUntilReady()]);
    const result = await closedLoop(load, (i, _worker, signal) => {
      // Register before adding, under our own id: the completion can never arrive unheard.
      const jobId = `j${i}`;
      const done = new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          waiting.delete(jobId);
          reject(new Error('no completion event before the drain time ended'));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        const settle = (fn: () => void) => {
          signal.removeEventListener('abort', onAbort);
          fn();
        };
        waiting.set(jobId, { resolve: () => settle(resolve), reject: (err) => settle(() => reject(err)) });
      });
      return queue
        .add('job', { i, messages: [{ role: 'user', content: `bench request ${i}` }] }, { jobId })
        .then(
          () => done,
          (err: unknown) => {
            waiting.delete(jobId);
            throw err;
          },
        );
    });
    return { result, prefix };
  } finally {
    await worker.close();
    await events.close();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    await sweepPrefix(prefix);
  }
}

/** Deletes every key under `prefix:` (obliterate leaves the events stream and meta keys). */
async function sweepPrefix(prefix: string): Promise<void> {
  const redis = new Redis({ ...BULLMQ_REDIS, lazyConnect: true });
  await redis.connect();
  try {
    await deleteKeysByPrefix(redis, `${prefix}:`);
  } finally {
    redis.disconnect();
  }
}
