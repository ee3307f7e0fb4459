// The in-process stand-in for the Redis token buckets (redis/rate-limit.repository.ts), used only while
// Redis is unreachable, so that /v1 keeps serving with its limits still applied. Same rule as the Lua
// script (refill `rate` tokens per second up to `burst`, take one from every bucket or from none), on
// this process's clock. Each instance keeps its own buckets: with N cloud instances behind a balancer a
// key may get up to N times its limit while Redis is down, the price of not refusing everyone.
//
// Written here rather than taken from a library: the well-kept in-memory limiters (rate-limiter-flexible's
// RateLimiterMemory) count fixed windows, which would let a key burst twice its limit at a window's edge
// and answer differently from the shared buckets it stands in for.
import type { Bucket, Taken } from '../redis/rate-limit.repository.js';

interface Level {
  tokens: number;
  at: number;
}

export class LocalRateLimiter {
  private readonly buckets = new Map<string, Level>();

  /** `maxBuckets`: the memory bound; the least recently refilled bucket is forgotten first (it starts full again). */
  constructor(
    private readonly maxBuckets = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  takeAll(buckets: readonly Bucket[]): Taken {
    const now = this.now();
    let wait = 0;
    const levels = buckets.map((b) => {
      const prev = this.buckets.get(b.id);
      const tokens = prev ? Math.min(b.burst, prev.tokens + ((now - prev.at) * b.ratePerSecond) / 1000) : b.burst;
      if (tokens < 1) wait = Math.max(wait, Math.ceil(((1 - tokens) * 1000) / b.ratePerSecond));
      return tokens;
    });
    const allowed = wait === 0;
    buckets.forEach((b, i) => {
      // Re-inserted so that the Map's order is least recently used first.
      this.buckets.delete(b.id);
      this.buckets.set(b.id, { tokens: levels[i]! - (allowed ? 1 : 0), at: now });
    });
    while (this.buckets.size > this.maxBuckets) this.buckets.delete(this.buckets.keys().next().value!);
    // The key's last use is not recorded while Redis is down (touch needs its once-a-minute mark): it is
    // best effort already, and the next request after Redis returns records it.
    return { allowed, retryAfterMs: wait, touch: false };
  }

  get size(): number {
    return this.buckets.size;
  }
}
