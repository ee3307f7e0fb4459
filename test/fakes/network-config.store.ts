// In-memory NetworkConfigStore (network/network-config.service.ts) for the service's fast tests: versions
// append-only (a taken version number is refused, as the table's key refuses it), publishing one at a time.
import type { AdminChange } from '../../src/postgres/admin-changes.repository.js';
import type { ModelRow } from '../../src/postgres/models.repository.js';
import type { NetworkConfigRow } from '../../src/postgres/network-configs.repository.js';
import type { NetworkConfigStore, NetworkConfigTx } from '../../src/network/network-config.service.js';
import { FakeDatabase } from './fake-database.js';

export class FakeNetworkConfigStore implements NetworkConfigStore {
  readonly db = new FakeDatabase({
    versions: [] as NetworkConfigRow[],
    models: [] as Array<Pick<ModelRow, 'name' | 'version' | 'content_hash' | 'min_gpu_memory_mb'>>,
    adminChanges: [] as AdminChange[],
  });
  /** Called inside `publishing` after the newest version was read: a competing publisher's moment. */
  racing: (() => void) | null = null;

  latest(): Promise<NetworkConfigRow | null> {
    return Promise.resolve(this.db.state.versions.at(-1) ?? null);
  }

  find(version: number): Promise<NetworkConfigRow | null> {
    return Promise.resolve(this.db.state.versions.find((v) => v.version === version) ?? null);
  }

  list(limit: number): Promise<NetworkConfigRow[]> {
    return Promise.resolve([...this.db.state.versions].reverse().slice(0, limit));
  }

  longestExecutionTimeoutMs(): Promise<number | null> {
    const v = this.db.state.versions;
    return Promise.resolve(v.length === 0 ? null : Math.max(...v.map((r) => r.document.jobs.executionTimeoutMs)));
  }

  publishing<T>(fn: (tx: NetworkConfigTx, latest: NetworkConfigRow | null) => Promise<T>): Promise<T> {
    return this.db.transaction(async () => {
      const latest = this.db.state.versions.at(-1) ?? null;
      this.racing?.();
      return fn(
        {
          listModels: () => Promise.resolve(this.db.state.models.map((m) => m as ModelRow)),
          insert: (c) => {
            this.db.call('insert');
            if (this.db.state.versions.some((v) => v.version === c.version)) return Promise.resolve(null);
            const row: NetworkConfigRow = { version: c.version, digest: c.digest, document: c.document, signature: c.signature, published_at: new Date(), published_by: c.publishedBy };
            this.db.state.versions.push(row);
            return Promise.resolve(row);
          },
          recordAdminChange: (change) => {
            this.db.call('recordAdminChange');
            this.db.state.adminChanges.push(change);
            return Promise.resolve();
          },
        },
        latest,
      );
    });
  }
}
