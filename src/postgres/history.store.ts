// The history tasks' store (maintenance/history.service.ts HistoryStore) on PostgreSQL: the repository
// functions bound to the pool, each write in a transaction of its own or in the one `transaction` gives,
// and the history advisory lock. It matches the port by shape (checked where the tasks are built,
// src/app.ts), so this engine folder need not import the role's.
import { ADVISORY_LOCKS, runExclusive } from './advisory-lock.js';
import { databaseNow, withTransaction, type Db, type Tx } from './db.js';
import {
  countUnfinishedOnDay,
  createJobPartitions,
  dropJobPartitions,
  listJobPartitionDays,
  listRollupDays,
  lockJobDayForDrop,
  rollUpJobDay,
} from './job-history.repository.js';

export function historyStore(db: Db) {
  const inTransaction = (tx: Tx) => ({
    lockJobDayForDrop: (day: string, lockTimeoutMs: number) => lockJobDayForDrop(tx, day, lockTimeoutMs),
    rollUpJobDay: (day: string) => rollUpJobDay(tx, day),
    dropJobPartitions: (day: string) => dropJobPartitions(tx, day),
  });
  return {
    runExclusive: <T>(fn: () => Promise<T>) => runExclusive(db, ADVISORY_LOCKS.history, fn),
    now: () => databaseNow(db),
    listJobPartitionDays: () => listJobPartitionDays(db),
    createJobPartitions: (day: string, lockTimeoutMs: number) => withTransaction(db, (tx) => createJobPartitions(tx, day, lockTimeoutMs)),
    listRollupDays: (from: string, to: string) => listRollupDays(db, from, to),
    countUnfinishedOnDay: (day: string) => countUnfinishedOnDay(db, day),
    rollUpJobDay: (day: string) => withTransaction(db, (tx) => rollUpJobDay(tx, day), { isolation: 'snapshot' }),
    transaction: <T>(fn: (tx: ReturnType<typeof inTransaction>) => Promise<T>) => withTransaction(db, (tx) => fn(inTransaction(tx))),
  };
}
