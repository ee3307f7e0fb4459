// Node runtime stats in MongoDB (domain/node-stats.ts): each process keeps one window per node in memory
// (heartbeats its io role accepted, attempts it saw complete or fail) and, at the end of each window
// (NODE_STATS_WINDOW_MS, aligned to the clock so that several instances' windows line up), writes them
// behind in batches (common/buffered-writer.ts): one document per node per window per instance, merged
// when read. A bounded number of nodes per window (beyond it, new nodes' figures are dropped and counted).
//
// Layout (mongo/day-buckets.ts): `node_stats.r<H>h.<YYYYMMDD>` by the UTC day of the window's start, H =
// NODE_STATS_RETENTION_DAYS in hours; each document carries `expireAt` (window start plus H).
//   { _id, nodeId, instance, windowStart, windowEnd, heartbeats, loadAvg, loadMax, capacity, completed,
//     failures: {failed, timeout, disconnected, invalid_result, other}, models: [{model, completed,
//     completionTokens, busyMs, tokensPerSecond}], expireAt }
import { ObjectId, type Db, type Filter } from 'mongodb';
import type { Logger } from 'pino';
import { mergeWindows, NodeStatsWindow, type NodeStatsDoc, type NodeStatsSink } from '../domain/node-stats.js';
import { BufferedWriter } from '../common/buffered-writer.js';
import { BucketIndexes, collectionNames, LogWriteAccount, dayBucketName, insertByBucket, daysBetween, dropExpiredBuckets, hoursLater, parseDayBucket, serverHasTtlIndexes } from './day-buckets.js';

export const NODE_STATS_PREFIX = 'node_stats';

interface StoredNodeStats extends NodeStatsDoc {
  _id: string;
  instance: string;
  expireAt: Date;
}

export interface NodeStatsOptions {
  windowMs: number;
  retentionDays: number;
  /** Most nodes one window keeps figures for, per process. */
  maxNodes: number;
  flushMs: number;
  batchMax: number;
  bufferMax: number;
  instanceId: string;
  logger: Logger;
}

export class NodeStatsRepository implements NodeStatsSink {
  private readonly account: LogWriteAccount;
  private windows = new Map<string, NodeStatsWindow>();
  private windowStartMs: number;
  private timer: NodeJS.Timeout | null = null;
  private readonly writer: BufferedWriter<StoredNodeStats>;
  private readonly indexes: BucketIndexes;
  private ttlIndex = false;

  constructor(
    private readonly db: Db,
    private readonly o: NodeStatsOptions,
  ) {
    this.windowStartMs = this.alignedStart(Date.now());
    this.account = new LogWriteAccount('node_stats', o.logger, 'node stats records dropped (MongoDB slow or unreachable, or too many nodes)');
    this.indexes = new BucketIndexes(db, { nodeId: 1, windowStart: 1 }, () => this.ttlIndex);
    this.writer = new BufferedWriter({
      write: (docs) => this.insert(docs),
      flushMs: o.flushMs,
      batchMax: o.batchMax,
      bufferMax: o.bufferMax,
      onDropped: (count, reason, error) => this.account.dropped(count, reason, error),
    });
  }

  /** What this process wrote and dropped. */
  get writes(): Readonly<LogWriteAccount['writes']> {
    return this.account.writes;
  }

  async ensureIndexes(): Promise<void> {
    this.ttlIndex = await serverHasTtlIndexes(this.db);
  }

  /** Closes each window when its time is up (checked a few times per window). */
  start(): void {
    this.timer ??= setInterval(() => this.rollIfDue(Date.now()), Math.max(50, Math.floor(this.o.windowMs / 4)));
    this.timer.unref();
  }

  heartbeat(nodeId: string, running: number, capacity: number): void {
    this.windowOf(nodeId)?.heartbeat(running, capacity);
  }

  attemptCompleted(nodeId: string, model: string, completionTokens: number, elapsedMs: number): void {
    this.windowOf(nodeId)?.attemptCompleted(model, completionTokens, elapsedMs);
  }

