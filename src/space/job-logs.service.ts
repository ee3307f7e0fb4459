// Reading job logs and node stats (issue 10 part 3), each reader seeing what is theirs:
//   a consumer   its namespace's job's events, without any node identity (DESIGN invariant 4): no node
//                id, and a node's address scrubbed from reasons a node wrote itself (its job_error text);
//                another namespace's job is a 404, exactly like one that does not exist;
//   an operator  its own nodes' stats over a time range; another operator's node is a 404;
//   the admin    any job's events with the nodes that ran its attempts, any node's stats, every node's.
// Reads after the fact only: MongoDB is read here, never on a job's way through the backbone.
import { errors } from '../errors.js';
import { isUuid } from '../domain/wire-strings.js';
import { addressSchema } from '../domain/protocol.js';
import type { NodeStatsDoc } from '../domain/node-stats.js';
import { tokensPerSecond } from '../domain/node-stats.js';
import type { JobLogsRepository, StoredJobLogEntry } from '../mongo/job-logs.repository.js';
import type { NodeStatsRepository } from '../mongo/node-stats.repository.js';

const ADDRESS_IN_TEXT = /0x[0-9a-fA-F]{40}/g;

export interface JobEventView {
  object: 'job.event';
  id: string;
  type: string;
  /** Unix seconds (OpenAI's list objects), and the same time to the millisecond. */
  created_at: number;
  at: string;
  attempt?: number;
  model?: string;
  outcome?: string;
  reason?: string;
  /** Milliseconds each stage took, as measured by the process that saw it end. */
  stage_ms?: Record<string, number>;
  usage?: { prompt_tokens: number; completion_tokens: number };
  /** The admin's view only. */
  node_id?: string;
}

export interface JobEventList {
  object: 'list';
  job_id: string;
  data: JobEventView[];
  first_id: string | null;
  last_id: string | null;
  has_more: false;
  /** Each stage's time summed over the job's events (a retried job's stages count every attempt). */
  stage_ms: Record<string, number>;
}

export interface TimeRange {
  since: Date;
  until: Date;
  limit: number;
}

export interface NodeStatsList {
  object: 'list';
  node_id: string | null;
  since: string;
  until: string;
  data: ReturnType<typeof windowView>[];
  has_more: boolean;
  /** The range's totals: attempts completed and failed, and per model the tokens per second observed. */
  summary: { completed: number; failures: Record<string, number>; models: Array<{ model: string; completed: number; completion_tokens: number; tokens_per_second: number | null }> };
}

/**
 * What the service needs from PostgreSQL: who may read what (the port its fast tests fake,
 * test/fakes/job-logs.store.ts; on the engine postgres/job-logs.store.ts). Each answers null for none.
 */
export interface JobLogsStore {
  findJob(jobId: string): Promise<object | null>;
  /** The job if it is the namespace's: another namespace's job is none. */
  findJobInNamespace(jobId: string, namespaceId: string): Promise<object | null>;
  /** The node if the operator account runs it: another operator's node is none. */
  findOperatorNode(accountId: string, nodeId: string): Promise<object | null>;
}

export type JobLogsPort = Pick<JobLogsRepository, 'ofJob'>;
export type NodeStatsPort = Pick<NodeStatsRepository, 'windowsOf'>;

export class JobLogsService {
  constructor(
    private readonly d: {
      store: JobLogsStore;
      jobLogs: JobLogsPort;
      nodeStats: NodeStatsPort;
    },
  ) {}

  /** A namespace's job's events, with no node identity. */
  async consumerEvents(jobId: string, namespaceId: string): Promise<JobEventList> {
    if (!isUuid(jobId) || !(await this.d.store.findJobInNamespace(jobId, namespaceId))) throw errors.jobNotFound(jobId);
    return eventList(jobId, await this.d.jobLogs.ofJob(jobId), false);
  }

  /** Any job's events, with the node of each attempt. */
  async adminEvents(jobId: string): Promise<JobEventList> {
    if (!isUuid(jobId) || !(await this.d.store.findJob(jobId))) throw errors.jobNotFound(jobId);
    return eventList(jobId, await this.d.jobLogs.ofJob(jobId), true);
  }

