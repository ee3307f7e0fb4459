// The eligibility rules the admin sets (issue 4, part 2): subclouds, their members, namespaces bound to
// them; plus keeping their Redis mirror in step with PostgreSQL (see redis/eligibility.mirror.ts).
//
// Every change commits in PostgreSQL with a bump of the eligibility revision, then replaces the mirror
// at once: the next reservation on every instance sees it. Should the mirror write fail (Redis away),
// the change stays committed and the maintenance role mirrors it as soon as Redis answers (it compares
// revisions on every tick); a reservation that finds no mirror at all rebuilds it itself (presence
// repository's `resync`).
//
// A subcloud's network is fixed when it is created: the namespaces bound to it and the jobs they have
// queued were placed on that network. Namespace bindings are not mirrored: a job carries its
// namespace's subcloud from the moment it is accepted (jobs.subcloud), and accepting reads the
// namespace from PostgreSQL, so a new binding applies to the next job accepted.
import { isAddress } from '../domain/signatures.js';
import { errors } from '../errors.js';
import {
  MAX_GPU_MEMORY_MB,
  MODEL_NAME_PATTERN,
  NETWORKS,
  SUBCLOUD_NAME_PATTERN,
  type Network,
} from '../domain/eligibility.js';
import type { EligibilityRules } from '../domain/eligibility.js';
import type { NamespaceRow } from '../postgres/accounts.repository.js';
import type { SubcloudRow, SubcloudSettings } from '../postgres/subclouds.repository.js';
import type { EligibilityMirror } from '../redis/eligibility.mirror.js';
import { SYSTEM_ACTOR, type AdminChange } from '../postgres/admin-changes.repository.js';

const MAX_ALLOWED_MODELS = 256;

export interface SubcloudPolicy {
  /** Models its members serve for it; empty: every model. */
  allowedModels?: string[];
  /** The least GPU memory (MiB) a member needs to take its jobs (beside each model's own floor). */
  minGpuMemoryMb?: number;
  /** Its members serve only its jobs. */
  isolate?: boolean;
}

export type SubcloudView = SubcloudRow & { members: string[]; namespaces: number };

/**
 * What the service needs from PostgreSQL (postgres/eligibility.store.ts; in memory:
 * test/fakes/eligibility.store.ts).
 */
export interface EligibilityStore {
  /** Every rule, read in one snapshot (what the mirror is replaced with). */
  readRules(): Promise<EligibilityRules>;
  /** The revision the rules are at (bumped by every change). */
  revision(): Promise<string>;
  /** The subclouds with their members and bound namespaces' count; `name`: that one only. */
  listSubclouds(name?: string): Promise<SubcloudView[]>;
  /** All of `fn` or none of it. */
  transaction<T>(fn: (tx: EligibilityTx) => Promise<T>): Promise<T>;
}

export interface EligibilityTx {
  /** `forUpdate`: locked to the end of the transaction. */
  findSubcloud(name: string, forUpdate?: boolean): Promise<SubcloudRow | null>;
  /** null: the name is taken. */
  insertSubcloud(name: string, settings: SubcloudSettings): Promise<SubcloudRow | null>;
  updateSubcloud(name: string, settings: Omit<SubcloudSettings, 'network'>): Promise<SubcloudRow | null>;
  deleteSubcloud(name: string): Promise<'deleted' | 'not_found' | 'bound'>;
  /** false: already a member. */
  addMember(subcloud: string, nodeId: string): Promise<boolean>;
  /** false: was not a member. */
  removeMember(subcloud: string, nodeId: string): Promise<boolean>;
  nodeExists(nodeId: string): Promise<boolean>;
  findNamespace(namespaceId: string): Promise<NamespaceRow | null>;
  bindNamespace(namespaceId: string, subcloud: string | null): Promise<NamespaceRow | null>;
  bumpRevision(): Promise<void>;
  recordAdminChange(change: AdminChange): Promise<void>;
}

