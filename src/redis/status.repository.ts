// Read-only views of node presence for the public status API (see presence.repository.ts for the key
// layout). Pipelined reads, not a Lua script: a snapshot needs no atomicity (it is a picture of a moving
// fleet, cached for a second), and a long script would block Redis for every other client while it
// walks a large fleet, where pipelined commands interleave with theirs.
//
// Nothing here writes: stale readiness entries (their node's presence expired) are skipped, and left for
// the reservation scripts to remove as they meet them.
import type { Redis } from 'ioredis';
import type { RedisKeys } from './client.js';

/** Live nodes serving one model, and their slots. */
export interface ModelLoad {
  /** Nodes whose presence is live and which still advertise the model. */
  onlineNodes: number;
  /** Sum of those nodes' capacities. */
  capacity: number;
  /** Slots in use on those nodes: per node, max(reservations, its reported running count), at most its capacity. */
  inUse: number;
}

export interface FleetLoad {
  byModel: Map<string, ModelLoad>;
  /** The same figures over distinct nodes: a node serving several models counts once. */
  total: ModelLoad;
}

/** Node ids read per pipeline: bounds the memory of one round trip on a large fleet. */
const NODE_BATCH = 500;

interface NodeState {
  capacity: number;
  inUse: number;
  models: Set<string>;
}

export class StatusRepository {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async fleetLoad(models: readonly string[]): Promise<FleetLoad> {
    const members = new Map<string, string[]>();
    if (models.length > 0) {
      const p = this.redis.pipeline();
      for (const m of models) p.zrange(this.keys.ready(m), 0, -1);
      const replies = unwrap<string[]>(await p.exec());
      models.forEach((m, i) => members.set(m, replies[i] ?? []));
    }

    const ids = [...new Set([...members.values()].flat())];
    const nodes = new Map<string, NodeState>();
    for (let i = 0; i < ids.length; i += NODE_BATCH) {
      const batch = ids.slice(i, i + NODE_BATCH);
      const p = this.redis.pipeline();
      for (const id of batch) {
        const key = this.keys.node(id);
        p.hmget(key, 'capacity', 'reported', 'models');
        p.zcard(`${key}:slots`);
      }
      const replies = unwrap<unknown>(await p.exec());
      batch.forEach((id, j) => {
        const [cap, reported, csv] = replies[2 * j] as Array<string | null>;
        const capacity = Number(cap);
        if (cap == null || !Number.isFinite(capacity)) return; // presence expired: not live
        const used = Math.max(Number(replies[2 * j + 1]) || 0, Number(reported) || 0);
        nodes.set(id, { capacity, inUse: Math.min(used, capacity), models: new Set((csv ?? '').split(',').filter(Boolean)) });
      });
    }

    const byModel = new Map<string, ModelLoad>();
    const counted = new Set<string>();
    const total: ModelLoad = { onlineNodes: 0, capacity: 0, inUse: 0 };
    for (const m of models) {
      const load: ModelLoad = { onlineNodes: 0, capacity: 0, inUse: 0 };
      for (const id of members.get(m) ?? []) {
        const n = nodes.get(id);
        // A readiness entry can outlive the node's interest in the model: a node whose presence expired
        // and that came back with other models leaves its old entries behind. Count what it advertises.
        if (!n || !n.models.has(m)) continue;
        add(load, n);
        if (!counted.has(id)) {
          counted.add(id);
          add(total, n);
        }
      }
      byModel.set(m, load);
    }
    return { byModel, total };
  }
}

function add(load: ModelLoad, n: NodeState): void {
  load.onlineNodes += 1;
  load.capacity += n.capacity;
  load.inUse += n.inUse;
}

/** The replies of a pipeline, or its first error. */
function unwrap<T>(results: Array<[Error | null, unknown]> | null): T[] {
  if (!results) throw new Error('redis pipeline was not executed');
  return results.map(([err, value]) => {
    if (err) throw err;
    return value as T;
  });
}
