// Job history that stays bounded, and the ledger's daily chain (DESIGN.md, "Data lifecycle"). Each run,
// on whichever instance takes the history advisory lock (so N instances do the work once):
//   1. partitions: make sure `jobs` (and `job_attempts`) have a partition for today and the days ahead;
//   2. job rollups: roll up every closed day not rolled up yet, oldest first (a day is closed once its
//      end plus the longest deadline has passed and every job of it has finished);
//   3. ledger: roll up and chain every closed ledger day;
//   4. snapshots: snapshot every day closed on both counts (src/snapshots/), to the snapshot store;
//   5. drops: drop the raw partitions of days past the live window, once rolled up (re-rolled in the
//      same transaction, so the rollup that stays is exactly what the dropped rows held) and once the
//      day's snapshot has been read back from the store and verified.
// Runs apart from the frequent sweeps (src/maintenance/maintenance.service.ts), under its own lock, so a
// long rollup never delays job expiry. Every step is idempotent: a lost lock costs duplicate work at
// worst, which the tables' keys refuse.
import type { Logger } from 'pino';
import { PeriodicTask } from '../common/periodic-task.js';
import type { Config } from '../config.js';
import { isoDay } from '../domain/day-range.js';
import { isJobDayClosed, isPastLiveWindow, partitionDaysAhead } from '../domain/job-history.js';
import type { RollupDay } from '../postgres/job-history.repository.js';
import type { LedgerChainService } from './ledger-chain.service.js';

/**
 * What the history tasks need from PostgreSQL: the port their fast tests fake (test/fakes/history.store.ts);
 * on the engine it is postgres/history.store.ts.
 */
export interface HistoryStore {
  /** Runs `fn` while this instance holds the history advisory lock; `ran: false` (nothing run) when another does. */
  runExclusive<T>(fn: () => Promise<T>): Promise<{ ran: true; value: T } | { ran: false }>;
  /** The database's clock: one clock for all instances. */
  now(): Promise<Date>;
  /** Days that have a raw job partition, oldest first. */
  listJobPartitionDays(): Promise<string[]>;
  /** Creates the day's partitions in a transaction of its own; false when they exist; throws when the locks wait too long. */
  createJobPartitions(day: string, lockTimeoutMs: number): Promise<boolean>;
  listRollupDays(from: string, to: string): Promise<RollupDay[]>;
  countUnfinishedOnDay(day: string): Promise<number>;
  /** Rolls the day up in one REPEATABLE READ transaction of its own. */
  rollUpJobDay(day: string): Promise<{ jobs: number; charged_micro: number }>;
  /** All of `fn` or none of it. */
  transaction<T>(fn: (tx: HistoryTx) => Promise<T>): Promise<T>;
}

export interface HistoryTx {
  /** Locks the day's partitions against writers; false when the lock waits too long. */
  lockJobDayForDrop(day: string, lockTimeoutMs: number): Promise<boolean>;
  rollUpJobDay(day: string): Promise<{ jobs: number; charged_micro: number }>;
  dropJobPartitions(day: string): Promise<boolean>;
}

/** Snapshots, as the history tasks need them (src/snapshots/snapshot.service.ts). */
export interface SnapshotGate {
  /** Snapshots every closed day not snapshotted yet; returns their days. */
  createDue(now: Date): Promise<string[]>;
  /** True only when the day's snapshot is stored, read back by CID and verified. */
  readyToDrop(day: string): Promise<boolean>;
}

/** How long partition DDL waits for its locks on the hot tables before giving up until the next run. */
const DDL_LOCK_TIMEOUT_MS = 5_000;
/** Fewer partitions ahead than this is an alert: inserts fail on a day without one. */
const PARTITIONS_AHEAD_ALERT_DAYS = 2;

export interface HistoryRunReport {
  partitionsCreated: string[];
  rolledUp: string[];
  dropped: string[];
  ledgerDaysChained: string[];
  snapshotted: string[];
}

export class HistoryMaintenance {
  private readonly task: PeriodicTask;

  constructor(
    private readonly d: {
      config: Pick<Config, 'JOB_DEADLINE_MS' | 'JOBS_LIVE_WINDOW_DAYS' | 'JOB_PARTITIONS_AHEAD_DAYS' | 'HISTORY_INTERVAL_MS'>;
      store: HistoryStore;
      ledgerChain: Pick<LedgerChainService, 'rollUpClosedDays'>;
      snapshots: SnapshotGate;
      logger: Logger;
    },
  ) {
    this.task = new PeriodicTask('job history maintenance', d.config.HISTORY_INTERVAL_MS, () => this.run(), d.logger);
  }

