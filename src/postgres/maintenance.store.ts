// The maintenance tick's store (maintenance/maintenance.service.ts MaintenanceStore) on PostgreSQL: the
// repository functions bound to the pool, and the tick's advisory lock. It matches the port by shape
// (checked where the tick is built, src/app.ts), so this engine folder need not import the role's.
import type { NodeFlags } from '../domain/node-flags.js';
import { ADVISORY_LOCKS, runExclusive } from './advisory-lock.js';
import type { Db } from './db.js';
import { deleteExpiredIdempotencyKeys } from './idempotency.repository.js';
import { listOverdue, listUnpublished, markPublished } from './jobs.repository.js';
import { listActiveNodeFlags } from './node-flags.repository.js';
import { recordUptime } from './rcp.repository.js';

export function maintenanceStore(db: Db) {
  return {
    runExclusive: async (fn: () => Promise<void>) => (await runExclusive(db, ADVISORY_LOCKS.maintenance, fn)).ran,
    listUnpublished: (olderThan: Date, limit: number) => listUnpublished(db, olderThan, limit),
    markPublished: (marks: ReadonlyArray<{ id: string; at: Date }>) => markPublished(db, marks),
    listOverdue: (now: Date, limit: number) => listOverdue(db, now, limit),
    deleteExpiredIdempotencyKeys: (windowHours: number, limit: number) => deleteExpiredIdempotencyKeys(db, windowHours, limit),
    listActiveNodeFlags: (): Promise<Array<NodeFlags & { nodeId: string; reason: string }>> => listActiveNodeFlags(db),
    recordUptime: (epoch: number, rows: ReadonlyArray<{ nodeId: string; points: number }>) => recordUptime(db, epoch, rows),
  };
}
