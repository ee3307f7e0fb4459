// Per-API-key rate limiting: a token bucket in Redis, so the limit holds across every instance. The
// bucket refills at `rate` tokens per second up to `burst`; the script reads Redis's clock, not the
// caller's, so instances with skewed clocks agree.
import type { Redis } from 'ioredis';
import { LuaScript, type RedisKeys } from './client.js';

/**
 * ARGV: key, rate (tokens/s), burst, touch key. Returns {allowed (0|1), retryAfterMs, touch (0|1)}: touch
 * is 1 at most once a minute per touch key (the caller then records the API key's last use), so that a
 * request's authentication costs this one command.
 */
const TAKE = new LuaScript(`
local key, rate, burst, touchKey = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', key, 'tokens', 'at')
local tokens, at = tonumber(b[1]), tonumber(b[2])
if not tokens then tokens, at = burst, now end
tokens = math.min(burst, tokens + (now - at) * rate / 1000)
local allowed, wait = 0, 0
if tokens >= 1 then
  tokens, allowed = tokens - 1, 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', key, 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', key, math.ceil(burst * 1000 / rate) + 1000)
local touch = 0
if allowed == 1 and redis.call('SET', touchKey, '1', 'EX', 60, 'NX') then touch = 1 end
return {allowed, wait, touch}
`);

export class RateLimitRepository {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  /** Takes a token from the key's bucket; `touch`: record the key's last use now (once a minute per key). */
  async take(keyId: string, ratePerSecond: number, burst: number): Promise<{ allowed: boolean; retryAfterMs: number; touch: boolean }> {
    const [allowed, wait, touch] = (await TAKE.run(this.redis, [this.keys.rateBucket(keyId), ratePerSecond, burst, this.keys.apiKeyTouched(keyId)])) as [
      number,
      number,
      number,
    ];
    return { allowed: allowed === 1, retryAfterMs: wait, touch: touch === 1 };
  }
}