  /** Runs at once (partitions ahead matter from the first minute), then every HISTORY_INTERVAL_MS. */
  start(): void {
    this.task.start({ immediately: true });
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** One pass of every history task, if this instance gets the lock; null when another instance holds it. */
  async run(): Promise<HistoryRunReport | null> {
    const result = await this.d.store.runExclusive(async () => {
      // The database's clock decides, as it does for the jobs' own timestamps: one clock for all instances.
      const now = await this.d.store.now();
      const report: HistoryRunReport = { partitionsCreated: [], rolledUp: [], dropped: [], ledgerDaysChained: [], snapshotted: [] };
      report.partitionsCreated = await this.ensurePartitionsAhead(now);
      report.rolledUp = await this.rollUpClosedDays(now);
      report.ledgerDaysChained = await this.d.ledgerChain.rollUpClosedDays(now);
      // A day's snapshot needs its rollup and its ledger day; a drop needs the day's snapshot, verified.
      report.snapshotted = await this.d.snapshots.createDue(now);
      report.dropped = await this.dropPastWindow(now);
      const worked = Object.values(report).some((days: string[]) => days.length > 0);
      if (worked) this.d.logger.info(report, 'job history maintenance');
      return report;
    });
    return result.ran ? result.value : null;
  }

  private async ensurePartitionsAhead(now: Date): Promise<string[]> {
    const created: string[] = [];
    const days = partitionDaysAhead(now, this.d.config.JOB_PARTITIONS_AHEAD_DAYS);
    const existing = new Set(await this.d.store.listJobPartitionDays());
    for (const day of days.filter((x) => !existing.has(x))) {
      try {
        if (await this.d.store.createJobPartitions(day, DDL_LOCK_TIMEOUT_MS)) created.push(day);
      } catch (err) {
        this.d.logger.warn({ err, day }, 'could not create the job partitions of a day; retrying on the next run');
        break;
      }
    }
    const have = new Set([...existing, ...created]);
    const ahead = days.findIndex((x) => !have.has(x));
    if (ahead !== -1 && ahead < PARTITIONS_AHEAD_ALERT_DAYS) {
      this.d.logger.error({ missing: days[ahead] }, 'job partitions are running out: jobs for a day without a partition will be refused');
    }
    return created;
  }

  /** Rolls up closed days oldest first, stopping at the first one that still has unfinished jobs. */
  private async rollUpClosedDays(now: Date): Promise<string[]> {
    const today = isoDay(now);
    const partitions = (await this.d.store.listJobPartitionDays()).filter((day) => day < today);
    if (partitions.length === 0) return [];
    const rolled = new Set((await this.d.store.listRollupDays(partitions[0]!, today)).map((r) => r.day));
    const done: string[] = [];
    for (const day of partitions) {
      if (rolled.has(day)) continue;
      if (!isJobDayClosed(day, now, this.d.config.JOB_DEADLINE_MS)) break;
      const unfinished = await this.d.store.countUnfinishedOnDay(day);
      if (unfinished > 0) {
        // The deadline sweep expires them; until it has, this day (and so every later one) waits.
        this.d.logger.warn({ day, unfinished }, 'a closed day still has unfinished jobs; its rollup waits');
        break;
      }
      await this.d.store.rollUpJobDay(day);
      done.push(day);
    }
    return done;
  }

  /** Drops the raw partitions of rolled-up days past the live window. */
  private async dropPastWindow(now: Date): Promise<string[]> {
    const window = this.d.config.JOBS_LIVE_WINDOW_DAYS;
    const due = (await this.d.store.listJobPartitionDays()).filter((day) => isPastLiveWindow(day, now, window));
    if (due.length === 0) return [];
    const rolled = new Map((await this.d.store.listRollupDays(due[0]!, due.at(-1)!)).map((r) => [r.day, r]));
    const dropped: string[] = [];
    for (const day of due) {
      const before = rolled.get(day);
      if (!before) continue; // not rolled up yet: its raw rows stay until it is
      // Never without a verified snapshot: a store that is down or a snapshot that does not verify keeps
      // this day and every later one (the gate logs which and why).
      if (!(await this.d.snapshots.readyToDrop(day))) break;
      try {
        await this.d.store.transaction(async (tx) => {
          if (!(await tx.lockJobDayForDrop(day, DDL_LOCK_TIMEOUT_MS))) return;
          // Re-roll from the rows about to go, so that what stays is exactly what they held. A closed day
          // does not change; if it did, say so (something wrote to a closed day).
          const after = await tx.rollUpJobDay(day);
          if (after.jobs !== before.jobs || after.charged_micro !== before.charged_micro) {
            this.d.logger.warn({ day, before, after }, 'a rolled-up day changed after its rollup; rolled up again before its raw rows were dropped');
          }
          await tx.dropJobPartitions(day);
        });
        dropped.push(day);
      } catch (err) {
        this.d.logger.warn({ err, day }, 'could not drop the job partitions of a day; retrying on the next run');
        break;
      }
    }
    return dropped;
  }
}
