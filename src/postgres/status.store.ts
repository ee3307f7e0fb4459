// The status service's store (status/status.service.ts StatusStore) on PostgreSQL: the repository
// functions bound to the pool. It matches the port by shape (checked where the service is built, src/app.ts).
import type { Db } from './db.js';
import { listModels } from './models.repository.js';
import { latestSnapshot } from './snapshots.repository.js';
import { recentJobStats, waitingJobsByModel } from './status.repository.js';

export function statusStore(db: Db) {
  return {
    listModels: () => listModels(db),
    waitingJobsByModel: () => waitingJobsByModel(db),
    recentJobStats: (windowSeconds: number) => recentJobStats(db, windowSeconds),
    latestSnapshot: () => latestSnapshot(db),
  };
}
