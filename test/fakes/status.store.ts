// In-memory StatusStore, fleet and queue depths (status/status.service.ts) for the status service's fast
// tests. The fleet is a list of live nodes, counted per network as redis/status.repository.ts does (a node
// serves the models it is listed with: the version and GPU-floor checks are that repository's, tested on
// Redis); the queue depths are ready counts per queue name, with a broker that can be away.
import type { Load, ModelRequirement, NetworkLoad } from '../../src/redis/status.repository.js';
import type { RecentJobStats } from '../../src/postgres/status.repository.js';
import type { SnapshotRow } from '../../src/postgres/snapshots.repository.js';
import { NETWORKS, type Network } from '../../src/domain/eligibility.js';
import type { QueueDepthPort, StatusFleetPort, StatusStore } from '../../src/status/status.service.js';
import { FakeDatabase } from './fake-database.js';

const NO_RECENT_JOBS: RecentJobStats = { completed: 0, failed: 0, expired: 0, cancelled: 0, p50Ms: null, p99Ms: null };

export class FakeStatusStore implements StatusStore {
  readonly db = new FakeDatabase({
    models: [] as Array<{ name: string; version: string; min_gpu_memory_mb: number }>,
    /** model -> unfinished jobs */
    unfinished: new Map<string, number>(),
    recent: NO_RECENT_JOBS,
    snapshot: null as SnapshotRow | null,
  });

  addModel(name: string): void {
    this.db.state.models.push({ name, version: 'v1', min_gpu_memory_mb: 0 });
    this.db.state.models.sort((a, b) => a.name.localeCompare(b.name));
  }

  listModels() {
    this.db.call('listModels');
    return Promise.resolve(this.db.state.models.map((m) => ({ ...m })));
  }

  waitingJobsByModel(): Promise<Map<string, number>> {
    this.db.call('waitingJobsByModel');
    return Promise.resolve(new Map(this.db.state.unfinished));
  }

  recentJobStats(_windowSeconds: number): Promise<RecentJobStats> {
    this.db.call('recentJobStats');
    return Promise.resolve({ ...this.db.state.recent });
  }

  latestSnapshot(): Promise<SnapshotRow | null> {
    this.db.call('latestSnapshot');
    return Promise.resolve(this.db.state.snapshot && { ...this.db.state.snapshot });
  }
}

export interface FakeNode {
  id: string;
  network: Network;
  region: string | null;
  gpu: string;
  capacity: number;
  inUse: number;
  models: string[];
}

export class FakeFleet implements StatusFleetPort {
  readonly nodes: FakeNode[] = [];

  fleetLoad(models: readonly ModelRequirement[]): Promise<Map<Network, NetworkLoad>> {
    const zero = (): Load => ({ onlineNodes: 0, capacity: 0, inUse: 0 });
    const add = (l: Load, n: FakeNode) => Object.assign(l, { onlineNodes: l.onlineNodes + 1, capacity: l.capacity + n.capacity, inUse: l.inUse + Math.min(n.inUse, n.capacity) });
    const result = new Map<Network, NetworkLoad>();
    for (const network of NETWORKS) {
      const load: NetworkLoad = { total: zero(), byModel: new Map(models.map((m) => [m.name, zero()])), byRegion: new Map(), byGpu: new Map() };
      for (const n of this.nodes.filter((x) => x.network === network)) {
        const served = models.filter((m) => n.models.includes(m.name));
        if (served.length === 0) continue;
        add(load.total, n);
        for (const m of served) add(load.byModel.get(m.name)!, n);
        load.byRegion.set(n.region, (load.byRegion.get(n.region) ?? 0) + 1);
        load.byGpu.set(n.gpu, (load.byGpu.get(n.gpu) ?? 0) + 1);
      }
      result.set(network, load);
    }
    return Promise.resolve(result);
  }
}

export class FakeQueueDepth implements QueueDepthPort {
  connected = true;
  readonly ready = new Map<string, number>();
  asked = 0;
  failNext: Error | null = null;

  messageCounts(queues: readonly string[]): Promise<Map<string, number>> {
    this.asked++;
    const failure = this.failNext;
    this.failNext = null;
    if (failure) return Promise.reject(failure);
    return Promise.resolve(new Map(queues.map((q) => [q, this.ready.get(q) ?? 0])));
  }
}
