// Periodic safety nets, each idempotent, run by whichever instance takes the PostgreSQL advisory lock
// for that tick (so N instances do the work once; the daily history tasks run apart, under their own
// lock: src/maintenance/history.service.ts):
//   - outbox: republish jobs whose publish was never confirmed (a crash or broker outage at accept);
//   - deadlines: expire unfinished jobs past their deadline and release their holds (covers messages the
//     broker dead-lettered by TTL, and any job whose scheduler vanished);
//   - idempotency keys: delete those past their 24-hour window;
//   - node flags: rewrite their Redis mirror from PostgreSQL (they survive a loss of Redis);
//   - eligibility rules (model versions and floors, subclouds): mirror them again when Redis lost them or
//     holds another revision than PostgreSQL (an admin change whose mirror write failed);
//   - contribution points: write the uptime of closed epochs from the heartbeats counted in Redis;
//   - space: meter yesterday's extended retention and charge it through the ledger, once a day;
//   - payloads: drop the MongoDB collections (a retention class's day) whose documents have all expired
//     (FerretDB has no TTL index; on MongoDB the TTL index has emptied them already); job logs and node
//     stats the same way, on the same schedule (mongo/day-buckets.ts).
import type { Logger } from 'pino';
import { PeriodicTask } from '../common/periodic-task.js';
import type { Config } from '../config.js';
import type { JobRow } from '../postgres/jobs.repository.js';
import type { NodeFlags } from '../domain/node-flags.js';
import type { NodeFlagsMirror } from '../redis/node-flags.mirror.js';
import type { EligibilityService } from '../network/eligibility.service.js';
import type { UptimeRepository } from '../redis/uptime.repository.js';
import { epochOf, uptimePoints, type RcpClock } from '../domain/rcp.js';
import { endings, IDEMPOTENCY_WINDOW_HOURS } from '../domain/job-states.js';
import type { PayloadsRepository } from '../mongo/payloads.repository.js';
import type { RetentionService } from '../space/retention.service.js';
import type { JobLifecycle } from '../jobs/lifecycle.service.js';
import { ticketOf } from '../domain/job-ticket.js';

const BATCH = 500;

/** A store of day buckets that expire whole (mongo/job-logs.repository.ts, mongo/node-stats.repository.ts). */
export interface ExpiringLogStore {
  sweepExpired(now: Date): Promise<number>;
}

/**
 * What the tick needs from PostgreSQL: the port its fast tests fake (test/fakes/maintenance.store.ts); on
 * the engine it is postgres/maintenance.store.ts.
 */
export interface MaintenanceStore {
  /** Runs `fn` while this instance holds the maintenance advisory lock; false (nothing run) when another does. */
  runExclusive(fn: () => Promise<void>): Promise<boolean>;
  /** Unfinished jobs created before `olderThan` whose publish was never confirmed, oldest first. */
  listUnpublished(olderThan: Date, limit: number): Promise<JobRow[]>;
  markPublished(marks: ReadonlyArray<{ id: string; at: Date }>): Promise<void>;
  /** Unfinished jobs past their deadline, soonest deadline first. */
  listOverdue(now: Date, limit: number): Promise<string[]>;
  deleteExpiredIdempotencyKeys(windowHours: number, limit: number): Promise<number>;
  /** The flags in force (paused, frozen, shadow-banned, cooling down). */
  listActiveNodeFlags(): Promise<Array<NodeFlags & { nodeId: string; reason: string }>>;
  recordUptime(epoch: number, rows: ReadonlyArray<{ nodeId: string; points: number }>): Promise<void>;
}

/** The tick's collaborators, as far as it uses them (fast tests fake these). */
export interface MaintenanceDeps {
  config: Config;
  store: MaintenanceStore;
  payloads: Pick<PayloadsRepository, 'findInput' | 'sweepExpired'>;
  /** Job logs and node stats: swept with the payloads. */
  logStores?: readonly ExpiringLogStore[];
  retention: Pick<RetentionService, 'sweepExpiredKeys' | 'meterDay'>;
  lifecycle: Pick<JobLifecycle, 'publish' | 'end'>;
  flags: Pick<NodeFlagsMirror, 'write'>;
  eligibility: Pick<EligibilityService, 'syncIfStale'>;
  uptime: Pick<UptimeRepository, 'closedEpochs' | 'readEpoch' | 'forget'>;
  rcpClock: RcpClock;
  logger: Logger;
}

export class Maintenance {
  private readonly task: PeriodicTask;

  constructor(private readonly d: MaintenanceDeps) {
    this.task = new PeriodicTask('maintenance tick', d.config.SWEEP_INTERVAL_MS, () => this.tick(), d.logger);
  }

