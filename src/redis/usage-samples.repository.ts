// Usage samples: per model, each node's claimed completion tokens and delivered output bytes, summed over
// its completed jobs (added by the completion script, inflight.repository.ts COMPLETED, in the same round
// trip). The quality pass compares each node's tokens per byte with its peers' (domain/usage-bounds.ts
// usageDrift). Live statistics, not records: a sample lost with Redis is rebuilt by the next jobs.
//
// Key layout: <p>usage-sample:<model>  hash  '<node>|t' → tokens, '<node>|b' → bytes
//   TTL: USAGE_SAMPLE_TTL_MS after the model's last completion.
import type { RedisKeys, RedisClient } from './client.js';
import type { UsageSample } from '../domain/usage-bounds.js';

/** A model's samples outlive its last completion by a day. */
export const USAGE_SAMPLE_TTL_MS = 24 * 3_600_000;

export class UsageSamples {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  async ofModel(model: string): Promise<UsageSample[]> {
    const hash = await this.redis.hgetall(this.keys.usageSample(model));
    const byNode = new Map<string, UsageSample>();
    for (const [field, value] of Object.entries(hash)) {
      const [nodeId, kind] = field.split('|');
      if (!nodeId || (kind !== 't' && kind !== 'b')) continue;
      const s = byNode.get(nodeId) ?? { nodeId, tokens: 0, bytes: 0 };
      if (kind === 't') s.tokens = Number(value);
      else s.bytes = Number(value);
      byNode.set(nodeId, s);
    }
    return [...byNode.values()];
  }

}
