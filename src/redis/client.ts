// The Redis port. Every key is built by RedisKeys with the configured prefix, so that several networks
// or test runs can share one server. Redis holds only what can be rebuilt (see DESIGN.md, invariant 5).
//
// One server (`redis://` / `rediss://`) or a Redis Cluster (`redis+cluster://` / `rediss+cluster://`
// with the addresses of some of its nodes): createRedis makes an ioredis Redis or Cluster from the URL,
// and the rest of the backbone uses either through RedisClient, the commands both answer. On a cluster,
// pub/sub is sharded (SPUBLISH/SSUBSCRIBE, Redis 7): see PubSub below.
import { createHash } from 'node:crypto';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { instrumentRedis } from './instrument.js';
import { parseRedisUrl } from './redis-url.js';

/** A connection to one server or to a cluster: what every repository here takes. */
export type RedisClient = Redis | Cluster;

/** True for a cluster client: its pub/sub is sharded, its keys are routed by slot. */
export function isCluster(redis: RedisClient): redis is Cluster {
  return redis.isCluster;
}

/**
 * A Redis connection (or a cluster client) from a REDIS_URL. `subscriber`: the connection will be put in
 * subscribe mode (it can then run nothing else, so it does not pipeline); on a cluster it subscribes
 * through one connection per master (sharded pub/sub).
 */
export function createRedis(url: string, name: string, opts: { subscriber?: boolean } = {}): RedisClient {
  const target = parseRedisUrl(url);
  const common: RedisOptions = {
    connectionName: `resultity:${name}`,
    // Commands issued while reconnecting wait instead of failing at once; a bounded retry keeps a request
    // from hanging forever on a dead server.
    maxRetriesPerRequest: 3,
    enableOfflineQueue: true,
    // ioredis's default, stated: a command must not wait for Nagle's algorithm.
    noDelay: true,
  };
  // Commands issued in the same tick of the event loop (concurrent requests' rate-limit checks, results'
  // completions) leave in one write, and their replies come back in one read: a socket write costs
  // about as much as the command itself, so under load this halves what Redis costs the process. Each
  // command is still its own command (and counted as one); nothing waits for a batch to fill. A cluster
  // client batches per node.
  const enableAutoPipelining = opts.subscriber !== true;
  const redis: RedisClient =
    target.kind === 'server'
      ? new Redis(target.url, { ...common, lazyConnect: false, enableAutoPipelining })
      : new Cluster(target.nodes, {
          enableAutoPipelining,
          enableOfflineQueue: true,
          shardedSubscribers: opts.subscriber === true,
          redisOptions: { ...common, username: target.username, password: target.password, ...(target.tls ? { tls: {} } : {}) },
        });
  // Commands counted for GET /metrics, by this client's name.
  instrumentRedis(redis, name);
  return redis;
}

/**
 * Deletes every key that starts with `prefix` (SCAN and DEL in pages, never KEYS; on a cluster, on every
 * master, each key by itself since a page spans slots); returns how many were. For dropping a test's or a
 * benchmark's keys, or everything a network prefix holds.
 */
export async function deleteKeysByPrefix(redis: RedisClient, prefix: string): Promise<number> {
  if (!isCluster(redis)) return deleteOnServer(redis, prefix, (keys) => redis.del(...keys));
  let deleted = 0;
  for (const node of redis.nodes('master')) {
    deleted += await deleteOnServer(node, prefix, async (keys) => {
      const p = node.pipeline();
      for (const k of keys) p.del(k);
      return ((await p.exec()) ?? []).reduce((n, [err, v]) => n + (err ? 0 : Number(v)), 0);
    });
  }
  return deleted;
}

async function deleteOnServer(redis: Redis, prefix: string, del: (keys: string[]) => Promise<number>): Promise<number> {
  let deleted = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) deleted += await del(keys);
  } while (cursor !== '0');
  return deleted;
}