  start(): void {
    this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** When this instance last swept expired payloads (ms; 0: not yet, so its first tick does). */
  private lastPayloadSweep = 0;

  /** One pass of every task, if this instance gets the lock. Returns false when another instance holds it. */
  async tick(now = new Date()): Promise<boolean> {
    return this.d.store.runExclusive(async () => {
      await this.republishUnconfirmed(now);
      await this.expireOverdue(now);
      await this.d.store.deleteExpiredIdempotencyKeys(IDEMPOTENCY_WINDOW_HOURS, BATCH);
      // Rewrite the Redis mirror of node flags from PostgreSQL: after a loss of Redis, flags are back in
      // force within one tick.
      for (const f of await this.d.store.listActiveNodeFlags()) await this.d.flags.write(f.nodeId, f);
      if (await this.d.eligibility.syncIfStale()) this.d.logger.info('eligibility rules mirrored to Redis again');
      await this.closeUptimeEpochs(now);
      if (now.getTime() - this.lastPayloadSweep >= this.d.config.PAYLOAD_SWEEP_INTERVAL_MS) {
        const swept = await this.d.payloads.sweepExpired(now);
        this.lastPayloadSweep = now.getTime();
        if (swept.buckets + swept.documents > 0) this.d.logger.info(swept, 'expired payloads dropped');
        await this.d.retention.sweepExpiredKeys(now);
        let logBuckets = 0;
        for (const store of this.d.logStores ?? []) logBuckets += await store.sweepExpired(now);
        if (logBuckets > 0) this.d.logger.info({ buckets: logBuckets }, 'expired job logs and node stats dropped');
      }
      await this.meterClosedDay(now);
    });
  }

  /** The last closed UTC day this instance metered (extended retention is charged once a day). */
  private lastMeteredDay = '';

  /** Meters yesterday's extended retention once (space_meterings' key makes it once across instances). */
  private async meterClosedDay(now: Date): Promise<void> {
    const yesterday = new Date(now.getTime() - 86_400_000).toISOString().slice(0, 10);
    if (yesterday === this.lastMeteredDay) return;
    const metered = await this.d.retention.meterDay(yesterday, now);
    this.lastMeteredDay = yesterday;
    if (metered.length > 0) this.d.logger.info({ day: yesterday, namespaces: metered.length, fellBack: metered.filter((m) => m.fellBack).length }, 'space: extended retention metered');
  }

  private async republishUnconfirmed(now: Date): Promise<void> {
    const stale = await this.d.store.listUnpublished(new Date(now.getTime() - this.d.config.OUTBOX_REPUBLISH_AFTER_MS), BATCH);
    for (const job of stale) {
      // The ticket carries the input, from its stored copy (written behind the accept).
      const input = await this.d.payloads.findInput(job.id);
      if (!input) {
        // No copy of the input to publish it from. That does not mean the job was never published: a
        // cloud process killed right after the broker confirmed the job's message loses both the
        // confirmed publish's mark (publish-marks.ts, written behind) and the input it held back
        // (INPUT_HOLD_MS), while the message, with the input in its ticket, waits in RabbitMQ to run.
        // Failing the job here lost such accepted jobs (the chaos run's payload_missing). It is marked
        // instead, so that the outbox stops asking: if its message is queued it runs, and if it was
        // never published its deadline ends it (expired, the hold released in full).
        await this.d.store.markPublished([{ id: job.id, at: now }]);
        this.d.logger.warn({ jobId: job.id }, 'outbox: no stored input to republish from; left to its queued message or its deadline');
        continue;
      }
      this.d.logger.info({ jobId: job.id }, 'outbox: republishing a job whose publish was not confirmed');
      // The broker is failing: stop here rather than hold this tick (and its lock) through a timeout per job.
      if (!(await this.d.lifecycle.publish(ticketOf(job, input), { markNow: true }))) break;
    }
  }

  /** Writes the uptime points of every closed epoch still counted in Redis, then forgets the counts. */
  private async closeUptimeEpochs(now: Date): Promise<void> {
    for (const epoch of await this.d.uptime.closedEpochs(epochOf(this.d.rcpClock, now.getTime()))) {
      const seen = await this.d.uptime.readEpoch(epoch);
      await this.d.store.recordUptime(epoch, seen.map((s) => ({ nodeId: s.nodeId, points: uptimePoints(this.d.rcpClock, s.slots) })));
      await this.d.uptime.forget(epoch, seen.map((s) => s.nodeId));
    }
  }

  private async expireOverdue(now: Date): Promise<void> {
    for (const id of await this.d.store.listOverdue(now, BATCH)) {
      try {
        await this.d.lifecycle.end(id, endings.deadlineExceeded());
      } catch (err) {
        // One job that cannot be ended (a constraint it breaks, say) must not stop every later sweep of
        // the tick, tick after tick: it is logged, and tried again next time.
        this.d.logger.error({ err, jobId: id }, 'maintenance: an overdue job could not be expired');
      }
    }
  }
}
