// Replay protection for signed node messages: a message's nonce is accepted once within the window in
// which its timestamp is valid; outside that window the timestamp check refuses it. Registration
// challenges are one-time values issued by the gateway, consumed on use.
import type { RedisKeys, RedisClient } from './client.js';

export class ReplayGuard {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly windowMs: number,
  ) {}

  /** True the first time (nodeId, nonce) is seen within the window; false for a replay. */
  async firstUse(nodeId: string, nonce: string): Promise<boolean> {
    const r = await this.redis.set(this.keys.nonce(nodeId, nonce), '1', 'PX', this.windowMs * 2, 'NX');
    return r === 'OK';
  }

  /** True when the message timestamp is within the window of the server's clock. */
  fresh(ts: number, now = Date.now()): boolean {
    return Math.abs(now - ts) <= this.windowMs;
  }
}
