// The snapshot service's records (snapshots/snapshot.service.ts SnapshotRecords) on PostgreSQL: the
// repository functions bound to the pool. It matches the port by shape (checked where the service is built).
import type { Db } from './db.js';
import {
  countJobsOnDay,
  epochPoints,
  findSealedEpochs,
  findSnapshot,
  firstDayWithoutSnapshot,
  hasJobPartition,
  historyExtent,
  isRolledUp,
  latestSnapshot,
  listSnapshots,
  markSnapshotVerified,
} from './snapshots.repository.js';

export function snapshotRecords(db: Db) {
  return {
    historyExtent: () => historyExtent(db),
    firstDayWithoutSnapshot: (from: string, to: string) => firstDayWithoutSnapshot(db, from, to),
    isRolledUp: (day: string) => isRolledUp(db, day),
    hasJobPartition: (day: string) => hasJobPartition(db, day),
    find: (ref: string) => findSnapshot(db, ref),
    countJobsOnDay: (day: string) => countJobsOnDay(db, day),
    markVerified: (cid: string) => markSnapshotVerified(db, cid),
    list: (limit: number) => listSnapshots(db, limit),
    latest: () => latestSnapshot(db),
    sealedEpochs: (epochs: readonly number[] | null, limit: number) => findSealedEpochs(db, epochs, limit),
    epochPoints: (epochs: readonly number[]) => epochPoints(db, epochs),
  };
}
