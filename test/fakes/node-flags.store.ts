// In-memory NodeFlagsStore and mirror (network/node-flags.service.ts) for the service's fast tests.
import type { AdminChange } from '../../src/postgres/admin-changes.repository.js';
import type { NodeFlags } from '../../src/domain/node-flags.js';
import type { NodeFlagsMirrorPort, NodeFlagsStore, NodeFlagsTx, StoredFlags } from '../../src/network/node-flags.service.js';
import { FakeDatabase } from './fake-database.js';

export class FakeNodeFlagsStore implements NodeFlagsStore {
  readonly db = new FakeDatabase({
    /** node id -> operator account */
    nodes: new Map<string, string>(),
    flags: new Map<string, StoredFlags>(),
    adminChanges: [] as AdminChange[],
  });

  addNode(nodeId: string, operator = 'operator-1'): void {
    this.db.state.nodes.set(nodeId, operator);
  }

  operatorOf(nodeId: string): Promise<string | null> {
    this.db.call('operatorOf');
    return Promise.resolve(this.db.state.nodes.get(nodeId) ?? null);
  }

  transaction<T>(fn: (tx: NodeFlagsTx) => Promise<T>): Promise<T> {
    return this.db.transaction(() =>
      fn({
        getForUpdate: (nodeId) => {
          this.db.call('getForUpdate');
          return Promise.resolve(this.db.state.flags.get(nodeId) ?? null);
        },
        put: (nodeId, flags, reason) => {
          this.db.call('put');
          const stored = { ...flags, nodeId, reason };
          this.db.state.flags.set(nodeId, stored);
          return Promise.resolve(stored);
        },
        recordAdminChange: (change) => {
          this.db.call('recordAdminChange');
          this.db.state.adminChanges.push(change);
          return Promise.resolve();
        },
      }),
    );
  }
}

/** The Redis mirror: the flags every reservation would see, and failure streaks within a window. */
export class FakeNodeFlagsMirror implements NodeFlagsMirrorPort {
  readonly flags = new Map<string, NodeFlags>();
  readonly streaks = new Map<string, { count: number; lastAt: number }>();

  write(nodeId: string, f: NodeFlags): Promise<void> {
    // What the mirror keeps: the flags alone (the service hands it the stored row).
    this.flags.set(nodeId, { paused: f.paused, frozen: f.frozen, shadowBanned: f.shadowBanned, cooldownUntil: f.cooldownUntil });
    return Promise.resolve();
  }

  bumpFailures(nodeId: string, windowMs: number): Promise<number> {
    const now = Date.now();
    const s = this.streaks.get(nodeId);
    const count = s && now - s.lastAt <= windowMs ? s.count + 1 : 1;
    this.streaks.set(nodeId, { count, lastAt: now });
    return Promise.resolve(count);
  }

  clearFailures(nodeId: string): Promise<void> {
    this.streaks.delete(nodeId);
    return Promise.resolve();
  }
}
