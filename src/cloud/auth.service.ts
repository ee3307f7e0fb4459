// Authenticates a bearer API key (hash lookup, cached in Redis) and applies its rate limit (a token
// bucket in Redis shared by every instance).
import { errors } from '../errors.js';
import { hashApiKey, looksLikeApiKey } from '../domain/api-keys.js';
import type { Db } from '../postgres/db.js';
import { findActiveApiKeyByHash, touchApiKey } from '../postgres/api-keys.repository.js';
import type { ApiKeyCache, CachedKey } from '../redis/api-key-cache.repository.js';
import type { RateLimitRepository } from '../redis/rate-limit.repository.js';

export type Principal = CachedKey;

export class AuthService {
  constructor(
    private readonly d: { db: Db; cache: ApiKeyCache; rateLimits: RateLimitRepository; defaultRps: number; defaultBurst: number },
  ) {}

  async authenticate(authorization: string | undefined): Promise<Principal> {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!match?.[1]) throw errors.unauthenticated('You did not provide an API key. Send it as a bearer token: Authorization: Bearer <key>.');
    const secret = match[1];
    if (!looksLikeApiKey(secret)) throw errors.unauthenticated();
    const hashHex = hashApiKey(secret).toString('hex');
    const cached = await this.d.cache.get(hashHex);
    if (cached === 'revoked') throw errors.unauthenticated();
    let principal: Principal;
    if (cached) {
      principal = cached;
    } else {
      const row = await findActiveApiKeyByHash(this.d.db, Buffer.from(hashHex, 'hex'));
      if (!row) throw errors.unauthenticated();
      principal = {
        keyId: row.id,
        namespaceId: row.namespace_id,
        rateLimitRps: row.rate_limit_rps,
        rateLimitBurst: row.rate_limit_burst,
        monthlyCapMicro: row.monthly_cap_micro,
        expiresAt: row.expires_at?.getTime() ?? null,
      };
      await this.d.cache.set(hashHex, principal);
    }
    if (principal.expiresAt !== null && principal.expiresAt <= Date.now()) throw errors.unauthenticated('This API key has expired.');
    if (await this.d.cache.shouldTouch(principal.keyId)) {
      touchApiKey(this.d.db, principal.keyId).catch(() => undefined); // best effort: a missed touch costs nothing
    }
    return principal;
  }

  async enforceRateLimit(p: Principal): Promise<void> {
    const rps = p.rateLimitRps ?? this.d.defaultRps;
    const burst = p.rateLimitBurst ?? Math.max(rps, this.d.defaultBurst);
    const r = await this.d.rateLimits.take(p.keyId, rps, burst);
    if (!r.allowed) throw errors.rateLimited(Math.max(1, Math.ceil(r.retryAfterMs / 1000)));
  }
}
