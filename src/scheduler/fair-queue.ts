// The order in which jobs waiting for a node get one: fair between priority classes by weight, and fair
// between namespaces within a class, so that
//   - urgent work overtakes bulk work without starving it (weights 8:4:2:1, src/domain/priority.ts), and
//   - a namespace that floods the queue gets one turn in its class's rotation like any other namespace:
//     a quiet namespace's job waits for at most one job of each other waiting namespace, not for the
//     flood's whole backlog.
//
// Both levels use stride scheduling (Waldspurger & Weihl, 1995): every class (and every namespace within a
// class) has a "pass"; the one with the lowest pass goes next and its pass grows by 1/weight. A class or
// namespace that was idle starts at the current virtual time (the pass of the last one served), so idling
// earns no credit to burst with later. Within a namespace jobs go in arrival order; a retried job keeps its
// arrival time and so its place at the front.
//
// This is an in-memory structure of one scheduler process: it orders the jobs that RabbitMQ has delivered
// to this process (each class's queue keeps a window of them unacked here; src/rabbitmq/job-queue.ts).
// With N schedulers each orders its own window; the broker spreads new jobs across them.
import { PRIORITY_CLASSES, PRIORITY_WEIGHTS, type PriorityClass } from '../domain/priority.js';

export interface FairEntry {
  jobId: string;
  namespaceId: string;
  priority: PriorityClass;
  /** Arrival order within the namespace (the job's creation time, in ms). */
  arrivedAt: number;
}

interface NamespaceLane<T> {
  pass: number;
  /** Sorted by (arrivedAt, jobId). */
  entries: T[];
}

class ClassLane<T extends FairEntry> {
  readonly namespaces = new Map<string, NamespaceLane<T>>();
  /** The pass of the namespace served last: where an idle namespace starts again. */
  virtualTime = 0;
  size = 0;
  pass = 0;

  constructor(readonly weight: number) {}
}

function before(a: FairEntry, b: FairEntry): boolean {
  return a.arrivedAt < b.arrivedAt || (a.arrivedAt === b.arrivedAt && a.jobId < b.jobId);
}

export class FairQueue<T extends FairEntry> {
  private readonly lanes = new Map<PriorityClass, ClassLane<T>>(PRIORITY_CLASSES.map((c) => [c, new ClassLane<T>(PRIORITY_WEIGHTS[c])]));
  /** The pass of the class served last. */
  private virtualTime = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(e: T): void {
    const lane = this.lane(e.priority);
    if (lane.size === 0) lane.pass = Math.max(lane.pass, this.virtualTime);
    let ns = lane.namespaces.get(e.namespaceId);
    if (!ns) lane.namespaces.set(e.namespaceId, (ns = { pass: lane.virtualTime, entries: [] }));
    else if (ns.entries.length === 0) ns.pass = Math.max(ns.pass, lane.virtualTime);
    // Binary search for the insertion point: arrivals are nearly always at the end, retries at the front.
    let lo = 0;
    let hi = ns.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (before(ns.entries[mid]!, e)) lo = mid + 1;
      else hi = mid;
    }
    ns.entries.splice(lo, 0, e);
    lane.size++;
    this.count++;
  }

  has(e: T): boolean {
    return this.lanes.get(e.priority)?.namespaces.get(e.namespaceId)?.entries.includes(e) ?? false;
  }

  /** Removes an entry without charging anyone (it left: timed out, or its scheduler is stopping). */
  remove(e: T): boolean {
    const lane = this.lane(e.priority);
    const ns = lane.namespaces.get(e.namespaceId);
    const i = ns ? ns.entries.indexOf(e) : -1;
    if (!ns || i < 0) return false;
    ns.entries.splice(i, 1);
    lane.size--;
    this.count--;
    this.forgetIfIdle(lane, e.namespaceId, ns);
    return true;
  }

  /**
   * Removes an entry that got a node and charges its class and namespace one turn. Usually the entry is
   * the first in order(); when the first could not be placed (no free node suits it), a later one may go.
   */
  taken(e: T): void {
    const lane = this.lane(e.priority);
    const ns = lane.namespaces.get(e.namespaceId);
    const i = ns ? ns.entries.indexOf(e) : -1;
    if (!ns || i < 0) return;
    ns.entries.splice(i, 1);
    lane.size--;
    this.count--;
    this.virtualTime = lane.pass;
    lane.pass += 1 / lane.weight;
    lane.virtualTime = ns.pass;
    ns.pass += 1;
    for (const [id, other] of lane.namespaces) this.forgetIfIdle(lane, id, other);
  }

  /**
   * Entries in the order they should be offered a free node, without changing any state: a simulation of
   * successive take()s. Lazy, because the first entry is nearly always the one served.
   */
  *order(): Generator<T> {
    const classPass = new Map<PriorityClass, number>();
    const served = new Map<NamespaceLane<T>, number>();
    const nsPass = new Map<NamespaceLane<T>, number>();
    const classLeft = new Map<PriorityClass, number>();
    for (const [c, lane] of this.lanes) {
      classPass.set(c, lane.pass);
      classLeft.set(c, lane.size);
    }
    for (;;) {
      let cls: PriorityClass | null = null;
      for (const c of PRIORITY_CLASSES) {
        if ((classLeft.get(c) ?? 0) > 0 && (cls === null || classPass.get(c)! < classPass.get(cls)!)) cls = c;
      }
      if (cls === null) return;
      const lane = this.lane(cls);
      let best: NamespaceLane<T> | null = null;
      for (const ns of lane.namespaces.values()) {
        if ((served.get(ns) ?? 0) >= ns.entries.length) continue;
        if (best === null || (nsPass.get(ns) ?? ns.pass) < (nsPass.get(best) ?? best.pass)) best = ns;
      }
      if (best === null) return; // unreachable while the counts agree; never loop forever
      const k = served.get(best) ?? 0;
      served.set(best, k + 1);
      nsPass.set(best, (nsPass.get(best) ?? best.pass) + 1);
      classPass.set(cls, classPass.get(cls)! + 1 / lane.weight);
      classLeft.set(cls, classLeft.get(cls)! - 1);
      const entry = best.entries[k];
      if (entry === undefined) return; // the queue changed while the caller awaited between entries
      yield entry;
    }
  }

  /** Every entry, in no particular order (for shutting down). */
  all(): T[] {
    return [...this.lanes.values()].flatMap((lane) => [...lane.namespaces.values()].flatMap((ns) => ns.entries));
  }

  private lane(c: PriorityClass): ClassLane<T> {
    return this.lanes.get(c)!;
  }

  /** An idle namespace keeps its pass only while it is ahead of the lane's clock (it would restart there anyway). */
  private forgetIfIdle(lane: ClassLane<T>, namespaceId: string, ns: NamespaceLane<T>): void {
    if (ns.entries.length === 0 && ns.pass <= lane.virtualTime) lane.namespaces.delete(namespaceId);
  }
}
