// In-memory AuthStore and shared rate limits (cloud/auth.service.ts) for the service's fast tests.
import type { AuthStore, RateLimitPort } from '../../src/cloud/auth.service.js';
import type { Bucket, Taken } from '../../src/redis/rate-limit.repository.js';
import { FakeDatabase } from './fake-database.js';

export class FakeAuthStore implements AuthStore {
  readonly db = new FakeDatabase({ lastUsed: new Map<string, number>() });

  touchApiKey(keyId: string): Promise<void> {
    // A failure set by failNext rejects the promise, as the engine's would.
    return new Promise((resolve) => {
      this.db.call('touchApiKey');
      this.db.state.lastUsed.set(keyId, Date.now());
      resolve();
    });
  }
}

/**
 * The shared buckets as the service sees them: each call recorded, its answer the next one queued
 * (`answer`) or else allowed; `fail` makes the calls throw (Redis gone, or refusing the command).
 */
export class FakeRateLimits implements RateLimitPort {
  readonly calls: Array<{ touchId: string; buckets: readonly Bucket[] }> = [];
  private readonly answers: Taken[] = [];
  private failure: Error | null = null;

  answer(taken: Partial<Taken>): void {
    this.answers.push({ allowed: true, retryAfterMs: 0, touch: false, ...taken });
  }

  fail(err: Error | null): void {
    this.failure = err;
  }

  takeAll(touchId: string, buckets: readonly Bucket[]): Promise<Taken> {
    this.calls.push({ touchId, buckets });
    if (this.failure) return Promise.reject(this.failure);
    return Promise.resolve(this.answers.shift() ?? { allowed: true, retryAfterMs: 0, touch: false });
  }
}

/** An error as ioredis gives it once the connection is gone (redis/redis-health.ts isRedisUnreachable). */
export function redisUnreachable(): Error {
  return Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });
}