  attemptFailed(nodeId: string, outcome: string): void {
    this.windowOf(nodeId)?.attemptFailed(outcome);
  }

  /** Closes the windows open now (ending them now) and writes everything (tests, shutdown). */
  async flush(now = Date.now()): Promise<void> {
    this.roll(now);
    await this.writer.flush();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.roll(Date.now());
    await this.writer.close();
  }

  /**
   * A node's windows (or every node's, `nodeId` null) starting in [since, until), merged across the
   * instances that wrote them, oldest first; at most `limit` documents are read. Visits the days of the
   * range only.
   */
  async windowsOf(nodeId: string | null, since: Date, until: Date, limit: number, now = new Date()): Promise<{ windows: NodeStatsDoc[]; truncated: boolean }> {
    const days = new Set(daysBetween(since.getTime(), until.getTime()).map((d) => d));
    const names = (await collectionNames(this.db)).filter((n) => {
      const b = parseDayBucket(NODE_STATS_PREFIX, n);
      return b !== null && days.has(b.dayStartMs);
    });
    const filter: Filter<StoredNodeStats> = { windowStart: { $gte: since, $lt: until }, expireAt: { $gt: now }, ...(nodeId === null ? {} : { nodeId }) };
    let read = 0;
    const docs: NodeStatsDoc[] = [];
    for (const name of names.sort()) {
      const left = limit + 1 - read;
      if (left <= 0) break;
      const found = await this.db.collection<StoredNodeStats>(name).find(filter, { projection: { _id: 0, instance: 0, expireAt: 0 } }).sort({ windowStart: 1 }).limit(left).toArray();
      read += found.length;
      docs.push(...found);
    }
    const truncated = docs.length > limit;
    const kept = docs.slice(0, limit);
    const byNode = new Map<string, NodeStatsDoc[]>();
    for (const d of kept) {
      const list = byNode.get(d.nodeId);
      if (list) list.push(d);
      else byNode.set(d.nodeId, [d]);
    }
    const windows = [...byNode.values()].flatMap((list) => mergeWindows(list)).sort((a, b) => a.windowStart.getTime() - b.windowStart.getTime() || a.nodeId.localeCompare(b.nodeId));
    return { windows, truncated };
  }

  sweepExpired(now = new Date()): Promise<number> {
    return dropExpiredBuckets(this.db, NODE_STATS_PREFIX, now, (name) => this.indexes.forget(name));
  }

  private alignedStart(ms: number): number {
    return Math.floor(ms / this.o.windowMs) * this.o.windowMs;
  }

  private rollIfDue(now: number): void {
    if (now >= this.windowStartMs + this.o.windowMs) this.roll(now);
  }

  /** The window of `nodeId` open now (after closing a window whose time is up); null past maxNodes. */
  private windowOf(nodeId: string): NodeStatsWindow | null {
    this.rollIfDue(Date.now());
    let w = this.windows.get(nodeId);
    if (!w) {
      if (this.windows.size >= this.o.maxNodes) {
        this.account.dropped(1, 'buffer_full');
        return null;
      }
      w = new NodeStatsWindow(nodeId, this.windowStartMs);
      this.windows.set(nodeId, w);
    }
    return w;
  }

  /** Hands every open window to the writer, ended at `now` (or at the window's end, if that came first). */
  private roll(now: number): void {
    const windows = this.windows;
    this.windows = new Map();
    const end = Math.min(now, this.windowStartMs + this.o.windowMs);
    const hours = this.o.retentionDays * 24;
    for (const w of windows.values()) {
      this.writer.push({ _id: new ObjectId().toHexString(), ...w.close(end), instance: this.o.instanceId, expireAt: hoursLater(w.startMs, hours) });
    }
    this.windowStartMs = this.alignedStart(now);
  }

  private async insert(docs: readonly StoredNodeStats[]): Promise<void> {
    const hours = this.o.retentionDays * 24;
    await insertByBucket(this.db, this.indexes, docs, (d) => dayBucketName(NODE_STATS_PREFIX, hours, d.windowStart.getTime()), this.account);
  }
}
