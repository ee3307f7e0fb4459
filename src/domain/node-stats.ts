// A node's runtime stats over time (issue 10 part 3): per window of NODE_STATS_WINDOW_MS, its load as its
// heartbeats declared it (clamped: a node is a stranger, and `running` beyond its capacity means nothing
// more than "full"), and what the backbone measured itself: attempts it dispatched that completed or
// failed (by outcome), and per model the tokens the node was paid for over the time the backbone saw the
// attempt take (dispatch to result at the gateway), i.e. tokens per second as observed, not as declared.
//
// NodeStatsWindow accumulates one window in memory (one per node per instance); `close` turns it into the
// document that is written. Every figure is bounded, and so is the number of models per window.

/** What the recording points tell the stats (io gateway: heartbeats, results; lifecycle: failures). */
export interface NodeStatsSink {
  /** A heartbeat accepted from the node: its declared running jobs and capacity. */
  heartbeat(nodeId: string, running: number, capacity: number): void;
  /** An attempt of `model` the node completed: the completion tokens it was paid for, and the time the backbone saw it take. */
  attemptCompleted(nodeId: string, model: string, completionTokens: number, elapsedMs: number): void;
  /** An attempt the node did not complete, by outcome (failed, timeout, disconnected, invalid_result). */
  attemptFailed(nodeId: string, outcome: string): void;
}

export const NO_NODE_STATS: NodeStatsSink = { heartbeat: () => undefined, attemptCompleted: () => undefined, attemptFailed: () => undefined };

/** Most models a window keeps figures for; more (a catalogue that large) are counted under `other`. */
export const MAX_MODELS_PER_WINDOW = 64;
/** The largest capacity a node may declare (protocol.ts), and so the largest `running` counted. */
export const MAX_DECLARED_CAPACITY = 1024;
/** An attempt longer than this is counted as this long (a clock jump must not skew a day's rate). */
const MAX_ATTEMPT_MS = 3_600_000;
const FAILURE_OUTCOMES = ['failed', 'timeout', 'disconnected', 'invalid_result'] as const;

export interface ModelStats {
  model: string;
  completed: number;
  completionTokens: number;
  busyMs: number;
  /** completionTokens over busyMs, per second; null when nothing completed. */
  tokensPerSecond: number | null;
}

/** One window's stats of one node, as written (and read back). */
export interface NodeStatsDoc {
  nodeId: string;
  windowStart: Date;
  windowEnd: Date;
  heartbeats: number;
  /** Mean and peak of running/capacity over the window's heartbeats, in [0, 1]; null without heartbeats. */
  loadAvg: number | null;
  loadMax: number | null;
  /** The largest capacity declared in the window (clamped to MAX_DECLARED_CAPACITY). */
  capacity: number | null;
  completed: number;
  failures: Record<(typeof FAILURE_OUTCOMES)[number] | 'other', number>;
  models: ModelStats[];
}

function clampInt(v: number, min: number, max: number): number {
  if (!Number.isFinite(v)) return min;
  return Math.min(max, Math.max(min, Math.floor(v)));
}

export class NodeStatsWindow {
  private heartbeats = 0;
  private loadSum = 0;
  private loadMax = 0;
  private capacity = 0;
  private completed = 0;
  private readonly failures: NodeStatsDoc['failures'] = { failed: 0, timeout: 0, disconnected: 0, invalid_result: 0, other: 0 };
  private readonly models = new Map<string, { completed: number; tokens: number; busyMs: number }>();

  constructor(
    readonly nodeId: string,
    readonly startMs: number,
  ) {}

  heartbeat(running: number, capacity: number): void {
    const cap = clampInt(capacity, 1, MAX_DECLARED_CAPACITY);
    const load = clampInt(running, 0, cap) / cap;
    this.heartbeats++;
    this.loadSum += load;
    this.loadMax = Math.max(this.loadMax, load);
    this.capacity = Math.max(this.capacity, cap);
  }

