// The network config service's store (network/network-config.service.ts NetworkConfigStore) on
// PostgreSQL: the repository functions bound to the pool, and to the publishing transaction (under its
// advisory lock). It matches the port by shape (checked where the service is built).
import { recordAdminChange, type AdminChange } from './admin-changes.repository.js';
import { ADVISORY_LOCKS, withTransactionLock } from './advisory-lock.js';
import type { Db, Tx } from './db.js';
import { listModels } from './models.repository.js';
import {
  findNetworkConfig,
  insertNetworkConfig,
  latestNetworkConfig,
  listNetworkConfigs,
  longestExecutionTimeoutMs,
  type NetworkConfigRow,
} from './network-configs.repository.js';

export function networkConfigStore(db: Db) {
  const inTransaction = (tx: Tx) => ({
    listModels: () => listModels(tx),
    insert: (c: Parameters<typeof insertNetworkConfig>[1]) => insertNetworkConfig(tx, c),
    recordAdminChange: (change: AdminChange) => recordAdminChange(tx, change),
  });
  return {
    latest: () => latestNetworkConfig(db),
    find: (version: number) => findNetworkConfig(db, version),
    list: (limit: number) => listNetworkConfigs(db, limit),
    longestExecutionTimeoutMs: () => longestExecutionTimeoutMs(db),
    publishing: <T>(fn: (tx: ReturnType<typeof inTransaction>, latest: NetworkConfigRow | null) => Promise<T>) =>
      withTransactionLock(db, ADVISORY_LOCKS.networkConfig, async (tx) => fn(inTransaction(tx), await latestNetworkConfig(tx))),
  };
}
