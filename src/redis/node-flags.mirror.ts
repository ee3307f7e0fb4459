// Also each node's streak of failed attempts, for the cooldown rule (network/node-flags.service.ts).
// The Redis mirror of node flags (the authoritative copy is in PostgreSQL, see migrations/0006): one key
// per flagged node, <p>unroutable:<id>, holding the time (ms) until which it gets no new jobs. The
// reservation script (presence.repository.ts) skips such nodes, so a flag takes effect on every instance
// with the next reservation. An indefinite flag is stored as a far-future time.
import { routable, type NodeFlags } from '../domain/node-flags.js';
import type { RedisKeys, RedisClient } from './client.js';

export const FOREVER_MS = 8_640_000_000_000_000; // the largest time a JavaScript Date can hold

export function unroutableUntil(f: NodeFlags): number | null {
  if (f.paused || f.frozen || f.shadowBanned) return FOREVER_MS;
  return routable(f) ? null : f.cooldownUntil;
}

export class NodeFlagsMirror {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  /** Adds a failed attempt to the node's streak (which lapses after `windowMs` without one); returns its length. */
  async bumpFailures(nodeId: string, windowMs: number): Promise<number> {
    const key = this.keys.failureStreak(nodeId);
    const [[, n]] = (await this.redis.multi().incr(key).pexpire(key, windowMs).exec()) as [[Error | null, number], unknown];
    return n;
  }

  async clearFailures(nodeId: string): Promise<void> {
    await this.redis.del(this.keys.failureStreak(nodeId));
  }

  async write(nodeId: string, f: NodeFlags): Promise<void> {
    const until = unroutableUntil(f);
    if (until === null) await this.redis.del(this.keys.unroutable(nodeId));
    else if (until === FOREVER_MS) await this.redis.set(this.keys.unroutable(nodeId), String(until));
    else await this.redis.set(this.keys.unroutable(nodeId), String(until), 'PXAT', until);
  }
}
