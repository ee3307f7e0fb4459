// Node uptime per RCP epoch, counted from heartbeats: one bit per uptime slot per node per epoch.
//   <p>uptime:<epoch>:<node>   bitmap of the slots in which the node was seen
//   <p>uptime-nodes:<epoch>    set of the nodes seen in the epoch
//   <p>uptime-epochs           set of the epochs with counts not yet written to PostgreSQL
import type { Redis } from 'ioredis';
import { LuaScript, type RedisKeys } from './client.js';

/**
 * Marks a node seen in a slot of an epoch: one command per heartbeat (a MULTI of the five writes was
 * seven, and every node sends a heartbeat every few seconds).
 * ARGV: bitmap key, epoch's nodes key, epochs key, slot, node, epoch, ttl seconds.
 */
const MARK_SEEN = new LuaScript(`
local bitmap, nodes, epochs, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[7])
redis.call('SETBIT', bitmap, tonumber(ARGV[4]), 1)
redis.call('EXPIRE', bitmap, ttl)
redis.call('SADD', nodes, ARGV[5])
redis.call('EXPIRE', nodes, ttl)
redis.call('SADD', epochs, ARGV[6])
return 1
`);

export class UptimeRepository {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    /** Counts are kept this long after their epoch began: long enough for a closing epoch to be read. */
    private readonly ttlSeconds: number,
  ) {}

  async markSeen(nodeId: string, epoch: number, slot: number): Promise<void> {
    const p = this.keys.prefix;
    await MARK_SEEN.run(this.redis, [`${p}uptime:${epoch}:${nodeId}`, `${p}uptime-nodes:${epoch}`, `${p}uptime-epochs`, slot, nodeId, epoch, this.ttlSeconds]);
  }

  /** Epochs before `current` whose counts are waiting to be written. */
  async closedEpochs(current: number): Promise<number[]> {
    const all = await this.redis.smembers(`${this.keys.prefix}uptime-epochs`);
    return all.map(Number).filter((e) => e < current);
  }

  /** Slots up per node in an epoch. */
  async readEpoch(epoch: number): Promise<Array<{ nodeId: string; slots: number }>> {
    const p = this.keys.prefix;
    const nodes = await this.redis.smembers(`${p}uptime-nodes:${epoch}`);
    const out: Array<{ nodeId: string; slots: number }> = [];
    for (const nodeId of nodes) out.push({ nodeId, slots: await this.redis.bitcount(`${p}uptime:${epoch}:${nodeId}`) });
    return out;
  }

  /** Forgets an epoch once its counts are in PostgreSQL. */
  async forget(epoch: number, nodeIds: readonly string[]): Promise<void> {
    const p = this.keys.prefix;
    await this.redis.del(`${p}uptime-nodes:${epoch}`, ...nodeIds.map((n) => `${p}uptime:${epoch}:${n}`));
    await this.redis.srem(`${p}uptime-epochs`, String(epoch));
  }
}
