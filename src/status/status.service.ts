// The public status snapshot (issue 4, part 9): what the network serves and how loaded it is, with
// nothing private in it: no node ids or addresses, no namespaces, keys, jobs or engine key names. Only
// aggregate counts per model and over the network.
//
// Sources, read together once per snapshot:
//   models          PostgreSQL, the catalogue (listModels): names, current versions, GPU floors
//   nodes, slots    Redis presence: the nodes of <p>online whose node:<id> presence is live
//   queued          RabbitMQ, ready messages in the model's queue (passive declare)
//   waiting         PostgreSQL (unfinished jobs) less the slots in use: accepted jobs not running yet
//   jobs_last_minute PostgreSQL, jobs finished in the last 60 s
//
// A node counts for a model when it could be given the model's jobs by what it declares: the model at
// the catalogue's current version, GPU memory at least the model's floor (subclouds aside: a status page
// shows the network, not who may use which part of it). Networks are reported apart (`networks`), as
// their nodes never serve each other's jobs; `nodes` and `models` sum both networks, with the queues
// (which are per model).
//
// Public and cached: a snapshot is computed at most once per `ttlMs` per instance, and callers that
// arrive while one is being computed share it, so that any request rate costs the engines one snapshot
// a second per instance. A failed computation is not cached: the next call tries again.
//
// Cost, for operators of a large network: the Redis reads walk the online nodes' presence hashes
// (pipelined, batched), and the last-minute query probes the jobs_finished index of each day partition.
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { ModelRow } from '../postgres/models.repository.js';
import type { RecentJobStats } from '../postgres/status.repository.js';
import type { StatusRepository, Load, NetworkLoad } from '../redis/status.repository.js';
import { NETWORKS, type Network } from '../domain/eligibility.js';
import type { QueueDepth } from '../rabbitmq/queue-depth.js';
import type { JobQueue } from '../rabbitmq/job-queue.js';
import type { SnapshotRow } from '../postgres/snapshots.repository.js';
import { PRIORITY_CLASSES } from '../domain/priority.js';
import type { FleetReading } from '../metrics/fleet.js';

/** The window of `jobs_last_minute`. */
export const STATUS_WINDOW_SECONDS = 60;

export interface ModelStatus {
  /** The model's name, as in /v1/models. */
  id: string;
  /** Nodes online serving the model (presence live, model advertised). */
  online_nodes: number;
  /**
   * Sum of the capacities (concurrent jobs) of those nodes. A node serving several models counts toward
   * each of them, so these do not add up across models: `nodes` has the network's totals.
   */
  capacity: number;
  /** Slots in use on those nodes (reserved by a scheduler or reported running by the node). */
  in_use: number;
  /** capacity - in_use: slots free for new jobs right now. */
  free: number;
  /** Messages ready in the model's RabbitMQ queue; null when the broker could not be asked. */
  queued: number | null;
  /**
   * Accepted jobs not running yet: those `queued` in RabbitMQ, plus those a scheduler has taken and holds
   * until a node frees a slot (RabbitMQ counts those as delivered, not queued), plus retries between attempts.
   * This is the model's backlog: its unfinished jobs less its slots in use (a node serving several models
   * counts its slots in use under each, so on such fleets this undercounts).
   */
  waiting: number;
}

/** Nodes and slots, as a whole or for one model. */
export interface SlotCounts {
  online_nodes: number;
  capacity: number;
  in_use: number;
  free: number;
}

/** One network's fleet: its nodes never serve the other network's jobs. */
export interface NetworkStatus {
  network: Network;
  /** Distinct online nodes serving at least one model of the catalogue. */
  nodes: SlotCounts;
  /** Those nodes per declared region (null: undeclared) and per GPU class, sorted by name. */
  by_region: Array<{ region: string | null; online_nodes: number }>;
  by_gpu: Array<{ gpu: string; online_nodes: number }>;
  /** Every catalogue model, with the nodes of this network that could be given it and their slots. */
  models: Array<{ id: string } & SlotCounts>;
}

