// The pre-flight check of `resultity serve` and the test command (cli/engines.ts): one connection, one
// PING, no retries.
import { Redis } from 'ioredis';

/** Resolves when Redis at `url` answers PING; rejects with the client's error otherwise. */
export async function reachRedis(url: string, timeoutMs: number): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: timeoutMs });
  redis.on('error', () => undefined); // the failed connect() reports it
  try {
    await redis.connect();
    await redis.ping();
  } finally {
    redis.disconnect();
  }
}