/**
 * Every key name, under the configured prefix. Keys that one script call touches together share a hash
 * tag (the part in braces: Redis Cluster hashes only that), so that each call's keys land in one slot:
 *   <p>{live}:   node presence, readiness pools, the eligibility mirror, node flags, scores and earned slots,
 *                jobs' in-flight records and usage samples: the reservation scripts read and write them
 *                together atomically (readiness.lua.ts), so they are one slot, on one shard of a cluster;
 *   <p>{rl}:     rate-limit buckets and API-key touch marks (one request takes several buckets at once);
 *   <p>{uptime}: uptime bitmaps and their epoch sets;
 *   <p>...{<jobId>}: a streamed job's chunks and its wake-up channel (the append script publishes on it);
 * the rest (nonces, challenges, config digests) are each used alone, hashed by their full name, spread
 * over the cluster. Pub/sub channels are not keys, but on a cluster a channel is sharded like one
 * (pubsub.ts): those the scripts publish on carry the tag of the script's keys.
 */
export class RedisKeys {
  /** The live group's prefix: what the readiness scripts build their data-dependent key names from (ARGV[1]). */
  readonly live: string;
  private readonly limits: string;
  private readonly uptimeGroup: string;
  constructor(readonly prefix: string) {
    this.live = `${prefix}{live}:`;
    this.limits = `${prefix}{rl}:`;
    this.uptimeGroup = `${prefix}{uptime}:`;
  }
  node(nodeId: string): string {
    return `${this.live}node:${nodeId}`;
  }
  /** The job ids holding a slot on a node (readiness.lua.ts). */
  nodeSlots(nodeId: string): string {
    return `${this.live}node:${nodeId}:slots`;
  }
  /** A flagged node's mirror key (redis/node-flags.mirror.ts). */
  unroutable(nodeId: string): string {
    return `${this.live}unroutable:${nodeId}`;
  }
  /** A node's count of consecutive failed attempts (redis/node-flags.mirror.ts). */
  failureStreak(nodeId: string): string {
    return `${this.live}failstreak:${nodeId}`;
  }
  /** Hash of node id → score in [0, 1] (redis/scores.mirror.ts), read by reservations. */
  nodeScores(): string {
    return `${this.live}node-scores`;
  }
  /** Jobs each node completed (slow start; readiness.lua.ts). */
  nodeEarned(): string {
    return `${this.live}node-earned`;
  }
  /** The revision of the eligibility rules mirrored (redis/eligibility.mirror.ts). */
  eligibilityRevision(): string {
    return `${this.live}elig:revision`;
  }
  /** A model's mirrored requirements (readiness.lua.ts). */
  modelRequirements(model: string): string {
    return `${this.live}model-req:${model}`;
  }
  /** The set of the models mirrored. */
  modelRequirementsIndex(): string {
    return `${this.live}model-reqs`;
  }
  /** The set of the subclouds mirrored. */
  subclouds(): string {
    return `${this.live}subclouds`;
  }
  /** A subcloud's mirrored rules (readiness.lua.ts). */
  subcloud(name: string): string {
    return `${this.live}subcloud:${name}`;
  }
  /** A subcloud's member node ids. */
  subcloudMembers(name: string): string {
    return `${this.live}subcloud:${name}:members`;
  }
  /** Every key of the eligibility mirror matches one of these patterns (for tests that drop the mirror). */
  eligibilityMirrorPatterns(): string[] {
    return [`${this.live}subcloud*`, `${this.live}node-subclouds:*`, `${this.live}model-req*`];
  }
  /** Node ids by last heartbeat (readiness.lua.ts), for the status API. */
  onlineNodes(): string {
    return `${this.live}online`;
  }
  /** Claimed tokens and delivered bytes per node on a model (redis/usage-samples.repository.ts). */
  usageSample(model: string): string {
    return `${this.live}usage-sample:${model}`;
  }
  /** Hash of node id → the network config digest the node last reported (redis/node-config-digests.repository.ts). */
  nodeConfigDigests(): string {
    return `${this.prefix}node-config`;
  }
  /** Set for a minute after an API key's last use was recorded, so that it is recorded once a minute. */
  apiKeyTouched(keyId: string): string {
    return `${this.limits}apikey-touched:${keyId}`;
  }
  rateBucket(keyId: string): string {
    return `${this.limits}rl:${keyId}`;
  }
  /** A node's uptime bitmap for an epoch (redis/uptime.repository.ts). */
  uptimeBitmap(epoch: number, nodeId: string): string {
    return `${this.uptimeGroup}uptime:${epoch}:${nodeId}`;
  }
  /** The nodes seen in an epoch. */
  uptimeNodes(epoch: number): string {
    return `${this.uptimeGroup}uptime-nodes:${epoch}`;
  }
  /** The epochs with counts not yet written to PostgreSQL. */
  uptimeEpochs(): string {
    return `${this.uptimeGroup}uptime-epochs`;
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
  /** Pub/sub channel of job lifecycle events, heard by every instance (published by the live scripts). */
  jobEvents(): string {
    return `${this.live}events:jobs`;
  }
  /** Pub/sub channel announcing freed node capacity: the message is the node's models, comma-separated. */
  capacityEvents(): string {
    return `${this.live}events:capacity`;
  }
  /**
   * The chunks one attempt of a streamed job has sent so far, in order (a Redis Stream; redis/job-streams.ts).
   * The job id is its hash tag, shared with the job's wake-up channel: the append script publishes on it,
   * which on a cluster (SPUBLISH) must be in the script's slot.
   */
  jobStream(jobId: string, attempt: number): string {
    return `${this.prefix}stream:{${jobId}}:${attempt}`;
  }
  /** Pub/sub channel that wakes whoever relays a job's stream when a chunk is appended (the message is the attempt). */
  jobStreamWakeups(jobId: string): string {
    return `${this.prefix}events:stream:{${jobId}}`;
  }
  /** A job's in-flight record: its running attempt and node (redis/inflight.repository.ts). */
  job(jobId: string): string {
    return `${this.live}job:${jobId}`;
  }
  /** Pub/sub channel on which one io instance receives the jobs to hand to its nodes. */
  ioInstance(instanceId: string): string {
    return `${this.prefix}io:${instanceId}`;
  }
}

/**
 * A Lua script run by its SHA (EVALSHA), loaded on first use or after the server lost its script cache
 * (a restart or SCRIPT FLUSH answers NOSCRIPT). Every call declares its keys (KEYS[]): a cluster client
 * routes the call by them, and the server refuses a call whose keys span slots. Keys whose names depend on
 * data the script reads (readiness pools, the nodes found in one) cannot be declared before the call;
 * the readiness scripts build those from the live group's prefix, whose hash tag puts them in the slot of
 * the declared keys (the pattern BullMQ documents for Redis Cluster: one hash tag per prefix).
 *
 * A script publishes with `redis.call(PUBLISH, channel, message)`: PUBLISH is a local the script is run
 * with, 'PUBLISH' on one server and 'SPUBLISH' on a cluster (pubsub.ts), where the channel must hash to
 * the script's slot like a key.
 */
export class LuaScript {
  private readonly variants: Record<'server' | 'cluster', { source: string; sha: string }>;
  constructor(source: string) {
    const variant = (command: string) => {
      const text = `local PUBLISH = '${command}'\n${source}`;
      return { source: text, sha: createHash('sha1').update(text).digest('hex') };
    };
    this.variants = { server: variant('PUBLISH'), cluster: variant('SPUBLISH') };
  }
  async run(redis: RedisClient, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    if (keys.length === 0) throw new Error('a script call must declare at least one key (Redis Cluster routes by them)');
    const { source, sha } = this.variants[isCluster(redis) ? 'cluster' : 'server'];
    try {
      return await redis.evalsha(sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('NOSCRIPT')) return redis.eval(source, keys.length, ...keys, ...args);
      throw err;
    }
  }
}