export interface StatusSnapshot {
  /** When this snapshot was computed (ISO 8601); it is served unchanged for up to a second. */
  generated_at: string;
  /** Distinct online nodes serving at least one model of the catalogue, their capacity and slots in use. */
  nodes: { online: number; capacity: number; in_use: number };
  models: ModelStatus[];
  /** Per network (mainnet first, both always present). */
  networks: NetworkStatus[];
  jobs_last_minute: {
    completed: number;
    failed: number;
    expired: number;
    /** Jobs that reached a terminal state (any) in the window, per second. */
    requests_per_second: number;
    /** Submission to completion of the completed jobs; null when none completed in the window. */
    latency_ms: { p50: number | null; p99: number | null };
  };
  /** The newest snapshot of the network's history (src/snapshots/): anyone can fetch it by CID and verify it. */
  latest_snapshot: { cid: string; kind: string; day: string | null; created_at: string } | null;
}

/**
 * What the snapshot reads from PostgreSQL (postgres/status.store.ts; in memory: test/fakes/status.store.ts):
 * aggregates only, besides the catalogue and the newest history snapshot.
 */
export interface StatusStore {
  /** The catalogue, by name. */
  listModels(): Promise<Array<Pick<ModelRow, 'name' | 'version' | 'min_gpu_memory_mb'>>>;
  /** Unfinished jobs per model. */
  waitingJobsByModel(): Promise<Map<string, number>>;
  /** Jobs that reached a terminal state in the last `windowSeconds`, and the completed ones' latencies. */
  recentJobStats(windowSeconds: number): Promise<RecentJobStats>;
  latestSnapshot(): Promise<SnapshotRow | null>;
}

/** The fleet's presence, slots and load (Redis: redis/status.repository.ts). */
export type StatusFleetPort = Pick<StatusRepository, 'fleetLoad'>;
/** Ready messages per queue (RabbitMQ: rabbitmq/queue-depth.ts). */
export type QueueDepthPort = Pick<QueueDepth, 'connected' | 'messageCounts'>;

export interface StatusServiceDeps {
  store: StatusStore;
  nodes: StatusFleetPort;
  depth: QueueDepthPort;
  /** Names each model's queue. */
  queue: Pick<JobQueue, 'queuesFor'>;
  logger: Pick<Logger, 'warn'>;
  /** How long a snapshot is served before the next is computed (default 1000 ms). */
  ttlMs?: number;
}

export class StatusService {
  private readonly ttlMs: number;
  private cached: { snapshot: StatusSnapshot; expiresAt: number } | null = null;
  private inFlight: Promise<StatusSnapshot> | null = null;

  constructor(private readonly d: StatusServiceDeps) {
    this.ttlMs = d.ttlMs ?? 1_000;
  }

  /** The current snapshot: the cached one while fresh, else the one being computed, else a new one. */
  snapshot(): Promise<StatusSnapshot> {
    const cached = this.cached;
    if (cached && performance.now() < cached.expiresAt) return Promise.resolve(cached.snapshot);
    this.inFlight ??= this.compute()
      .then((snapshot) => {
        this.cached = { snapshot, expiresAt: performance.now() + this.ttlMs };
        return snapshot;
      })
      .finally(() => {
        this.inFlight = null;
      });
    return this.inFlight;
  }

  /**
   * What GET /metrics exports of the fleet (metrics/fleet.ts): each model's online nodes and free slots
   * from the snapshot (cached: a scrape costs nothing more), and its ready messages per priority class
   * (one passive declare per queue; null while the broker is away).
   */
  async fleetReading(): Promise<FleetReading> {
    const snapshot = await this.snapshot();
    const models = snapshot.models.map((m) => m.id);
    let byQueue: Map<string, number> | null = null;
    if (this.d.depth.connected) {
      try {
        byQueue = await this.d.depth.messageCounts(models.flatMap((m) => this.d.queue.queuesFor(m)));
      } catch (err) {
        this.d.logger.warn({ err }, 'metrics: queue depths unavailable');
      }
    }
    return {
      models: snapshot.models.map((m) => ({
        model: m.id,
        onlineNodes: m.online_nodes,
        freeSlots: m.free,
        // queuesFor names a model's queues in PRIORITY_CLASSES order, one per class.
        queued: byQueue && this.d.queue.queuesFor(m.id).map((q, i) => ({ priority: PRIORITY_CLASSES[i] ?? 'other', ready: byQueue.get(q) ?? 0 })),
      })),
    };
  }