/** The Redis side (redis/eligibility.mirror.ts). */
export type EligibilityMirrorPort = Pick<EligibilityMirror, 'replace' | 'revision'>;

export class EligibilityService {
  private syncing: Promise<void> | null = null;

  constructor(private readonly d: { store: EligibilityStore; mirror: EligibilityMirrorPort }) {}

  /**
   * Replaces the Redis mirror with the rules in PostgreSQL. Concurrent callers in this process share one
   * run; the mirror itself refuses a snapshot older than the one it holds.
   */
  sync(): Promise<void> {
    this.syncing ??= (async () => {
      try {
        const rules = await this.d.store.readRules();
        await this.d.mirror.replace(rules);
      } finally {
        this.syncing = null;
      }
    })();
    return this.syncing;
  }

  /** Mirrors the rules when the mirror is missing or at another revision (maintenance, every tick). */
  async syncIfStale(): Promise<boolean> {
    const [mirrored, current] = await Promise.all([this.d.mirror.revision(), this.d.store.revision()]);
    if (mirrored === current) return false;
    await this.sync();
    return true;
  }

  list(): Promise<SubcloudView[]> {
    return this.d.store.listSubclouds();
  }

  async get(name: string): Promise<SubcloudView> {
    const [found] = await this.d.store.listSubclouds(name);
    if (!found) throw errors.notFound('Subcloud');
    return found;
  }

  // Every change below is logged in the admin change log as `actor`'s, in its own transaction.

  async create(name: string, network: Network, policy: SubcloudPolicy = {}, actor: string = SYSTEM_ACTOR): Promise<SubcloudView> {
    if (!SUBCLOUD_NAME_PATTERN.test(name)) throw errors.invalid('subcloud names are 1-63 of a-z, 0-9, _ and -, starting with a letter or digit', 'name');
    if (!(NETWORKS as readonly string[]).includes(network)) throw errors.invalid(`network must be one of ${NETWORKS.join(', ')}`, 'network');
    const settings = { network, ...checkPolicy(policy, { allowedModels: [], minGpuMemoryMb: 0, isolate: false }) };
    const created = await this.change(async (tx) => {
      const row = await tx.insertSubcloud(name, settings);
      return row && { result: row, log: { action: 'subcloud.create', subject: name, before: null, after: row } };
    }, actor);
    if (!created) throw errors.conflict(`A subcloud named '${name}' already exists.`);
    return this.get(name);
  }

  /** Changes the policy fields given; the others stay as they were. */
  async update(name: string, policy: SubcloudPolicy, actor: string = SYSTEM_ACTOR): Promise<SubcloudView> {
    const updated = await this.change(async (tx) => {
      const current = await tx.findSubcloud(name, true);
      if (!current) return null;
      const row = await tx.updateSubcloud(name, checkPolicy(policy, { allowedModels: current.allowed_models, minGpuMemoryMb: current.min_gpu_memory_mb, isolate: current.isolate }));
      return row && { result: row, log: { action: 'subcloud.update', subject: name, before: current, after: row } };
    }, actor);
    if (!updated) throw errors.notFound('Subcloud');
    return this.get(name);
  }

  async delete(name: string, actor: string = SYSTEM_ACTOR): Promise<void> {
    const outcome = await this.change(async (tx) => {
      const before = await tx.findSubcloud(name, true);
      const result = await tx.deleteSubcloud(name);
      return { result, log: result === 'deleted' ? { action: 'subcloud.delete', subject: name, before, after: null } : null };
    }, actor);
    if (outcome === 'not_found') throw errors.notFound('Subcloud');
    if (outcome === 'bound') throw errors.conflict(`Namespaces are bound to subcloud '${name}'; unbind them first.`);
  }

