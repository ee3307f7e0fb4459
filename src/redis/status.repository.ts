// Read-only views of node presence for the public status API (see readiness.lua.ts for the key layout).
// Pipelined reads, not a Lua script: a snapshot needs no atomicity (it is a picture of a moving fleet,
// cached for a second), and a long script would block Redis for every other client while it walks a
// large fleet, where pipelined commands interleave with theirs.
//
// The fleet is read from <p>online (every node by last heartbeat) and each node's presence hash; an
// entry whose presence expired is skipped. Nothing here writes.
import type { RedisKeys, RedisClient } from './client.js';
import { NETWORKS, type Network } from '../domain/eligibility.js';

/** Live nodes serving one model (or a network's total), and their slots. */
export interface Load {
  onlineNodes: number;
  /** Sum of those nodes' capacities. */
  capacity: number;
  /** Slots in use on those nodes: per node, max(reservations, its reported running count), at most its capacity. */
  inUse: number;
}

export interface NetworkLoad {
  /** Over distinct nodes serving at least one catalogue model: a node serving several counts once. */
  total: Load;
  /** Per catalogue model: the nodes that could be given it (its current version, GPU memory >= its floor). */
  byModel: Map<string, Load>;
  /** Node counts per declared region (null: undeclared) and per GPU class. */
  byRegion: Map<string | null, number>;
  byGpu: Map<string, number>;
}

/** What the catalogue asks of a node for each model. */
export interface ModelRequirement {
  name: string;
  version: string;
  minGpuMemoryMb: number;
}

/** Node ids read per pipeline: bounds the memory of one round trip on a large fleet. */
const NODE_BATCH = 500;

interface NodeState {
  network: string;
  region: string | null;
  gpu: string;
  gpuMemoryMb: number;
  capacity: number;
  inUse: number;
  /** 'name@version' */
  models: Set<string>;
}

export class StatusRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  /** The load of every network (both always present), counted against the catalogue's requirements. */
  async fleetLoad(models: readonly ModelRequirement[]): Promise<Map<Network, NetworkLoad>> {
    const result = new Map<Network, NetworkLoad>();
    for (const network of NETWORKS) {
      result.set(network, { total: emptyLoad(), byModel: new Map(models.map((m) => [m.name, emptyLoad()])), byRegion: new Map(), byGpu: new Map() });
    }
    // The catalogue entry each node-declared 'name@version' counts for, and the GPU floor it needs.
    const wanted = new Map(models.map((m) => [`${m.name}@${m.version}`, m]));
    for (const n of await this.liveNodes()) {
      const load = result.get(n.network as Network);
      if (!load) continue;
      let serving = false;
      for (const mv of n.models) {
        const m = wanted.get(mv);
        if (!m || n.gpuMemoryMb < m.minGpuMemoryMb) continue;
        add(load.byModel.get(m.name)!, n);
        serving = true;
      }
      if (!serving) continue;
      add(load.total, n);
      load.byRegion.set(n.region, (load.byRegion.get(n.region) ?? 0) + 1);
      load.byGpu.set(n.gpu, (load.byGpu.get(n.gpu) ?? 0) + 1);
    }
    return result;
  }

  private async liveNodes(): Promise<NodeState[]> {
    const ids = await this.redis.zrange(this.keys.onlineNodes(), 0, -1);
    const nodes: NodeState[] = [];
    for (let i = 0; i < ids.length; i += NODE_BATCH) {
      const batch = ids.slice(i, i + NODE_BATCH);
      const p = this.redis.pipeline();
      for (const id of batch) {
        const key = this.keys.node(id);
        p.hmget(key, 'capacity', 'reported', 'models', 'network', 'region', 'gpu', 'gpu_mem');
        p.zcard(`${key}:slots`);
      }
      const replies = unwrap<unknown>(await p.exec());
      batch.forEach((_id, j) => {
        const [cap, reported, csv, network, region, gpu, gpuMem] = replies[2 * j] as Array<string | null>;
        const capacity = Number(cap);
        if (cap == null || network == null || !Number.isFinite(capacity)) return; // presence expired: not live
        const used = Math.max(Number(replies[2 * j + 1]) || 0, Number(reported) || 0);
        nodes.push({
          network,
          region: region ? region : null,
          gpu: gpu ?? 'none',
          gpuMemoryMb: Number(gpuMem) || 0,
          capacity,
          inUse: Math.min(used, capacity),
          models: new Set((csv ?? '').split(',').filter(Boolean)),
        });
      });
    }
    return nodes;
  }
}

function emptyLoad(): Load {
  return { onlineNodes: 0, capacity: 0, inUse: 0 };
}

function add(load: Load, n: NodeState): void {
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
