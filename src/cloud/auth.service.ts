// Authenticates a bearer API key (by its SHA-256, from the in-process catalogue: catalog/catalog.service.ts,
// which every instance drops at once when the key changes) and applies its rate limits (token buckets in
// Redis shared by every instance: the key's own and its account's, so that minting keys does not
// multiply the limit; the same command says when to record the key's last use). One Redis command per
// request, and no PostgreSQL round trip once the key and its namespace are known.
//
// Degraded mode: the key itself never needs Redis (the catalogue reads PostgreSQL). While Redis is
// unreachable the limits are taken from in-process buckets (cloud/local-rate-limit.ts) instead of
// refusing the request; the switch is the client's connection state (redis/redis-health.ts), read in
// memory, so a healthy request pays no extra round trip, and the shared buckets are used again as soon
// as the connection is back.
import { errors } from '../errors.js';
import { hashApiKey, looksLikeApiKey, type ApiKeyPrincipal } from '../domain/api-keys.js';
import type { RateLimitRepository } from '../redis/rate-limit.repository.js';
import type { Catalog } from '../catalog/catalog.service.js';
import { isRedisUnreachable } from '../redis/redis-health.js';
import { LocalRateLimiter } from './local-rate-limit.js';
import type { Bucket, Taken } from '../redis/rate-limit.repository.js';
import { countDegraded } from '../metrics/degraded.js';

export type Principal = ApiKeyPrincipal;

/**
 * What the service writes to PostgreSQL: the port its fast tests fake (test/fakes/auth.store.ts); on the
 * engine it is postgres/auth.store.ts.
 */
export interface AuthStore {
  /** Records the key's last use (best effort: the caller does not wait for it). */
  touchApiKey(keyId: string): Promise<void>;
}

/** The catalogue's lookups the service makes (catalog/catalog.service.ts): from memory once known. */
export type AuthCatalog = Pick<Catalog, 'apiKey' | 'namespace'>;

/** The shared token buckets (redis/rate-limit.repository.ts): one command for every bucket of a request. */
export type RateLimitPort = Pick<RateLimitRepository, 'takeAll'>;

export class AuthService {
  constructor(
    private readonly d: {
      store: AuthStore;
      catalog: AuthCatalog;
      rateLimits: RateLimitPort;
      defaultRps: number;
      defaultBurst: number;
      /** Every key of one account together (ACCOUNT_RATE_LIMIT_RPS, ACCOUNT_RATE_LIMIT_BURST). */
      accountRps: number;
      accountBurst: number;
      /** Whether Redis is usable now (redis/redis-health.ts redisReady); absent: always tried. */
      redisReady?: () => boolean;
    },
  ) {}

  private readonly local = new LocalRateLimiter();

  async authenticate(authorization: string | undefined): Promise<Principal> {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!match?.[1]) throw errors.unauthenticated('You did not provide an API key. Send it as a bearer token: Authorization: Bearer <key>.');
    const secret = match[1];
    if (!looksLikeApiKey(secret)) throw errors.unauthenticated();
    const principal = await this.d.catalog.apiKey(hashApiKey(secret).toString('hex'));
    if (!principal) throw errors.unauthenticated();
    if (principal.expiresAt !== null && principal.expiresAt <= Date.now()) throw errors.unauthenticated('This API key has expired.');
    return principal;
  }

  async enforceRateLimit(p: Principal): Promise<void> {
    const rps = p.rateLimitRps ?? this.d.defaultRps;
    const burst = p.rateLimitBurst ?? Math.max(rps, this.d.defaultBurst);
    const ns = await this.d.catalog.namespace(p.namespaceId);
    if (!ns) throw errors.unauthenticated(); // a key whose namespace is gone
    const r = await this.take(p.keyId, [
      { id: p.keyId, ratePerSecond: rps, burst },
      { id: `account:${ns.account_id}`, ratePerSecond: this.d.accountRps, burst: this.d.accountBurst },
    ]);
    if (!r.allowed) throw errors.rateLimited(Math.max(1, Math.ceil(r.retryAfterMs / 1000)));
    if (r.touch) this.d.store.touchApiKey(p.keyId).catch(ignore); // best effort: a missed touch costs nothing
  }

  /** The shared buckets in Redis, or this process's own while Redis is unreachable. */
  private async take(touchId: string, buckets: readonly Bucket[]): Promise<Taken> {
    if (this.d.redisReady && !this.d.redisReady()) {
      countDegraded('rate_limit_local');
      return this.local.takeAll(buckets);
    }
    try {
      return await this.d.rateLimits.takeAll(touchId, buckets);
    } catch (err) {
      if (!isRedisUnreachable(err)) throw err;
      countDegraded('rate_limit_local');
      return this.local.takeAll(buckets);
    }
  }
}

function ignore(): void {}
