// The eligibility rules the admin sets (issue 4, part 2): subclouds, their members, namespaces bound to
// them; plus keeping their Redis mirror in step with PostgreSQL (see redis/eligibility.repository.ts).
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
import { withTransaction, type Db, type Queryable } from '../postgres/db.js';
import { nodeExists } from '../postgres/nodes.repository.js';
import { bindNamespace, findNamespace, type NamespaceRow } from '../postgres/accounts.repository.js';
import {
  addSubcloudMember,
  bumpEligibilityRevision,
  deleteSubcloud,
  eligibilityRevision,
  findSubcloud,
  insertSubcloud,
  listSubclouds,
  readEligibilityRules,
  removeSubcloudMember,
  updateSubcloud,
  type SubcloudRow,
} from '../postgres/subclouds.repository.js';
import type { EligibilityMirror } from '../redis/eligibility.repository.js';
import { recordAdminChange, SYSTEM_ACTOR, type AdminChange } from '../postgres/admin-changes.repository.js';

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

export class EligibilityService {
  private syncing: Promise<void> | null = null;

  constructor(private readonly d: { db: Db; mirror: EligibilityMirror }) {}

  /**
   * Replaces the Redis mirror with the rules in PostgreSQL. Concurrent callers in this process share one
   * run; the mirror itself refuses a snapshot older than the one it holds.
   */
  sync(): Promise<void> {
    this.syncing ??= (async () => {
      try {
        const rules = await withTransaction(this.d.db, (tx) => readEligibilityRules(tx), { isolation: 'snapshot', readOnly: true });
        await this.d.mirror.replace(rules);
      } finally {
        this.syncing = null;
      }
    })();
    return this.syncing;
  }

  /** Mirrors the rules when the mirror is missing or at another revision (maintenance, every tick). */
  async syncIfStale(): Promise<boolean> {
    const [mirrored, current] = await Promise.all([this.d.mirror.revision(), eligibilityRevision(this.d.db)]);
    if (mirrored === current) return false;
    await this.sync();
    return true;
  }

  list(): Promise<SubcloudView[]> {
    return listSubclouds(this.d.db);
  }

  async get(name: string): Promise<SubcloudView> {
    const [found] = await listSubclouds(this.d.db, name);
    if (!found) throw errors.notFound('Subcloud');
    return found;
  }

  // Every change below is logged in the admin change log as `actor`'s, in its own transaction.

  async create(name: string, network: Network, policy: SubcloudPolicy = {}, actor: string = SYSTEM_ACTOR): Promise<SubcloudView> {
    if (!SUBCLOUD_NAME_PATTERN.test(name)) throw errors.invalid('subcloud names are 1-63 of a-z, 0-9, _ and -, starting with a letter or digit', 'name');
    if (!(NETWORKS as readonly string[]).includes(network)) throw errors.invalid(`network must be one of ${NETWORKS.join(', ')}`, 'network');
    const settings = { network, ...checkPolicy(policy, { allowedModels: [], minGpuMemoryMb: 0, isolate: false }) };
    const created = await this.change(async (tx) => {
      const row = await insertSubcloud(tx, name, settings);
      return row && { result: row, log: { action: 'subcloud.create', subject: name, before: null, after: row } };
    }, actor);
    if (!created) throw errors.conflict(`A subcloud named '${name}' already exists.`);
    return this.get(name);
  }

  /** Changes the policy fields given; the others stay as they were. */
  async update(name: string, policy: SubcloudPolicy, actor: string = SYSTEM_ACTOR): Promise<SubcloudView> {
    const updated = await this.change(async (tx) => {
      const current = await findSubcloud(tx, name, true);
      if (!current) return null;
      const row = await updateSubcloud(tx, name, checkPolicy(policy, { allowedModels: current.allowed_models, minGpuMemoryMb: current.min_gpu_memory_mb, isolate: current.isolate }));
      return row && { result: row, log: { action: 'subcloud.update', subject: name, before: current, after: row } };
    }, actor);
    if (!updated) throw errors.notFound('Subcloud');
    return this.get(name);
  }

  async delete(name: string, actor: string = SYSTEM_ACTOR): Promise<void> {
    const outcome = await this.change(async (tx) => {
      const before = await findSubcloud(tx, name, true);
      const result = await deleteSubcloud(tx, name);
      return { result, log: result === 'deleted' ? { action: 'subcloud.delete', subject: name, before, after: null } : null };
    }, actor);
    if (outcome === 'not_found') throw errors.notFound('Subcloud');
    if (outcome === 'bound') throw errors.conflict(`Namespaces are bound to subcloud '${name}'; unbind them first.`);
  }

  async addMember(name: string, nodeId: string, actor: string = SYSTEM_ACTOR): Promise<SubcloudView> {
    if (!isAddress(nodeId)) throw errors.invalid('node ids are lower-case addresses: 0x and 40 hex digits', 'node_id');
    await this.change(async (tx) => {
      if (!(await findSubcloud(tx, name, true))) throw errors.notFound('Subcloud');
      // A node exists once it has registered (bound to its operator); it can be made a member from then on.
      if (!(await nodeExists(tx, nodeId))) throw errors.notFound('Node');
      const added = await addSubcloudMember(tx, name, nodeId);
      return { result: added, log: added ? { action: 'subcloud.member_add', subject: name, before: null, after: { node: nodeId } } : null };
    }, actor);
    return this.get(name);
  }

  async removeMember(name: string, nodeId: string, actor: string = SYSTEM_ACTOR): Promise<SubcloudView> {
    const removed = await this.change(async (tx) => {
      const gone = await removeSubcloudMember(tx, name, nodeId);
      return { result: gone, log: gone ? { action: 'subcloud.member_remove', subject: name, before: { node: nodeId }, after: null } : null };
    }, actor);
    if (!removed) throw errors.notFound('Subcloud member');
    return this.get(name);
  }

  /** Binds a namespace to a subcloud of its network (null: unbinds); applies to jobs accepted from now on. */
  async bindNamespace(namespaceId: string, subcloud: string | null, actor: string = SYSTEM_ACTOR): Promise<NamespaceRow> {
    return withTransaction(this.d.db, async (tx) => {
      const ns = await findNamespace(tx, namespaceId);
      if (!ns) throw errors.notFound('Namespace');
      if (subcloud !== null) {
        const sc = await findSubcloud(tx, subcloud);
        if (!sc) throw errors.notFound('Subcloud');
        if (sc.network !== ns.network) {
          throw errors.invalid(`Subcloud '${subcloud}' serves ${sc.network}; the namespace is on ${ns.network}.`, 'subcloud');
        }
      }
      const bound = (await bindNamespace(tx, namespaceId, subcloud))!;
      await recordAdminChange(tx, { actor, action: 'namespace.subcloud_bind', subject: namespaceId, before: { subcloud: ns.subcloud }, after: { subcloud: bound.subcloud } });
      return bound;
    });
  }

  /**
   * Runs a change with a revision bump and its admin change log entry (when the change happened) in one
   * transaction, then mirrors the rules.
   */
  private async change<T>(fn: (tx: Queryable) => Promise<{ result: T; log: Omit<AdminChange, 'actor'> | null } | null>, actor: string): Promise<T | null> {
    const outcome = await withTransaction(this.d.db, async (tx) => {
      const done = await fn(tx);
      if (done?.log) await recordAdminChange(tx, { actor, ...done.log });
      await bumpEligibilityRevision(tx);
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
