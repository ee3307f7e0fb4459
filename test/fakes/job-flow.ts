// The job flow's services wired on in-memory fakes, as src/app.ts wires them on the engines: settlement,
// the lifecycle (with the node flags service behind its cooldown feedback), and what the scheduler and the
// results service take besides. The fast tests of those services build on this (docs/testing.md).
import pino from 'pino';
import { SettlementService } from '../../src/jobs/settlement.service.js';
import { JobLifecycle } from '../../src/jobs/lifecycle.service.js';
import { NodeFlagsService, type CooldownRule } from '../../src/network/node-flags.service.js';
import type { JobLogEntry } from '../../src/domain/job-log.js';
import type { NodeStatsSink } from '../../src/domain/node-stats.js';
import type { UsageRule } from '../../src/domain/usage-bounds.js';
import type { RcpClock } from '../../src/domain/rcp.js';
import { JobTables } from './job-tables.js';
import { FakeSettlementStore } from './settlement.store.js';
import { FakeJobsStore } from './jobs.store.js';
import { FakeLiveState } from './live-state.js';
import { FakeJobQueue, FakePublishMarks } from './job-queue.js';
import { FakePayloads } from './payloads.js';
import { FakeNodeFlagsMirror, FakeNodeFlagsStore } from './node-flags.store.js';

export const OPERATOR_SHARE_BPS = 8_000;
export const RCP: RcpClock = { epochSeconds: 3_600, uptimeSlotSeconds: 60 };
export const COOLDOWN: CooldownRule = { failures: 3, seconds: 60, windowMs: 600_000 };

/** Node stats as recorded: one line per call. */
export class RecordedNodeStats implements NodeStatsSink {
  readonly lines: string[] = [];
  heartbeat(): void {}
  attemptCompleted(nodeId: string, model: string, tokens: number): void {
    this.lines.push(`completed ${nodeId} ${model} ${tokens}`);
  }
  attemptFailed(nodeId: string, outcome: string): void {
    this.lines.push(`failed ${nodeId} ${outcome}`);
  }
}

export function jobFlow() {
  const tables = new JobTables();
  const settlementStore = new FakeSettlementStore(tables);
  const settlement = new SettlementService(settlementStore, OPERATOR_SHARE_BPS, RCP);
  const store = new FakeJobsStore(tables);
  const live = new FakeLiveState();
  const queue = new FakeJobQueue();
  const marks = new FakePublishMarks();
  const payloads = new FakePayloads();
  const flags = { store: new FakeNodeFlagsStore(), mirror: new FakeNodeFlagsMirror() };
  const nodeFlags = new NodeFlagsService({ ...flags, rule: COOLDOWN });
  /** Models known to the catalogue, with their usage rules (no tokenizer: one token per byte at most). */
  const rules = new Map<string, UsageRule>([['m', { tokenizer: null, maxTokensPerByte: 1 }]]);
  const usageRules = { ruleFor: (model: string) => Promise.resolve(rules.get(model) ?? null) };
  const jobLog: JobLogEntry[] = [];
  const nodeStats = new RecordedNodeStats();
  const logger = pino({ level: 'silent' });
  const lifecycle = new JobLifecycle({
    store,
    settlement,
    payloads,
    presence: live,
    inflight: live,
    events: live,
    queue,
    marks,
    nodeFlags,
    streams: live,
    usageRules,
    usageSamples: live,
    logger,
    jobLog: { record: (e) => void jobLog.push(e) },
    nodeStats,
  });
  return { tables, settlementStore, settlement, store, live, queue, marks, payloads, flags, nodeFlags, rules, usageRules, jobLog, nodeStats, logger, lifecycle };
}

/** A node known to every side: bound to an operator (PostgreSQL and the flags' store) and online (Redis). */
export function addNode(flow: ReturnType<typeof jobFlow>, nodeId: string, opts: { models?: string[]; slots?: number; instance?: string; operator?: string } = {}): void {
  const operator = opts.operator ?? 'operator-1';
  flow.tables.addNode(nodeId, operator);
  flow.flags.store.addNode(nodeId, operator);
  flow.live.addNode(nodeId, opts);
}