  async addMember(name: string, nodeId: string, actor: string = SYSTEM_ACTOR): Promise<SubcloudView> {
    if (!isAddress(nodeId)) throw errors.invalid('node ids are lower-case addresses: 0x and 40 hex digits', 'node_id');
    await this.change(async (tx) => {
      if (!(await tx.findSubcloud(name, true))) throw errors.notFound('Subcloud');
      // A node exists once it has registered (bound to its operator); it can be made a member from then on.
      if (!(await tx.nodeExists(nodeId))) throw errors.notFound('Node');
      const added = await tx.addMember(name, nodeId);
      return { result: added, log: added ? { action: 'subcloud.member_add', subject: name, before: null, after: { node: nodeId } } : null };
    }, actor);
    return this.get(name);
  }

  async removeMember(name: string, nodeId: string, actor: string = SYSTEM_ACTOR): Promise<SubcloudView> {
    const removed = await this.change(async (tx) => {
      const gone = await tx.removeMember(name, nodeId);
      return { result: gone, log: gone ? { action: 'subcloud.member_remove', subject: name, before: { node: nodeId }, after: null } : null };
    }, actor);
    if (!removed) throw errors.notFound('Subcloud member');
    return this.get(name);
  }

  /** Binds a namespace to a subcloud of its network (null: unbinds); applies to jobs accepted from now on. */
  async bindNamespace(namespaceId: string, subcloud: string | null, actor: string = SYSTEM_ACTOR): Promise<NamespaceRow> {
    return this.d.store.transaction(async (tx) => {
      const ns = await tx.findNamespace(namespaceId);
      if (!ns) throw errors.notFound('Namespace');
      if (subcloud !== null) {
        const sc = await tx.findSubcloud(subcloud);
        if (!sc) throw errors.notFound('Subcloud');
        if (sc.network !== ns.network) {
          throw errors.invalid(`Subcloud '${subcloud}' serves ${sc.network}; the namespace is on ${ns.network}.`, 'subcloud');
        }
      }
      const bound = (await tx.bindNamespace(namespaceId, subcloud))!;
      await tx.recordAdminChange({ actor, action: 'namespace.subcloud_bind', subject: namespaceId, before: { subcloud: ns.subcloud }, after: { subcloud: bound.subcloud } });
      return bound;
    });
  }

  /**
   * Runs a change with a revision bump and its admin change log entry (when the change happened) in one
   * transaction, then mirrors the rules.
   */
  private async change<T>(fn: (tx: EligibilityTx) => Promise<{ result: T; log: Omit<AdminChange, 'actor'> | null } | null>, actor: string): Promise<T | null> {
    const outcome = await this.d.store.transaction(async (tx) => {
      const done = await fn(tx);
      if (done?.log) await tx.recordAdminChange({ actor, ...done.log });
      await tx.bumpRevision();
      return done;
    });
    await this.sync();
    return outcome === null ? null : outcome.result;
  }
}

/** Validates the policy fields given and fills the others from `current`. */
function checkPolicy(p: SubcloudPolicy, current: Required<SubcloudPolicy>): Required<SubcloudPolicy> {
  const allowedModels = p.allowedModels === undefined ? current.allowedModels : [...new Set(p.allowedModels)].sort();
  if (allowedModels.length > MAX_ALLOWED_MODELS) throw errors.invalid(`at most ${MAX_ALLOWED_MODELS} allowed models`, 'allowed_models');
  const bad = allowedModels.find((m) => !MODEL_NAME_PATTERN.test(m));
  if (bad !== undefined) throw errors.invalid(`'${bad}' is not a model name`, 'allowed_models');
  const minGpuMemoryMb = p.minGpuMemoryMb ?? current.minGpuMemoryMb;
  if (!Number.isSafeInteger(minGpuMemoryMb) || minGpuMemoryMb < 0 || minGpuMemoryMb > MAX_GPU_MEMORY_MB) {
    throw errors.invalid(`min_gpu_memory_mb must be a whole number of MiB from 0 to ${MAX_GPU_MEMORY_MB}`, 'min_gpu_memory_mb');
  }
  return { allowedModels, minGpuMemoryMb, isolate: p.isolate ?? current.isolate };
}
