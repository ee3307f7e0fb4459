// Which network config each node runs: the digest it reports in its heartbeats, kept in one Redis hash
// (node id → digest, '' for none), so that the admin can see who is behind. Written by the gateway only
// when a session's reported digest changes (and at registration), so a steady fleet costs no writes.
// Entries of nodes that left stay until they come back; readers only look at nodes online now (the
// <p>online index the presence scripts keep). Live state: lost with Redis, rewritten as nodes register
// again.
import type { RedisKeys, RedisClient } from './client.js';

export class NodeConfigDigests {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  async record(nodeId: string, digest: string | null): Promise<void> {
    await this.redis.hset(this.keys.nodeConfigDigests(), nodeId, digest ?? '');
  }

  /** For each node seen within `ttlMs`, the digest it reported (null: none, or not known). */
  async online(ttlMs: number): Promise<Map<string, string | null>> {
    const ids = await this.redis.zrangebyscore(this.keys.onlineNodes(), Date.now() - ttlMs, '+inf');
    if (ids.length === 0) return new Map();
    const digests = await this.redis.hmget(this.keys.nodeConfigDigests(), ...ids);
    return new Map(ids.map((id, i) => [id, digests[i] || null]));
  }
}
