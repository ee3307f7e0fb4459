// The write-behind stores of job logs and node stats (mongo/job-logs.repository.ts,
// mongo/node-stats.repository.ts): batches written (each one insertMany), records written, and records
// dropped rather than blocking or growing (buffer full, MongoDB down), by store and reason.
import { Counter } from 'prom-client';
import { metricsRegistry } from './engine-metrics.js';

export const LOG_STORES = ['job_log', 'node_stats'] as const;
export type LogStore = (typeof LOG_STORES)[number];

const batches = new Counter({
  name: 'resultity_log_batches_total',
  help: 'Batches of job log or node stats records written to MongoDB (one insertMany each), by store',
  labelNames: ['store'] as const,
  registers: [metricsRegistry],
});
const written = new Counter({
  name: 'resultity_log_records_written_total',
  help: 'Job log or node stats records written to MongoDB, by store',
  labelNames: ['store'] as const,
  registers: [metricsRegistry],
});
const dropped = new Counter({
  name: 'resultity_log_records_dropped_total',
  help: 'Job log or node stats records dropped instead of written (buffer_full: MongoDB too slow or down; write_failed: its batch failed), by store and reason',
  labelNames: ['store', 'reason'] as const,
  registers: [metricsRegistry],
});

export function countLogBatch(store: LogStore, records: number): void {
  batches.inc({ store });
  written.inc({ store }, records);
}

export function countLogDropped(store: LogStore, reason: 'buffer_full' | 'write_failed', records: number): void {
  dropped.inc({ store, reason }, records);
}