  attemptCompleted(model: string, completionTokens: number, elapsedMs: number): void {
    this.completed++;
    const key = this.models.has(model) || this.models.size < MAX_MODELS_PER_WINDOW ? model : 'other';
    const m = this.models.get(key) ?? { completed: 0, tokens: 0, busyMs: 0 };
    m.completed++;
    m.tokens += clampInt(completionTokens, 0, Number.MAX_SAFE_INTEGER);
    m.busyMs += clampInt(elapsedMs, 1, MAX_ATTEMPT_MS);
    this.models.set(key, m);
  }

  attemptFailed(outcome: string): void {
    const key = (FAILURE_OUTCOMES as readonly string[]).includes(outcome) ? (outcome as (typeof FAILURE_OUTCOMES)[number]) : 'other';
    this.failures[key]++;
  }

  close(endMs: number): NodeStatsDoc {
    return {
      nodeId: this.nodeId,
      windowStart: new Date(this.startMs),
      windowEnd: new Date(endMs),
      heartbeats: this.heartbeats,
      loadAvg: this.heartbeats > 0 ? round(this.loadSum / this.heartbeats) : null,
      loadMax: this.heartbeats > 0 ? round(this.loadMax) : null,
      capacity: this.heartbeats > 0 ? this.capacity : null,
      completed: this.completed,
      failures: { ...this.failures },
      models: [...this.models].map(([model, m]) => ({ model, completed: m.completed, completionTokens: m.tokens, busyMs: m.busyMs, tokensPerSecond: tokensPerSecond(m.tokens, m.busyMs) })),
    };
  }
}

export function tokensPerSecond(tokens: number, busyMs: number): number | null {
  return busyMs > 0 ? round((tokens * 1000) / busyMs) : null;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/**
 * Windows of one node written by several instances (each io and scheduler instance keeps its own) merged
 * into one per window start: counts add up, load is averaged by heartbeats, peaks take the largest.
 */
export function mergeWindows(docs: readonly NodeStatsDoc[]): NodeStatsDoc[] {
  const byStart = new Map<number, NodeStatsDoc[]>();
  for (const d of docs) {
    const k = d.windowStart.getTime();
    const list = byStart.get(k);
    if (list) list.push(d);
    else byStart.set(k, [d]);
  }
  return [...byStart.entries()]
    .sort(([a], [b]) => a - b)
    .map(([, list]) => {
      if (list.length === 1) return list[0]!;
      const heartbeats = list.reduce((s, d) => s + d.heartbeats, 0);
      const models = new Map<string, ModelStats>();
      for (const d of list) {
        for (const m of d.models) {
          const acc = models.get(m.model) ?? { model: m.model, completed: 0, completionTokens: 0, busyMs: 0, tokensPerSecond: null };
          acc.completed += m.completed;
          acc.completionTokens += m.completionTokens;
          acc.busyMs += m.busyMs;
          models.set(m.model, acc);
        }
      }
      const failures = { failed: 0, timeout: 0, disconnected: 0, invalid_result: 0, other: 0 };
      for (const d of list) for (const k of Object.keys(failures) as Array<keyof typeof failures>) failures[k] += d.failures[k] ?? 0;
      const loads = list.filter((d) => d.heartbeats > 0);
      return {
        nodeId: list[0]!.nodeId,
        windowStart: list[0]!.windowStart,
        windowEnd: new Date(Math.max(...list.map((d) => d.windowEnd.getTime()))),
        heartbeats,
        loadAvg: heartbeats > 0 ? round(loads.reduce((s, d) => s + (d.loadAvg ?? 0) * d.heartbeats, 0) / heartbeats) : null,
        loadMax: loads.length > 0 ? Math.max(...loads.map((d) => d.loadMax ?? 0)) : null,
        capacity: loads.length > 0 ? Math.max(...loads.map((d) => d.capacity ?? 0)) : null,
        completed: list.reduce((s, d) => s + d.completed, 0),
        failures,
        models: [...models.values()].map((m) => ({ ...m, tokensPerSecond: tokensPerSecond(m.completionTokens, m.busyMs) })),
      };
    });
}
