// The fleet and its backlog, as gauges read at scrape time: ready messages per model and priority class
// (resultity_queue_depth), online nodes and free slots per model (resultity_nodes_online,
// resultity_free_slots). The process that serves the status API exports them (app.ts wires its reader):
// the figures are the network's, not the process's, so one exporting role is enough, and its cached
// snapshot keeps a scrape from costing the engines anything extra.
//
// Labels are bounded: a model label takes the catalogue's names, at most MAX_MODEL_LABELS of them (in
// the order the reader gives, the catalogue's); the rest are summed under model="other", so that a
// catalogue of thousands of models cannot become thousands of series. Priority classes are a fixed list.
import { Gauge } from 'prom-client';
import { metricsRegistry } from './engine-metrics.js';

export const MAX_MODEL_LABELS = 50;
export const OTHER_MODELS = 'other';

export interface FleetReading {
  models: Array<{
    model: string;
    onlineNodes: number;
    freeSlots: number;
    /** Ready messages per priority class; null when the broker could not be asked (the series is left out). */
    queued: ReadonlyArray<{ priority: string; ready: number }> | null;
  }>;
}

type Reader = () => Promise<FleetReading>;
let reader: Reader | null = null;

/** A reading with its models past MAX_MODEL_LABELS folded into `other` (summed). */
export function boundedReading(r: FleetReading): FleetReading {
  if (r.models.length <= MAX_MODEL_LABELS) return r;
  const kept = r.models.slice(0, MAX_MODEL_LABELS - 1);
  const rest = r.models.slice(MAX_MODEL_LABELS - 1);
  const queued = new Map<string, number>();
  let brokerAnswered = true;
  for (const m of rest) {
    if (m.queued === null) brokerAnswered = false;
    for (const q of m.queued ?? []) queued.set(q.priority, (queued.get(q.priority) ?? 0) + q.ready);
  }
  kept.push({
    model: OTHER_MODELS,
    onlineNodes: rest.reduce((n, m) => n + m.onlineNodes, 0),
    freeSlots: rest.reduce((n, m) => n + m.freeSlots, 0),
    queued: brokerAnswered ? [...queued].map(([priority, ready]) => ({ priority, ready })) : null,
  });
  return { models: kept };
}

/** The reading of this scrape: one read shared by the three gauges (prom-client collects them one by one). */
let current: { at: number; reading: Promise<FleetReading | null> } | null = null;
function read(): Promise<FleetReading | null> {
  const now = Date.now();
  if (!reader) return Promise.resolve(null);
  if (!current || now - current.at > 500) {
    const r = reader;
    current = { at: now, reading: r().then(boundedReading, () => null) };
  }
  return current.reading;
}

new Gauge({
  name: 'resultity_queue_depth',
  help: 'Jobs ready in RabbitMQ per model and priority class (delivered, unacked jobs held by schedulers are not counted)',
  labelNames: ['model', 'priority'] as const,
  registers: [metricsRegistry],
  async collect() {
    this.reset();
    const r = await read();
    for (const m of r?.models ?? []) for (const q of m.queued ?? []) this.set({ model: m.model, priority: q.priority }, q.ready);
  },
});

new Gauge({
  name: 'resultity_nodes_online',
  help: 'Online nodes that could be given each model (both networks; a node serving several models counts under each)',
  labelNames: ['model'] as const,
  registers: [metricsRegistry],
  async collect() {
    this.reset();
    const r = await read();
    for (const m of r?.models ?? []) this.set({ model: m.model }, m.onlineNodes);
  },
});

new Gauge({
  name: 'resultity_free_slots',
  help: 'Free slots (capacity less slots in use) on the online nodes of each model',
  labelNames: ['model'] as const,
  registers: [metricsRegistry],
  async collect() {
    this.reset();
    const r = await read();
    for (const m of r?.models ?? []) this.set({ model: m.model }, m.freeSlots);
  },
});

/** Makes this process export the fleet gauges from `read`; returns the function that stops it (at close). */
export function exportFleetMetrics(read: Reader): () => void {
  reader = read;
  current = null;
  return () => {
    if (reader === read) reader = null;
    current = null;
  };
}
