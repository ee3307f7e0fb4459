// Whether Redis can be used right now, read from the client's own connection state (no round trip), and
// which errors mean "Redis is unreachable" rather than "Redis refused this command". The cloud role's
// degraded mode (cloud/auth.service.ts, cloud/inference.service.ts, cloud/routes.ts) keys off these two: a
// healthy request pays nothing for them, and a request made while Redis is down does not wait through
// ioredis's reconnect retries before falling back.
import type { RedisClient } from './client.js';

/** True while the client holds a ready connection; false while it reconnects or after it gave up. */
export function redisReady(redis: RedisClient): boolean {
  return redis.status === 'ready';
}

/**
 * A connection-level failure: the server is gone or the command gave up waiting for it (ioredis's
 * MaxRetriesPerRequestError, a closed connection, a refused or reset socket). A server's error reply
 * (WRONGTYPE, NOSCRIPT, OOM, CROSSSLOT...) is not one: that is a bug or a full server, and is reported as such.
 */
export function isRedisUnreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError' || err.name === 'ClusterAllFailedError') return true;
  const code = (err as Error & { code?: unknown }).code;
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'ETIMEDOUT') return true;
  // The last four: a cluster client with no node left to ask (it gave up on every one, or is closing).
  return /^Connection is closed|Stream isn't writeable|^connect ECONNREFUSED|^None of startup nodes is available|^Cluster is (disconnected|disconnecting|ended)|^Too many Cluster redirections/.test(err.message);
}

/**
 * Logs a client's connection lost and back, once each per outage, instead of ioredis's "Unhandled error
 * event" line for every reconnect attempt. The state itself is on /readyz and resultity_engine_up.
 */
export function logRedisState(redis: RedisClient, name: string, logger: { warn(o: object, m: string): void; info(o: object, m: string): void }): void {
  let lost = false;
  redis.on('error', (err: Error) => {
    if (lost) return;
    lost = true;
    logger.warn({ client: name, err: err.message }, 'Redis unreachable: serving in degraded mode until it returns');
  });
  redis.on('ready', () => {
    if (!lost) return;
    lost = false;
    logger.info({ client: name }, 'Redis connection back');
  });
}