  private async compute(): Promise<StatusSnapshot> {
    const generatedAt = new Date();
    const { store } = this.d;
    const catalogue = await store.listModels();
    const models = catalogue.map((m) => m.name);
    const [fleet, queued, waiting, recent, snapshot] = await Promise.all([
      this.d.nodes.fleetLoad(catalogue.map((m) => ({ name: m.name, version: m.version, minGpuMemoryMb: m.min_gpu_memory_mb }))),
      this.queueDepths(models),
      store.waitingJobsByModel(),
      store.recentJobStats(STATUS_WINDOW_SECONDS),
      store.latestSnapshot(),
    ]);
    const finished = recent.completed + recent.failed + recent.expired + recent.cancelled;
    const networks = NETWORKS.map((n) => fleet.get(n)!);
    const total = sumLoads(networks.map((n) => n.total));
    return {
      generated_at: generatedAt.toISOString(),
      nodes: { online: total.onlineNodes, capacity: total.capacity, in_use: total.inUse },
      models: models.map((id) => ({
        id,
        ...slotCounts(sumLoads(networks.map((n) => n.byModel.get(id)!))),
        queued: queued ? (queued.get(id) ?? 0) : null,
        // Unfinished jobs less the slots in use serving the model: those not running.
        waiting: Math.max(0, (waiting.get(id) ?? 0) - sumLoads(networks.map((n) => n.byModel.get(id)!)).inUse),
      })),
      networks: NETWORKS.map((network) => networkStatus(network, fleet.get(network)!, models)),
      jobs_last_minute: {
        completed: recent.completed,
        failed: recent.failed,
        expired: recent.expired,
        requests_per_second: Math.round((finished / STATUS_WINDOW_SECONDS) * 1000) / 1000,
        latency_ms: { p50: roundMs(recent.p50Ms), p99: roundMs(recent.p99Ms) },
      },
      latest_snapshot: snapshot && { cid: snapshot.cid, kind: snapshot.kind, day: snapshot.day, created_at: snapshot.created_at.toISOString() },
    };
  }

  /**
   * Ready messages per model, or null while the broker is away: the rest of the snapshot (what a status
   * page is for during an outage) is still served. Not awaited when the connection is down, where
   * acquiring a channel would wait for the reconnect.
   */
  private async queueDepths(models: readonly string[]): Promise<Map<string, number> | null> {
    if (!this.d.depth.connected) return null;
    try {
      const byQueue = await this.d.depth.messageCounts(models.flatMap((m) => this.d.queue.queuesFor(m)));
      const depthOf = (m: string) => this.d.queue.queuesFor(m).reduce((sum, q) => sum + (byQueue.get(q) ?? 0), 0);
      return new Map(models.map((m) => [m, depthOf(m)]));
    } catch (err) {
      this.d.logger.warn({ err }, 'status: queue depths unavailable');
      return null;
    }
  }
}

function networkStatus(network: Network, load: NetworkLoad, models: readonly string[]): NetworkStatus {
  const byName = <K extends string | null>(a: [K, number], b: [K, number]) => String(a[0] ?? '').localeCompare(String(b[0] ?? ''));
  return {
    network,
    nodes: slotCounts(load.total),
    by_region: [...load.byRegion].sort(byName).map(([region, n]) => ({ region, online_nodes: n })),
    by_gpu: [...load.byGpu].sort(byName).map(([gpu, n]) => ({ gpu, online_nodes: n })),
    models: models.map((id) => ({ id, ...slotCounts(load.byModel.get(id)!) })),
  };
}

function slotCounts(l: Load): SlotCounts {
  return { online_nodes: l.onlineNodes, capacity: l.capacity, in_use: l.inUse, free: l.capacity - l.inUse };
}

/** Loads of the two networks added up (a node belongs to one network, so nothing counts twice). */
function sumLoads(loads: Load[]): Load {
  return loads.reduce((a, b) => ({ onlineNodes: a.onlineNodes + b.onlineNodes, capacity: a.capacity + b.capacity, inUse: a.inUse + b.inUse }), {
    onlineNodes: 0,
    capacity: 0,
    inUse: 0,
  });
}

function roundMs(ms: number | null): number | null {
  return ms === null ? null : Math.round(ms);
}
