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
  monthlyCapMicro: number | null;
  /** Milliseconds since the epoch; null: never expires. Checked at every use (the cache may outlive it). */
  expiresAt: number | null;
}

/** What revocation leaves in the cache: a tombstone that no later cache write can overwrite. */
const REVOKED = 'revoked';

export class ApiKeyCache {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly ttlSeconds = 60,
  ) {}

  /** The cached lookup; 'revoked' for a key revoked within the last TTL; null when nothing is cached. */
  async get(hashHex: string): Promise<CachedKey | 'revoked' | null> {
    const raw = await this.redis.get(this.keys.apiKey(hashHex));
    if (raw === REVOKED) return 'revoked';
    return raw ? (JSON.parse(raw) as CachedKey) : null;
  }

  /**
   * NX: never overwrites an entry, in particular not a revocation tombstone, so that a request that read
   * the key as active from PostgreSQL just before its revocation cannot cache it again just after.
   */
  async set(hashHex: string, key: CachedKey): Promise<void> {
    await this.redis.set(this.keys.apiKey(hashHex), JSON.stringify(key), 'EX', this.ttlSeconds, 'NX');
  }

  /** Replaces the cached lookup with a tombstone that outlives any lookup of the key still in flight. */
  async evict(hashHex: string): Promise<void> {
    await this.redis.set(this.keys.apiKey(hashHex), REVOKED, 'EX', this.ttlSeconds);
  }

  /** True at most once a minute per key: whether to record its last use now. */
  async shouldTouch(keyId: string): Promise<boolean> {
    return (await this.redis.set(this.keys.apiKeyTouched(keyId), '1', 'EX', 60, 'NX')) === 'OK';
  }
}
