// In-memory MaintenanceStore and the tick's other collaborators (maintenance/maintenance.service.ts) for
// its fast tests: what the tick reads and writes, and which calls it made, in order.
import type { JobRequest } from '../../src/domain/protocol.js';
import type { JobTicket } from '../../src/domain/job-ticket.js';
import type { NodeFlags } from '../../src/domain/node-flags.js';
import type { MaintenanceDeps, MaintenanceStore } from '../../src/maintenance/maintenance.service.js';
import type { JobRow } from '../../src/postgres/jobs.repository.js';
import { FakeDatabase } from './fake-database.js';

export class FakeMaintenanceStore implements MaintenanceStore {
  readonly db = new FakeDatabase({
    jobs: [] as JobRow[],
    idempotencyKeysExpired: 0,
    flags: [] as Array<NodeFlags & { nodeId: string; reason: string }>,
    uptime: [] as Array<{ epoch: number; nodeId: string; points: number }>,
  });
  /** Another instance holds the maintenance lock. */
  lockedElsewhere = false;

  runExclusive(fn: () => Promise<void>): Promise<boolean> {
    this.db.call('runExclusive');
    if (this.lockedElsewhere) return Promise.resolve(false);
    return fn().then(() => true);
  }

  listUnpublished(olderThan: Date, limit: number): Promise<JobRow[]> {
    this.db.call('listUnpublished');
    const due = this.db.state.jobs.filter((j) => j.published_at === null && j.finished_at === null && j.created_at < olderThan);
    return Promise.resolve(due.sort((a, b) => a.created_at.getTime() - b.created_at.getTime()).slice(0, limit));
  }

  markPublished(marks: ReadonlyArray<{ id: string; at: Date }>): Promise<void> {
    this.db.call('markPublished');
    for (const m of marks) {
      const job = this.db.state.jobs.find((j) => j.id === m.id);
      if (job) job.published_at = m.at;
    }
    return Promise.resolve();
  }

  listOverdue(now: Date, limit: number): Promise<string[]> {
    this.db.call('listOverdue');
    const due = this.db.state.jobs.filter((j) => j.finished_at === null && j.deadline_at < now);
    return Promise.resolve(due.sort((a, b) => a.deadline_at.getTime() - b.deadline_at.getTime()).slice(0, limit).map((j) => j.id));
  }

  deleteExpiredIdempotencyKeys(): Promise<number> {
    this.db.call('deleteExpiredIdempotencyKeys');
    const n = this.db.state.idempotencyKeysExpired;
    this.db.state.idempotencyKeysExpired = 0;
    return Promise.resolve(n);
  }

  listActiveNodeFlags(): Promise<Array<NodeFlags & { nodeId: string; reason: string }>> {
    this.db.call('listActiveNodeFlags');
    return Promise.resolve([...this.db.state.flags]);
  }

  recordUptime(epoch: number, rows: ReadonlyArray<{ nodeId: string; points: number }>): Promise<void> {
    this.db.call('recordUptime');
    for (const r of rows) this.db.state.uptime.push({ epoch, ...r });
    return Promise.resolve();
  }
}

/** A job row as the outbox and the deadline sweep read it. */
export function fakeJob(id: string, createdAt: Date, deadlineAt: Date): JobRow {
  return {
    id, namespace_id: '00000000-0000-4000-8000-000000000001', api_key_id: '00000000-0000-4000-8000-000000000002', model: 'm', status: 'queued',
    attempt: 0, max_attempts: 3, node_id: null, max_tokens: 16, prompt_tokens_bound: 16, hold_micro: 100, charged_micro: null,
    input_price_micro: 1, output_price_micro: 1, min_charge_micro: 0, priority: 'standard', surcharge_bps: 0, prompt_tokens: null,
    completion_tokens: null, error_code: null, error_message: null, created_at: createdAt, deadline_at: deadlineAt, published_at: null,
    finished_at: null, network: 'mainnet', region: null, subcloud: null, config_version: null, attempt_timeout_ms: null,
  };
}

type Collaborators = Omit<MaintenanceDeps, 'config' | 'store' | 'rcpClock' | 'logger'>;

/** The tick's other collaborators: payloads, retention, lifecycle, flags mirror, eligibility, uptime counts. */
export class FakeMaintenanceCollaborators implements Collaborators {
  readonly calls: string[] = [];
  /** Stored inputs by job id (the outbox republishes from them). */
  readonly inputs = new Map<string, JobRequest>();
  readonly published: JobTicket[] = [];
  /** publish() answers false (the broker failing) from this many calls on; null: never. */
  brokerFailsAfter: number | null = null;
  readonly ended: string[] = [];
  /** end() throws for these jobs. */
  readonly endFails = new Set<string>();
  readonly mirrored = new Map<string, NodeFlags>();
  /** Uptime slots counted in Redis, by closed epoch. */
  readonly counted = new Map<number, Array<{ nodeId: string; slots: number }>>();
  readonly metered: string[] = [];

  readonly payloads: Collaborators['payloads'] = {
    findInput: (jobId) => Promise.resolve(this.inputs.get(jobId) ?? null),
    sweepExpired: () => {
      this.calls.push('sweepPayloads');
      return Promise.resolve({ buckets: 0, documents: 0 });
    },
  };

  readonly retention: Collaborators['retention'] = {
    sweepExpiredKeys: () => {
      this.calls.push('sweepExpiredKeys');
      return Promise.resolve(0);
    },
    meterDay: (day) => {
      this.metered.push(day);
      return Promise.resolve([]);
    },
  };

  readonly lifecycle: Collaborators['lifecycle'] = {
    publish: (ticket) => {
      if (this.brokerFailsAfter !== null && this.published.length >= this.brokerFailsAfter) return Promise.resolve(false);
      this.published.push(ticket);
      return Promise.resolve(true);
    },
    end: (jobId) => {
      if (this.endFails.has(jobId)) return Promise.reject(new Error(`cannot end ${jobId} (fake)`));
      this.ended.push(jobId);
      // What the tick reads of the answer: nothing (the row as ended, in the engine).
      return Promise.resolve(null);
    },
  };

  readonly flags: Collaborators['flags'] = {
    write: (nodeId, f) => {
      this.mirrored.set(nodeId, { paused: f.paused, frozen: f.frozen, shadowBanned: f.shadowBanned, cooldownUntil: f.cooldownUntil });
      return Promise.resolve();
    },
  };

  readonly eligibility: Collaborators['eligibility'] = { syncIfStale: () => Promise.resolve(false) };

  readonly uptime: Collaborators['uptime'] = {
    closedEpochs: (current) => Promise.resolve([...this.counted.keys()].filter((e) => e < current).sort((a, b) => a - b)),
    readEpoch: (epoch) => Promise.resolve(this.counted.get(epoch) ?? []),
    forget: (epoch) => {
      this.counted.delete(epoch);
      return Promise.resolve();
    },
  };
}
