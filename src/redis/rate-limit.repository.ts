// Rate limiting: token buckets in Redis, so that limits hold across every instance. A bucket refills at
// `rate` tokens per second up to `burst`; the script reads Redis's clock, not the caller's, so instances
// with skewed clocks agree. A request may draw on several buckets at once (its API key's and its
// account's): it takes a token from each or from none, in one command.
import { LuaScript, type RedisKeys, type RedisClient } from './client.js';

/**
 * KEYS: the touch key, then each bucket's key (all in the {rl} group: one slot). ARGV: (rate (tokens/s),
 * burst) for each bucket. Returns {allowed (0|1),
 * retryAfterMs, touch (0|1)}: allowed when every bucket has a token (one is then taken from each);
 * retryAfterMs, when refused, is the longest wait among the buckets short of one. touch is 1 at most
 * once a minute per touch key (the caller then records the API key's last use), so that a request's
 * authentication costs this one command.
 */
const TAKE = new LuaScript(`
local touchKey = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS - 1
local levels = {}
local wait = 0
for i = 1, n do
  local key, rate, burst = KEYS[i + 1], tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local b = redis.call('HMGET', key, 'tokens', 'at')
  local tokens, at = tonumber(b[1]), tonumber(b[2])
  if not tokens then tokens, at = burst, now end
  tokens = math.min(burst, tokens + (now - at) * rate / 1000)
  if tokens < 1 then wait = math.max(wait, math.ceil((1 - tokens) * 1000 / rate)) end
  levels[i] = tokens
end
local allowed = 0
if wait == 0 then allowed = 1 end
for i = 1, n do
  local key, rate, burst = KEYS[i + 1], tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  redis.call('HSET', key, 'tokens', tostring(levels[i] - allowed), 'at', now)
  redis.call('PEXPIRE', key, math.ceil(burst * 1000 / rate) + 1000)
end
local touch = 0
if allowed == 1 and redis.call('SET', touchKey, '1', 'EX', 60, 'NX') then touch = 1 end
return {allowed, wait, touch}
`);

export interface Bucket {
  /** The bucket's name: an API key's id, `account:<id>`, `signin-ip:<address>`... */
  id: string;
  ratePerSecond: number;
  burst: number;
}

export interface Taken {
  allowed: boolean;
  retryAfterMs: number;
  /** Record the API key's last use now (once a minute per key). */
  touch: boolean;
}

export class RateLimitRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  /** Takes a token from one bucket; `touch`: record the key's last use now (once a minute per key). */
  take(keyId: string, ratePerSecond: number, burst: number): Promise<Taken> {
    return this.takeAll(keyId, [{ id: keyId, ratePerSecond, burst }]);
  }

  /** Takes a token from every bucket, or from none when one is empty; `touchId` names the API key to touch. */
  async takeAll(touchId: string, buckets: readonly Bucket[]): Promise<Taken> {
    const keys = [this.keys.apiKeyTouched(touchId), ...buckets.map((b) => this.keys.rateBucket(b.id))];
    const args = buckets.flatMap((b) => [b.ratePerSecond, b.burst]);
    const [allowed, wait, touch] = (await TAKE.run(this.redis, keys, args)) as [number, number, number];
    return { allowed: allowed === 1, retryAfterMs: wait, touch: touch === 1 };
  }
}
