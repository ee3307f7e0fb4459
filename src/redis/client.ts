// The Redis port. Every key is built by RedisKeys with the configured prefix, so that several networks
// or test runs can share one server. Redis holds only what can be rebuilt (see DESIGN.md, invariant 5).
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { countRedis } from '../metrics/engine-metrics.js';

/** The Redis connection type, for code outside this folder that passes one along (the composition root). */
export type RedisClient = Redis;

/**
 * A Redis connection. `subscriber`: the connection will be put in subscribe mode (it can then run nothing
 * else, so it does not pipeline).
 */
export function createRedis(url: string, name: string, opts: { subscriber?: boolean } = {}): Redis {
  const redis = new Redis(url, {
    connectionName: `resultity:${name}`,
    // Commands issued while reconnecting wait instead of failing at once; a bounded retry keeps a request
    // from hanging forever on a dead server.
    maxRetriesPerRequest: 3,
    enableOfflineQueue: true,
    lazyConnect: false,
    // ioredis's default, stated: a command must not wait for Nagle's algorithm.
    noDelay: true,
    // Commands issued in the same tick of the event loop (concurrent requests' rate-limit checks, results'
    // completions) leave in one write, and their replies come back in one read: a socket write costs
    // about as much as the command itself, so under load this halves what Redis costs the process. Each
    // command is still its own command (and counted as one); nothing waits for a batch to fill.
    enableAutoPipelining: opts.subscriber !== true,
  });
  // Commands counted for GET /metrics, by this client's name.
  countRedis(redis, name);
  return redis;
}

/**
 * Deletes every key that starts with `prefix` (SCAN and DEL in pages, never KEYS); returns how many were.
 * For dropping a test's or a benchmark's keys, or everything a network prefix holds.
 */
export async function deleteKeysByPrefix(redis: Redis, prefix: string): Promise<number> {
  let deleted = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

export class RedisKeys {
  constructor(readonly prefix: string) {}
  node(nodeId: string): string {
    return `${this.prefix}node:${nodeId}`;
  }
  /** A flagged node's mirror key (redis/node-flags.mirror.ts). */
  unroutable(nodeId: string): string {
    return `${this.prefix}unroutable:${nodeId}`;
  }
  /** A node's count of consecutive failed attempts (redis/node-flags.mirror.ts). */
  failureStreak(nodeId: string): string {
    return `${this.prefix}failstreak:${nodeId}`;
  }
  /** Hash of node id → score in [0, 1] (redis/scores.mirror.ts), read by reservations. */
  nodeScores(): string {
    return `${this.prefix}node-scores`;
  }
  /** Jobs each node completed (slow start; readiness.lua.ts). */
  nodeEarned(): string {
    return `${this.prefix}node-earned`;
  }
  /** The revision of the eligibility rules mirrored (redis/eligibility.mirror.ts). */
  eligibilityRevision(): string {
    return `${this.prefix}elig:revision`;
  }
  /** Node ids by last heartbeat (readiness.lua.ts), for the status API. */
  onlineNodes(): string {
    return `${this.prefix}online`;
  }
  /** Hash of node id → the network config digest the node last reported (redis/node-config-digests.repository.ts). */
  nodeConfigDigests(): string {
    return `${this.prefix}node-config`;
  }
  /** Set for a minute after an API key's last use was recorded, so that it is recorded once a minute. */
  apiKeyTouched(keyId: string): string {
    return `${this.prefix}apikey-touched:${keyId}`;
  }
  rateBucket(keyId: string): string {
    return `${this.prefix}rl:${keyId}`;
  }
  nonce(nodeId: string, nonce: string): string {
    return `${this.prefix}nonce:${nodeId}:${nonce}`;
  }
  challenge(challenge: string): string {
    return `${this.prefix}challenge:${challenge}`;
  }
  /** A Sign-In with Ethereum nonce issued and not used yet (redis/siwe-nonces.repository.ts). */
  siweNonce(nonce: string): string {
    return `${this.prefix}siwe-nonce:${nonce}`;
  }
  /** Pub/sub channel of job lifecycle events, heard by every instance. */
  jobEvents(): string {
    return `${this.prefix}events:jobs`;
  }
  /** Pub/sub channel announcing freed node capacity: the message is the node's models, comma-separated. */
  capacityEvents(): string {
    return `${this.prefix}events:capacity`;
  }
  /** The chunks one attempt of a streamed job has sent so far, in order (a Redis Stream; redis/job-streams.ts). */
  jobStream(jobId: string, attempt: number): string {
    return `${this.prefix}stream:${jobId}:${attempt}`;
  }
  /** Pub/sub channel that wakes whoever relays a job's stream when a chunk is appended (the message is the attempt). */
  jobStreamWakeups(jobId: string): string {
    return `${this.prefix}events:stream:${jobId}`;
  }
  /** A job's in-flight record: its running attempt and node (redis/inflight.repository.ts). */
  job(jobId: string): string {
    return `${this.prefix}job:${jobId}`;
  }
  /** Pub/sub channel on which one io instance receives the jobs to hand to its nodes. */
  ioInstance(instanceId: string): string {
    return `${this.prefix}io:${instanceId}`;
  }
}

/**
 * A Lua script run by its SHA (EVALSHA), loaded on first use or after the server lost its script cache
 * (a restart or SCRIPT FLUSH answers NOSCRIPT).
 */
export class LuaScript {
  private readonly sha: string;
  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }
  async run(redis: Redis, args: ReadonlyArray<string | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, 0, ...args);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('NOSCRIPT')) return redis.eval(this.source, 0, ...args);
      throw err;
    }
  }
}
