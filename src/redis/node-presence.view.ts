// Read-only view of given nodes' presence (see readiness.lua.ts for the key layout), for an operator's
// console: whether each node is online now, and what it declared in its last heartbeat. Pipelined reads,
// no script: a picture of a moving fleet needs no atomicity. Nothing here writes.
import type { RedisKeys, RedisClient } from './client.js';

export interface NodePresence {
  /** When the node's last registration or heartbeat was recorded. */
  seen_at: Date | null;
  network: string;
  region: string | null;
  gpu: string;
  gpu_memory_mb: number;
  capacity: number;
  /** Slots in use: max(reservations, the count the node reports), at most its capacity (as in /status). */
  in_use: number;
  /** 'name@version' as declared. */
  models: string[];
}

export class NodePresenceView {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  /** The live presence of each node; a node whose presence expired (offline) maps to null. */
  async read(nodeIds: readonly string[]): Promise<Map<string, NodePresence | null>> {
    const result = new Map<string, NodePresence | null>();
    if (nodeIds.length === 0) return result;
    const p = this.redis.pipeline();
    for (const id of nodeIds) {
      const key = this.keys.node(id);
      p.hmget(key, 'capacity', 'reported', 'models', 'network', 'region', 'gpu', 'gpu_mem', 'seen');
      p.zcard(`${key}:slots`);
    }
    const replies = await p.exec();
    if (!replies) throw new Error('redis pipeline was not executed');
    nodeIds.forEach((id, i) => {
      const [fieldsErr, fields] = replies[2 * i]!;
      const [slotsErr, slots] = replies[2 * i + 1]!;
      if (fieldsErr) throw fieldsErr;
      if (slotsErr) throw slotsErr;
      const [cap, reported, csv, network, region, gpu, gpuMem, seen] = fields as Array<string | null>;
      const capacity = Number(cap);
      if (cap == null || network == null || !Number.isFinite(capacity)) {
        result.set(id, null);
        return;
      }
      const used = Math.max(Number(slots) || 0, Number(reported) || 0);
      result.set(id, {
        seen_at: seen ? new Date(Number(seen)) : null,
        network,
        region: region ? region : null,
        gpu: gpu ?? 'none',
        gpu_memory_mb: Number(gpuMem) || 0,
        capacity,
        in_use: Math.min(used, capacity),
        models: (csv ?? '').split(',').filter(Boolean),
      });
    });
    return result;
  }
}
