// The zero plan's asynchronous results (issue 10, part 1): a job of a namespace on `zero` is never written to
// MongoDB, so its output is held here until it is first read (GET /v1/jobs/{id}) or SPACE_ZERO_HOLD_SECONDS
// pass. Why Redis: it is already in memory and on the completion path (one SET with a TTL per job, no index,
// nothing to sweep: the TTL bounds what is held), and losing it loses only what this plan never promised to
// keep. The key names the namespace, so a key of another namespace finds nothing.
import type { RedisKeys, RedisClient } from './client.js';
import type { JobOutput, Usage } from '../domain/protocol.js';

export interface ZeroHeld {
  attempt: number;
  model: string;
  output: JobOutput;
  usage: Usage;
  at: number;
}

export class ZeroHolds {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly ttlSeconds: number,
  ) {}

  private key(namespaceId: string, jobId: string): string {
    return `${this.keys.prefix}zerohold:${namespaceId}:${jobId}`;
  }

  async hold(namespaceId: string, jobId: string, held: ZeroHeld): Promise<void> {
    await this.redis.set(this.key(namespaceId, jobId), JSON.stringify(held), 'EX', this.ttlSeconds);
  }

  /** The held result, removed as it is read (GETDEL: one reader gets it, once); null when none is held. */
  async take(namespaceId: string, jobId: string): Promise<ZeroHeld | null> {
    const raw = await this.redis.getdel(this.key(namespaceId, jobId));
    return raw ? (JSON.parse(raw) as ZeroHeld) : null;
  }

  /** Forgets a held result unread (DELETE /v1/jobs/{id}). */
  async drop(namespaceId: string, jobId: string): Promise<boolean> {
    return (await this.redis.del(this.key(namespaceId, jobId))) === 1;
  }
}
