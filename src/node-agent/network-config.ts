// The node's copy of the network config (see domain/network-config.ts): the last good version, the one
// it reports in its heartbeats. The gateway names the version in force in `registered` and every
// `heartbeat_ack`; when its digest differs from ours, we fetch GET /io/config and adopt what we get only
// if it checks out against the network address we pin: the digest is the document's, the network key
// signed it, and its version is not below ours (no rollback to an older, genuinely signed version). On
// any failure (gateway unreachable, an error status, a tampered document or signature) we keep the last
// good config and try again at the next announcement.
//
// Persistence: with a file (`networkConfigFile`, `--network-config-file`), every adopted version is
// written to it (atomically: a temporary file renamed over it) and read back at start, so that a node
// restarted while the network is unreachable still holds its last good config. The file is checked like
// a download before it is used (a file edited by hand is refused). Without a file the config is kept in
// memory only, and a restarted agent holds none until it reaches a gateway.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { verifyNetworkConfig, type SignedNetworkConfig } from '../domain/network-config.js';
import { describeError } from './errors.js';

export interface NetworkConfigKeeperOptions {
  /** GET endpoint serving the config in force (gateway-urls.ts). */
  url: string;
  /** Where the last good config is kept across restarts; unset: memory only. */
  file?: string;
  logger: Logger;
  fetchTimeoutMs?: number;
  /** Called with each version adopted (not with one read back from the file). */
  onAdopt?: (config: SignedNetworkConfig) => void;
}

export type FollowOutcome = 'current' | 'adopted' | 'kept' | 'busy';

export class NetworkConfigKeeper {
  private config: SignedNetworkConfig | null = null;
  /** Read from the file before the network address was known: checked once it is (trust). */
  private unverified: unknown = null;
  private following: Promise<FollowOutcome> | null = null;
  /** Why the last fetch was not adopted (null after a success): for logs and tests. */
  lastProblem: string | null = null;

  constructor(private readonly o: NetworkConfigKeeperOptions) {}

  get current(): SignedNetworkConfig | null {
    return this.config;
  }

  get digest(): string | null {
    return this.config?.digest ?? null;
  }

  /** Reads the file, if any; its content is used once `trust` names the network it must be signed by. */
  async load(): Promise<void> {
    if (!this.o.file) return;
    try {
      this.unverified = JSON.parse(await readFile(this.o.file, 'utf8')) as unknown;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.o.logger.warn({ file: this.o.file, err: describeError(err) }, 'cannot read the saved network config; ignoring it');
    }
  }

  /** The network address is known (configured or pinned): the saved config is checked against it. */
  trust(networkAddress: string): void {
    if (this.unverified === null) return;
    const saved = this.unverified;
    this.unverified = null;
    const checked = verifyNetworkConfig(saved, networkAddress);
    if (!checked.ok) {
      this.o.logger.warn({ file: this.o.file, reason: checked.reason }, 'the saved network config does not verify; ignoring it');
      return;
    }
    if (!this.config || checked.config.version > this.config.version) {
      this.config = checked.config;
      this.o.logger.info({ version: checked.config.version, digest: checked.config.digest }, 'network config loaded from file');
    }
  }

  /**
   * The gateway announced the version in force: fetches and adopts it when its digest differs from ours.
   * One fetch at a time ('busy' while one runs). Never throws: a failure keeps the last good config.
   */
  follow(announced: { version: number; digest: string }, networkAddress: string | undefined): Promise<FollowOutcome> {
    if (announced.digest === this.digest) return Promise.resolve('current');
    if (this.following) return Promise.resolve('busy');
    this.following = this.fetchAndAdopt(networkAddress).finally(() => {
      this.following = null;
    });
    return this.following;
  }

  private async fetchAndAdopt(networkAddress: string | undefined): Promise<FollowOutcome> {
    const keep = (problem: string): FollowOutcome => {
      this.lastProblem = problem;
      this.o.logger.warn({ problem, kept: this.config ? { version: this.config.version, digest: this.config.digest } : null }, 'network config not adopted; keeping the last good one');
      return 'kept';
    };
    if (networkAddress === undefined) return keep('the network address is not known yet');
    let served: unknown;
    try {
      const res = await fetch(this.o.url, { signal: AbortSignal.timeout(this.o.fetchTimeoutMs ?? 10_000), headers: { accept: 'application/json' } });
      if (!res.ok) return keep(`GET ${this.o.url} answered ${res.status}`);
      served = await res.json();
    } catch (err) {
      return keep(`GET ${this.o.url} failed: ${describeError(err)}`);
    }
    const checked = verifyNetworkConfig(served, networkAddress);
    if (!checked.ok) return keep(`refused: ${checked.reason}`);
    const next = checked.config;
    if (this.config && next.version < this.config.version) return keep(`refused: version ${next.version} is older than the version ${this.config.version} held`);
    if (this.config && next.version === this.config.version && next.digest !== this.config.digest) {
      return keep(`refused: a second document claims version ${next.version}`);
    }
    this.config = next;
    this.lastProblem = null;
    this.o.logger.info({ version: next.version, digest: next.digest }, 'network config adopted');
    await this.save(next);
    this.o.onAdopt?.(next);
    return 'adopted';
  }

  private async save(config: SignedNetworkConfig): Promise<void> {
    if (!this.o.file) return;
    const tmp = `${this.o.file}.tmp`;
    try {
      await mkdir(dirname(this.o.file), { recursive: true });
      await writeFile(tmp, `${JSON.stringify(config)}\n`, { mode: 0o600 });
      await rename(tmp, this.o.file);
    } catch (err) {
      // The config is adopted all the same; only a restart without the network would miss it.
      this.o.logger.warn({ file: this.o.file, err: describeError(err) }, 'cannot save the network config');
    }
  }
}
