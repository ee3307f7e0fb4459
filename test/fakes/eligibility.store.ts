// In-memory EligibilityStore and mirror (network/eligibility.service.ts) for the service's fast tests.
import type { EligibilityRules } from '../../src/domain/eligibility.js';
import type { AdminChange } from '../../src/postgres/admin-changes.repository.js';
import type { NamespaceRow } from '../../src/postgres/accounts.repository.js';
import type { SubcloudRow } from '../../src/postgres/subclouds.repository.js';
import type { EligibilityMirrorPort, EligibilityStore, EligibilityTx, SubcloudView } from '../../src/network/eligibility.service.js';
import { FakeDatabase } from './fake-database.js';
import { namespaceRow } from './catalog.store.js';

export class FakeEligibilityStore implements EligibilityStore {
  readonly db = new FakeDatabase({
    revision: 0,
    subclouds: new Map<string, SubcloudRow>(),
    /** subcloud -> member node ids */
    members: new Map<string, Set<string>>(),
    nodes: new Set<string>(),
    namespaces: new Map<string, NamespaceRow>(),
    adminChanges: [] as AdminChange[],
  });

  addNode(nodeId: string): void {
    this.db.state.nodes.add(nodeId);
  }

  addNamespace(id: string, network: NamespaceRow['network'] = 'mainnet'): void {
    this.db.state.namespaces.set(id, namespaceRow(id, { network }));
  }

  readRules(): Promise<EligibilityRules> {
    this.db.call('readRules');
    const s = this.db.state;
    return Promise.resolve({
      revision: `fake:${s.revision}`,
      models: [],
      subclouds: [...s.subclouds.values()].map((sc) => ({
        name: sc.name,
        network: sc.network,
        models: sc.allowed_models,
        minGpuMemoryMb: sc.min_gpu_memory_mb,
        isolate: sc.isolate,
        members: [...(s.members.get(sc.name) ?? [])].sort(),
      })),
    });
  }

  revision(): Promise<string> {
    return Promise.resolve(`fake:${this.db.state.revision}`);
  }

  listSubclouds(name?: string): Promise<SubcloudView[]> {
    const s = this.db.state;
    return Promise.resolve(
      [...s.subclouds.values()]
        .filter((sc) => name === undefined || sc.name === name)
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((sc) => ({
          ...sc,
          members: [...(s.members.get(sc.name) ?? [])].sort(),
          namespaces: [...s.namespaces.values()].filter((ns) => ns.subcloud === sc.name).length,
        })),
    );
  }

  transaction<T>(fn: (tx: EligibilityTx) => Promise<T>): Promise<T> {
    const s = () => this.db.state;
    const op = <R>(name: string, f: () => R): Promise<R> => {
      this.db.call(name);
      return Promise.resolve(f());
    };
    return this.db.transaction(() =>
      fn({
        findSubcloud: (name) => op('findSubcloud', () => s().subclouds.get(name) ?? null),
        insertSubcloud: (name, st) =>
          op('insertSubcloud', () => {
            if (s().subclouds.has(name)) return null;
            const now = new Date();
            const row: SubcloudRow = { name, network: st.network, allowed_models: st.allowedModels, min_gpu_memory_mb: st.minGpuMemoryMb, isolate: st.isolate, created_at: now, updated_at: now };
            s().subclouds.set(name, row);
            return row;
          }),
        updateSubcloud: (name, st) =>
          op('updateSubcloud', () => {
            const cur = s().subclouds.get(name);
            if (!cur) return null;
            const row: SubcloudRow = { ...cur, allowed_models: st.allowedModels, min_gpu_memory_mb: st.minGpuMemoryMb, isolate: st.isolate, updated_at: new Date() };
            s().subclouds.set(name, row);
            return row;
          }),
        deleteSubcloud: (name) =>
          op('deleteSubcloud', () => {
            if (!s().subclouds.has(name)) return 'not_found' as const;
            if ([...s().namespaces.values()].some((ns) => ns.subcloud === name)) return 'bound' as const;
            s().subclouds.delete(name);
            s().members.delete(name);
            return 'deleted' as const;
          }),
        addMember: (subcloud, nodeId) =>
          op('addMember', () => {
            const set = s().members.get(subcloud) ?? new Set<string>();
            s().members.set(subcloud, set);
            return set.size !== set.add(nodeId).size;
          }),
        removeMember: (subcloud, nodeId) => op('removeMember', () => s().members.get(subcloud)?.delete(nodeId) ?? false),
        nodeExists: (nodeId) => op('nodeExists', () => s().nodes.has(nodeId)),
        findNamespace: (id) => op('findNamespace', () => s().namespaces.get(id) ?? null),
        bindNamespace: (id, subcloud) =>
          op('bindNamespace', () => {
            const ns = s().namespaces.get(id);
            if (!ns) return null;
            const bound = { ...ns, subcloud };
            s().namespaces.set(id, bound);
            return bound;
          }),
        bumpRevision: () => op('bumpRevision', () => void s().revision++),
        recordAdminChange: (change) => op('recordAdminChange', () => void s().adminChanges.push(change)),
      }),
    );
  }
}

/** The Redis mirror: the last rules it was given, refusing an older revision (as the script does). */
export class FakeEligibilityMirror implements EligibilityMirrorPort {
  rules: EligibilityRules | null = null;
  replaced = 0;
  /** When set, `replace` throws (Redis away). */
  down = false;

  revision(): Promise<string | null> {
    return Promise.resolve(this.rules?.revision ?? null);
  }

  replace(rules: EligibilityRules): Promise<boolean> {
    if (this.down) return Promise.reject(new Error('Redis is down (fake)'));
    const counter = (r: string) => Number(r.split(':')[1]);
    if (this.rules && counter(this.rules.revision) > counter(rules.revision)) return Promise.resolve(false);
    this.rules = rules;
    this.replaced++;
    return Promise.resolve(true);
  }
}
