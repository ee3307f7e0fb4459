// The Redis mirror of node scores (PostgreSQL's node_scores is the record): one hash, node id → score,
// read by the reservation script to weight its choice; and of the jobs each node completed, from which it
// earns slots (slow start). Rewritten whole by the quality service at every
// pass, so it is back within one pass after a loss of Redis; until then every node counts as new.
import type { RedisKeys, RedisClient } from './client.js';

export class ScoresMirror {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  async write(scores: ReadonlyMap<string, number>): Promise<void> {
    if (scores.size === 0) return;
    await this.redis.hset(this.keys.nodeScores(), Object.fromEntries([...scores].map(([id, s]) => [id, s.toFixed(6)])));
  }

  /**
   * Sets the jobs each node completed over the scores window, from which it earns slots (slow start:
   * readiness.lua.ts node-earned); completions since are counted in Redis as they happen.
   */
  async writeEarned(completed: ReadonlyMap<string, number>): Promise<void> {
    if (completed.size === 0) return;
    await this.redis.hset(this.keys.nodeEarned(), Object.fromEntries(completed));
  }

}
