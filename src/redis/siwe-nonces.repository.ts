// Sign-In with Ethereum nonces: issued by the server, valid for a short time, usable once. A nonce lives
// only in Redis; losing Redis only makes users ask for a new one.
import { randomBytes } from 'node:crypto';
import type { RedisKeys, RedisClient } from './client.js';

export class SiweNonces {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly ttlSeconds: number,
  ) {}

  /** A fresh nonce (128 random bits as 32 hex digits: EIP-4361 wants letters and digits only). */
  async issue(): Promise<{ nonce: string; expiresAt: Date }> {
    const nonce = randomBytes(16).toString('hex');
    await this.redis.set(this.keys.siweNonce(nonce), '1', 'EX', this.ttlSeconds);
    return { nonce, expiresAt: new Date(Date.now() + this.ttlSeconds * 1000) };
  }

  /**
   * Uses up a nonce: true for exactly one caller, and only while it is issued and unexpired. DEL is
   * atomic, so two sign-ins racing with one nonce cannot both win.
   */
  async consume(nonce: string): Promise<boolean> {
    return (await this.redis.del(this.keys.siweNonce(nonce))) === 1;
  }
}
