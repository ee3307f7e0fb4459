// Where snapshots go: a store takes a CAR file and gives it back by its root CID. A local directory is the
// default (nothing to start); IPFS through a Kubo node is the decentralized one. Any other (an
// S3-compatible bucket, a Filecoin pinning service) implements this interface and is named in
// storeFromConfig; nothing else changes.
import type { Config } from '../config.js';
import { LocalDirectoryStore } from './stores/local.store.js';
import { KuboStore } from './stores/kubo.store.js';

export interface SnapshotStore {
  /** How listings name it: `local:<dir>`, `kubo:<url>`. */
  readonly name: string;
  /** Stores the CAR file at `carPath`, whose root is `cid`; idempotent. Throws StoreUnavailableError when unreachable. */
  put(carPath: string, cid: string): Promise<void>;
  /** The CAR of `cid`, as a byte stream. Throws SnapshotNotFoundError, or StoreUnavailableError when unreachable. */
  get(cid: string): Promise<AsyncIterable<Uint8Array>>;
}

/** The store cannot be reached (down, unwritable): work that needs it waits and tries again. */
export class StoreUnavailableError extends Error {
  constructor(store: string, options: { cause: unknown }) {
    super(`snapshot store ${store} is unreachable: ${(options.cause as Error)?.message ?? String(options.cause)}`, options);
    this.name = 'StoreUnavailableError';
  }
}

export class SnapshotNotFoundError extends Error {
  constructor(store: string, cid: string) {
    super(`snapshot ${cid} is not in store ${store}`);
    this.name = 'SnapshotNotFoundError';
  }
}

export function storeFromConfig(config: Pick<Config, 'SNAPSHOT_STORE' | 'SNAPSHOT_DIR' | 'KUBO_API_URL'>): SnapshotStore {
  switch (config.SNAPSHOT_STORE) {
    case 'local':
      return new LocalDirectoryStore(config.SNAPSHOT_DIR);
    case 'kubo':
      return new KuboStore(config.KUBO_API_URL);
  }
}
