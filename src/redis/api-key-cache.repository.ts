// A short-lived cache of API-key lookups (hash -> key id, namespace, limits), so authenticating a request
// does not cost a PostgreSQL round trip. Revocation deletes the entry, so a revoked key stops working at
// once on every instance; the TTL bounds staleness should a delete ever be missed.
import type { Redis } from 'ioredis';
import type { RedisKeys } from './client.js';

export interface CachedKey {
  keyId: string;
  namespaceId: string;
  rateLimitRps: number | null;
  rateLimitBurst: number | null;
}

export class ApiKeyCache {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly ttlSeconds = 60,
  ) {}

  async get(hashHex: string): Promise<CachedKey | null> {
    const raw = await this.redis.get(this.keys.apiKey(hashHex));
    return raw ? (JSON.parse(raw) as CachedKey) : null;
  }

  async set(hashHex: string, key: CachedKey): Promise<void> {
    await this.redis.set(this.keys.apiKey(hashHex), JSON.stringify(key), 'EX', this.ttlSeconds);
  }

  async evict(hashHex: string): Promise<void> {
    await this.redis.del(this.keys.apiKey(hashHex));
  }
}
