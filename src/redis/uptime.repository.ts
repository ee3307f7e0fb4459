// Node uptime per RCP epoch, counted from heartbeats: one bit per uptime slot per node per epoch.
//   <p>{uptime}:uptime:<epoch>:<node>   bitmap of the slots in which the node was seen
//   <p>{uptime}:uptime-nodes:<epoch>    set of the nodes seen in the epoch
//   <p>{uptime}:uptime-epochs           set of the epochs with counts not yet written to PostgreSQL
// (one hash tag: a heartbeat's script and an epoch's DEL touch several of them at once).
import { LuaScript, type RedisKeys, type RedisClient } from './client.js';

/**
 * Marks a node seen in a slot of an epoch: one command per heartbeat (a MULTI of the five writes was
 * seven, and every node sends a heartbeat every few seconds).
 * KEYS: bitmap key, epoch's nodes key, epochs key. ARGV: slot, node, epoch, ttl seconds.
 */
const MARK_SEEN = new LuaScript(`
local bitmap, nodes, epochs, ttl = KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[4])
redis.call('SETBIT', bitmap, tonumber(ARGV[1]), 1)
redis.call('EXPIRE', bitmap, ttl)
redis.call('SADD', nodes, ARGV[2])
redis.call('EXPIRE', nodes, ttl)
redis.call('SADD', epochs, ARGV[3])
return 1
`);

export class UptimeRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    /** Counts are kept this long after their epoch began: long enough for a closing epoch to be read. */
    private readonly ttlSeconds: number,
  ) {}

  async markSeen(nodeId: string, epoch: number, slot: number): Promise<void> {
    const k = this.keys;
    await MARK_SEEN.run(this.redis, [k.uptimeBitmap(epoch, nodeId), k.uptimeNodes(epoch), k.uptimeEpochs()], [slot, nodeId, epoch, this.ttlSeconds]);
  }

  /** Epochs before `current` whose counts are waiting to be written. */
  async closedEpochs(current: number): Promise<number[]> {
    const all = await this.redis.smembers(this.keys.uptimeEpochs());
    return all.map(Number).filter((e) => e < current);
  }

  /** Slots up per node in an epoch. */
  async readEpoch(epoch: number): Promise<Array<{ nodeId: string; slots: number }>> {
    const nodes = await this.redis.smembers(this.keys.uptimeNodes(epoch));
    const out: Array<{ nodeId: string; slots: number }> = [];
    for (const nodeId of nodes) out.push({ nodeId, slots: await this.redis.bitcount(this.keys.uptimeBitmap(epoch, nodeId)) });
    return out;
  }

  /** Forgets an epoch once its counts are in PostgreSQL. */
  async forget(epoch: number, nodeIds: readonly string[]): Promise<void> {
    await this.redis.del(this.keys.uptimeNodes(epoch), ...nodeIds.map((n) => this.keys.uptimeBitmap(epoch, n)));
    await this.redis.srem(this.keys.uptimeEpochs(), String(epoch));
  }
}
