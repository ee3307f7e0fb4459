// In-memory HistoryStore (maintenance/history.service.ts) for the history tasks' fast tests: the days
// with raw partitions, each day's jobs (finished or not), the rolled-up days, and a snapshot gate.
import type { HistoryStore, HistoryTx, SnapshotGate } from '../../src/maintenance/history.service.js';
import type { RollupDay } from '../../src/postgres/job-history.repository.js';
import { FakeDatabase } from './fake-database.js';

interface HistoryState {
  partitions: string[];
  /** Raw jobs by day: charged amounts, and how many are unfinished. */
  jobs: Record<string, { charged: number[]; unfinished: number }>;
  rollups: Record<string, RollupDay>;
}

export class FakeHistoryStore implements HistoryStore {
  readonly db = new FakeDatabase<HistoryState>({ partitions: [], jobs: {}, rollups: {} });
  lockedElsewhere = false;
  clock = new Date();
  /** Partition DDL of these days waits past its lock timeout. */
  readonly ddlBlocked = new Set<string>();

  addDay(day: string, charged: number[], unfinished = 0): void {
    this.db.state.partitions.push(day);
    this.db.state.partitions.sort();
    this.db.state.jobs[day] = { charged, unfinished };
  }

  runExclusive<T>(fn: () => Promise<T>): Promise<{ ran: true; value: T } | { ran: false }> {
    this.db.call('runExclusive');
    if (this.lockedElsewhere) return Promise.resolve({ ran: false });
    return fn().then((value) => ({ ran: true, value }));
  }

  now(): Promise<Date> {
    return Promise.resolve(this.clock);
  }

  listJobPartitionDays(): Promise<string[]> {
    return Promise.resolve([...this.db.state.partitions]);
  }

  createJobPartitions(day: string): Promise<boolean> {
    this.db.call('createJobPartitions');
    if (this.ddlBlocked.has(day)) return Promise.reject(new Error('canceling statement due to lock timeout (fake)'));
    if (this.db.state.partitions.includes(day)) return Promise.resolve(false);
    this.addDay(day, []);
    return Promise.resolve(true);
  }

  listRollupDays(from: string, to: string): Promise<RollupDay[]> {
    return Promise.resolve(Object.values(this.db.state.rollups).filter((r) => r.day >= from && r.day <= to).sort((a, b) => a.day.localeCompare(b.day)));
  }

  countUnfinishedOnDay(day: string): Promise<number> {
    return Promise.resolve(this.db.state.jobs[day]?.unfinished ?? 0);
  }

  rollUpJobDay(day: string): Promise<{ jobs: number; charged_micro: number }> {
    return this.db.transaction(() => Promise.resolve(this.rollUp(day)));
  }

  transaction<T>(fn: (tx: HistoryTx) => Promise<T>): Promise<T> {
    return this.db.transaction(() =>
      fn({
        lockJobDayForDrop: () => {
          this.db.call('lockJobDayForDrop');
          return Promise.resolve(true);
        },
        rollUpJobDay: (day) => Promise.resolve(this.rollUp(day)),
        dropJobPartitions: (day) => {
          this.db.call('dropJobPartitions');
          this.db.state.partitions = this.db.state.partitions.filter((d) => d !== day);
          delete this.db.state.jobs[day];
          this.db.state.rollups[day]!.raw_dropped = true;
          return Promise.resolve(true);
        },
      }),
    );
  }

  private rollUp(day: string): { jobs: number; charged_micro: number } {
    this.db.call('rollUpJobDay');
    const charged = this.db.state.jobs[day]?.charged ?? [];
    const r = { jobs: charged.length, charged_micro: charged.reduce((a, b) => a + b, 0) };
    this.db.state.rollups[day] = { day, ...r, raw_dropped: false };
    return r;
  }
}

/** Snapshots as the history tasks see them: days snapshotted, and days whose snapshot verified back from the store. */
export class FakeSnapshotGate implements SnapshotGate {
  readonly verified = new Set<string>();
  readonly asked: string[] = [];

  createDue(): Promise<string[]> {
    return Promise.resolve([]);
  }

  readyToDrop(day: string): Promise<boolean> {
    this.asked.push(day);
    return Promise.resolve(this.verified.has(day));
  }
}
