// The zero plan's asynchronous results (issue 10, part 1): a job of a namespace on `zero` is never written to
// MongoDB, so its output is held here until it is first read (GET /v1/jobs/{id}) or SPACE_ZERO_HOLD_SECONDS
// pass. Why Redis: it is already in memory and on the completion path (one SET with a TTL per job, no index,
// nothing to sweep: the TTL bounds what is held), and losing it loses only what this plan never promised to
// keep. The key names the namespace, so a key of another namespace finds nothing.
//
// With a cipher (the backbone's payload keys, space/payload-keys.service.ts) the value is sealed under its
// namespace's key like a MongoDB payload: a dump of Redis shows no output, and a crypto-shredded namespace's
// held results no longer open. The value says which it is by its first byte (a sealed box is marked,
// JSON in clear starts with `{`).
import type { RedisKeys, RedisClient } from './client.js';
import type { JobOutput, Usage } from '../domain/protocol.js';

export interface ZeroHeld {
  attempt: number;
  model: string;
  output: JobOutput;
  usage: Usage;
  at: number;
}

/** Seals a held result under its namespace's key, bound to its job; opens it while that key exists. */
export interface HeldResultCipher {
  sealHeld(namespaceId: string, jobId: string, plaintext: Buffer): Promise<Buffer>;
  /** null when the box does not open: its namespace's key was shredded, or it is not this job's. */
  openHeld(namespaceId: string, jobId: string, box: Buffer): Promise<Buffer | null>;
}

/** The first byte of a sealed value (never the first of JSON). */
const SEALED = 0x01;

export class ZeroHolds {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly ttlSeconds: number,
    /** Without one (no PAYLOAD_MASTER_KEYS), results are held in clear, as payloads are stored then. */
    private readonly cipher: HeldResultCipher | null = null,
  ) {}

  private key(namespaceId: string, jobId: string): string {
    return `${this.keys.prefix}zerohold:${namespaceId}:${jobId}`;
  }

  async hold(namespaceId: string, jobId: string, held: ZeroHeld): Promise<void> {
    const json = Buffer.from(JSON.stringify(held));
    const value = this.cipher ? Buffer.concat([Buffer.of(SEALED), await this.cipher.sealHeld(namespaceId, jobId, json)]) : json;
    await this.redis.set(this.key(namespaceId, jobId), value, 'EX', this.ttlSeconds);
  }

  /**
   * The held result, removed as it is read (GETDEL: one reader gets it, once); null when none is held, or
   * when it no longer opens (its namespace was deleted).
   */
  async take(namespaceId: string, jobId: string): Promise<ZeroHeld | null> {
    const raw = await this.redis.getdelBuffer(this.key(namespaceId, jobId));
    if (!raw || raw.length === 0) return null;
    if (raw[0] !== SEALED) return JSON.parse(raw.toString('utf8')) as ZeroHeld;
    const opened = this.cipher ? await this.cipher.openHeld(namespaceId, jobId, raw.subarray(1)) : null;
    return opened ? (JSON.parse(opened.toString('utf8')) as ZeroHeld) : null;
  }

  /** Forgets a held result unread (DELETE /v1/jobs/{id}). */
  async drop(namespaceId: string, jobId: string): Promise<boolean> {
    return (await this.redis.del(this.key(namespaceId, jobId))) === 1;
  }
}