  /** One of the operator's nodes' stats; another operator's node (or none) is a 404. */
  async operatorNodeStats(accountId: string, nodeId: string, range: TimeRange): Promise<NodeStatsList> {
    const id = nodeId.toLowerCase();
    if (!addressSchema.safeParse(id).success || !(await this.d.store.findOperatorNode(accountId, id))) throw errors.notFound('Node');
    return this.statsOf(id, range);
  }

  /** A node's stats, or every node's (`nodeId` null), for the admin. */
  async adminNodeStats(nodeId: string | null, range: TimeRange): Promise<NodeStatsList> {
    const id = nodeId === null ? null : nodeId.toLowerCase();
    if (id !== null && !addressSchema.safeParse(id).success) throw errors.notFound('Node');
    return this.statsOf(id, range);
  }

  private async statsOf(nodeId: string | null, range: TimeRange): Promise<NodeStatsList> {
    const { windows, truncated } = await this.d.nodeStats.windowsOf(nodeId, range.since, range.until, range.limit);
    return { object: 'list', node_id: nodeId, since: range.since.toISOString(), until: range.until.toISOString(), data: windows.map((w) => windowView(w, nodeId === null)), has_more: truncated, summary: summaryOf(windows) };
  }
}

function eventList(jobId: string, entries: readonly StoredJobLogEntry[], admin: boolean): JobEventList {
  const data = entries.map((e) => eventView(e, admin));
  const stageMs: Record<string, number> = {};
  for (const e of data) for (const [k, v] of Object.entries(e.stage_ms ?? {})) stageMs[k] = Math.round(((stageMs[k] ?? 0) + v) * 1000) / 1000;
  return { object: 'list', job_id: jobId, data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: false, stage_ms: stageMs };
}

function eventView(e: StoredJobLogEntry, admin: boolean): JobEventView {
  return {
    object: 'job.event',
    id: e._id,
    type: e.kind,
    created_at: Math.floor(e.at.getTime() / 1000),
    at: e.at.toISOString(),
    ...(e.attempt === undefined ? {} : { attempt: e.attempt }),
    ...(e.model === undefined ? {} : { model: e.model }),
    ...(e.outcome === undefined ? {} : { outcome: e.outcome }),
    ...(e.reason === undefined ? {} : { reason: admin ? e.reason : e.reason.replace(ADDRESS_IN_TEXT, '[node]') }),
    ...(e.stageMs === undefined ? {} : { stage_ms: e.stageMs as Record<string, number> }),
    ...(e.usage === undefined ? {} : { usage: { prompt_tokens: e.usage.prompt_tokens, completion_tokens: e.usage.completion_tokens } }),
    ...(admin && e.nodeId !== undefined ? { node_id: e.nodeId } : {}),
  };
}

function windowView(w: NodeStatsDoc, withNode: boolean) {
  return {
    ...(withNode ? { node_id: w.nodeId } : {}),
    window_start: w.windowStart.toISOString(),
    window_end: w.windowEnd.toISOString(),
    heartbeats: w.heartbeats,
    load_avg: w.loadAvg,
    load_max: w.loadMax,
    capacity: w.capacity,
    completed: w.completed,
    failures: w.failures,
    models: w.models.map((m) => ({ model: m.model, completed: m.completed, completion_tokens: m.completionTokens, busy_ms: m.busyMs, tokens_per_second: m.tokensPerSecond })),
  };
}

function summaryOf(windows: readonly NodeStatsDoc[]): NodeStatsList['summary'] {
  const failures: Record<string, number> = {};
  const models = new Map<string, { completed: number; tokens: number; busyMs: number }>();
  let completed = 0;
  for (const w of windows) {
    completed += w.completed;
    for (const [k, v] of Object.entries(w.failures)) failures[k] = (failures[k] ?? 0) + v;
    for (const m of w.models) {
      const acc = models.get(m.model) ?? { completed: 0, tokens: 0, busyMs: 0 };
      acc.completed += m.completed;
      acc.tokens += m.completionTokens;
      acc.busyMs += m.busyMs;
      models.set(m.model, acc);
    }
  }
  return {
    completed,
    failures,
    models: [...models].map(([model, m]) => ({ model, completed: m.completed, completion_tokens: m.tokens, tokens_per_second: tokensPerSecond(m.tokens, m.busyMs) })),
  };
}
