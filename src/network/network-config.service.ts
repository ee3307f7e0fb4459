// The network config on the backbone side (see domain/network-config.ts for the document and its trust):
// publishing versions (admin API and CLI), making the genesis version, serving versions, and the
// in-process view every role reads its parameters from.
//
// Publishing: under a PostgreSQL advisory lock (one publisher at a time), the next version is built from
// the models table as it is now and the job, heartbeat, runtime and participation settings given, each
// defaulting to the previous version's; it is validated, signed with the network key, stored and logged
// in the admin change log, in one transaction. Genesis: when no version exists, the gate role makes
// version 1 from the environment's parameters (MAX_TOKENS_DEFAULT, JOB_ATTEMPT_TIMEOUT_MS,
// JOB_MAX_ATTEMPTS, HEARTBEAT_TTL_MS) and the models table; instances starting together serialize on the
// same lock, and the unique version keeps a lost lock harmless.
//
// Following a publish: each instance re-reads the newest version every REFRESH_MS (one indexed row) and
// at once after publishing itself, so every instance applies a new version within a few seconds. Until
// a version exists (an instance without the gate role started before any gate did), the environment's
// parameters apply, which are what genesis will state.
import type { Logger } from 'pino';
import { capacityRulesSchema, type CapacityRules } from '../domain/capacity.js';
import { z } from 'zod';
import type { Config } from '../config.js';
import { errors } from '../errors.js';
import {
  buildNetworkConfig,
  configModelOf,
  heartbeatParametersFields,
  jobParametersFields,
  parametersFromEnv,
  participationRulesSchema,
  runtimeRequirementSchema,
  signNetworkConfig,
  signingMessage,
  type HeartbeatParameters,
  type JobParameters,
  type NetworkConfig,
  type ParticipationRules,
  type RuntimeRequirement,
  type SignedNetworkConfig,
} from '../domain/network-config.js';
import type { ModelRow } from '../postgres/models.repository.js';
import { SYSTEM_ACTOR, type AdminChange } from '../postgres/admin-changes.repository.js';
import type { NetworkConfigRow } from '../postgres/network-configs.repository.js';
import type { NodeConfigDigests } from '../redis/node-config-digests.repository.js';
import { addressOf, recoverPersonal } from '../domain/signatures.js';

const REFRESH_MS = 2_000;

/** What a role reads of the version in force; the environment's values before any version exists. */
export interface CurrentNetworkConfig {
  /** The version in force, null before genesis. */
  current(): SignedNetworkConfig | null;
  jobs(): JobParameters;
  heartbeat(): HeartbeatParameters;
  participation(): ParticipationRules;
  /** Slow start and capacity caps (domain/capacity.ts). */
  capacity(): CapacityRules;
  /** The longest execution timeout of any version (and the environment's): what sizes leak clean-ups. */
  longestExecutionTimeoutMs(): number;
}

/** What an admin may set when publishing; every field left out keeps the previous version's value. */
export const publishInputSchema = z
  .object({
    jobs: jobParametersFields.partial().strict().optional(),
    heartbeat: heartbeatParametersFields.partial().strict().optional(),
    runtimes: z.array(runtimeRequirementSchema).max(64).optional(),
    participation: participationRulesSchema.partial().strict().optional(),
    capacity: capacityRulesSchema.partial().strict().optional(),
  })
  .strict();
export type PublishInput = z.infer<typeof publishInputSchema>;

export type PublishedConfig = SignedNetworkConfig & { publishedAt: Date; publishedBy: string };

/**
 * What the service needs from PostgreSQL (postgres/network-config.store.ts; in memory:
 * test/fakes/network-config.store.ts).
 */
export interface NetworkConfigStore {
  /** The newest version (the highest), null before genesis. */
  latest(): Promise<NetworkConfigRow | null>;
  find(version: number): Promise<NetworkConfigRow | null>;
  /** Newest first. */
  list(limit: number): Promise<NetworkConfigRow[]>;
  /** The longest execution timeout of any version, null before genesis. */
  longestExecutionTimeoutMs(): Promise<number | null>;
  /**
   * Runs `fn` holding the publishing lock, in one transaction, with the newest version read under it: one
   * publisher at a time, all of `fn` or none of it.
   */
  publishing<T>(fn: (tx: NetworkConfigTx, latest: NetworkConfigRow | null) => Promise<T>): Promise<T>;
}

export interface NetworkConfigTx {
  listModels(): Promise<ModelRow[]>;
  /** null: that version number was taken meanwhile. */
  insert(c: { version: number; digest: string; document: NetworkConfig; signature: string; publishedBy: string }): Promise<NetworkConfigRow | null>;
  recordAdminChange(change: AdminChange): Promise<void>;
}

export interface NetworkConfigDeps {
  store: NetworkConfigStore;
  /** The network key; null on instances that do not publish (they only read). */
  networkKey: string | null;
  config: Pick<Config, 'MAX_TOKENS_DEFAULT' | 'JOB_ATTEMPT_TIMEOUT_MS' | 'JOB_MAX_ATTEMPTS' | 'HEARTBEAT_TTL_MS' | 'NODE_START_SLOTS'>;
  nodeDigests: Pick<NodeConfigDigests, 'online'>;
  logger: Logger;
}

export class NetworkConfigService implements CurrentNetworkConfig {
  private cached: PublishedConfig | null = null;
  private longestTimeoutMs: number;
  private readonly env: ReturnType<typeof parametersFromEnv>;
  private timer: NodeJS.Timeout | null = null;
  private refreshing: Promise<void> | null = null;

  constructor(private readonly d: NetworkConfigDeps) {
    this.env = parametersFromEnv(d.config);
    this.longestTimeoutMs = this.env.jobs.executionTimeoutMs;
  }

  current(): PublishedConfig | null {
    return this.cached;
  }

  jobs(): JobParameters {
    return this.cached?.document.jobs ?? this.env.jobs;
  }

  heartbeat(): HeartbeatParameters {
    return this.cached?.document.heartbeat ?? this.env.heartbeat;
  }

  participation(): ParticipationRules {
    return this.cached?.document.participation ?? this.env.participation;
  }

  capacity(): CapacityRules {
    return this.cached?.document.capacity ?? this.env.capacity;
  }

  longestExecutionTimeoutMs(): number {
    return this.longestTimeoutMs;
  }

  /** Loads the newest version, then follows new ones every REFRESH_MS. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer ??= setInterval(() => {
      this.refresh().catch((err: unknown) => this.d.logger.warn({ err }, 'network config: refresh failed; keeping the version in force'));
    }, REFRESH_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Re-reads the newest version; concurrent callers share one read. Never goes back to an older version. */
  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const row = await this.d.store.latest();
        if (!row || (this.cached && row.version <= this.cached.version)) return;
        this.longestTimeoutMs = Math.max(this.env.jobs.executionTimeoutMs, (await this.d.store.longestExecutionTimeoutMs()) ?? 0);
        const previous = this.cached?.version ?? null;
        this.cached = published(row);
        this.d.logger.info({ version: row.version, digest: row.digest, previous }, 'network config in force');
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  /** Makes version 1 from the environment and the models table unless a version exists. Idempotent. */
  async ensureGenesis(): Promise<PublishedConfig> {
    const made = await this.underLock(async (tx, latest) => {
      if (latest) return null;
      const models = await tx.listModels();
      const document = buildNetworkConfig({
        version: 1,
        issuedAt: new Date().toISOString(),
        previousDigest: null,
        models: models.map(configModelOf),
        runtimes: [],
        ...this.env,
      });
      return this.store(tx, document, SYSTEM_ACTOR, null);
    });
    if (made) this.d.logger.info({ version: made.version, digest: made.digest }, 'network config: genesis version made from the environment');
    await this.refresh();
    return this.cached!;
  }

  /** Publishes the next version (see the head of this file); returns it. */
  async publish(input: PublishInput, actor: string): Promise<PublishedConfig> {
    const parsed = publishInputSchema.safeParse(input);
    if (!parsed.success) throw invalid(parsed.error);
    const given = parsed.data;
    const made = await this.underLock(async (tx, latest) => {
      const prev = latest?.document;
      const base = prev ?? { ...this.env, runtimes: [] as RuntimeRequirement[] };
      let document: NetworkConfig;
      try {
        document = buildNetworkConfig({
          version: (latest?.version ?? 0) + 1,
          issuedAt: new Date().toISOString(),
          previousDigest: latest?.digest ?? null,
          models: (await tx.listModels()).map(configModelOf),
          runtimes: given.runtimes ?? base.runtimes,
          jobs: { ...base.jobs, ...definedOnly(given.jobs) },
          heartbeat: { ...base.heartbeat, ...definedOnly(given.heartbeat) },
          participation: { ...base.participation, ...definedOnly(given.participation) },
          capacity: { ...base.capacity, ...definedOnly(given.capacity) },
        });
      } catch (err) {
        if (err instanceof z.ZodError) throw invalid(err);
        throw err;
      }
      return this.store(tx, document, actor, latest);
    });
    await this.refresh();
    this.d.logger.info({ version: made.version, digest: made.digest, actor }, 'network config published');
    return made;
  }

  async list(limit: number): Promise<PublishedConfig[]> {
    return (await this.d.store.list(limit)).map(published);
  }

  async get(version: number): Promise<PublishedConfig> {
    const row = await this.d.store.find(version);
    if (!row) throw errors.notFound('Network config version');
    return published(row);
  }

  /**
   * Which config the nodes online now run: how many report the version in force, and the others by the
   * digest they report (null: none yet, or an agent that does not report one).
   */
  async adoption(): Promise<{ version: number | null; digest: string | null; online: number; current: number; behind: Array<{ nodeId: string; digest: string | null }> }> {
    const nodes = await this.d.nodeDigests.online(this.heartbeat().ttlMs);
    const digest = this.cached?.digest ?? null;
    const behind = [...nodes].filter(([, d]) => d === null || d !== digest).map(([nodeId, d]) => ({ nodeId, digest: d }));
    return { version: this.cached?.version ?? null, digest, online: nodes.size, current: nodes.size - behind.length, behind };
  }

  private underLock<T>(fn: (tx: NetworkConfigTx, latest: NetworkConfigRow | null) => Promise<T>): Promise<T> {
    return this.d.store.publishing(fn);
  }

  private async store(tx: NetworkConfigTx, document: NetworkConfig, actor: string, previous: NetworkConfigRow | null): Promise<PublishedConfig> {
    if (!this.d.networkKey) throw new Error('publishing a network config needs the network key (NETWORK_SIGNING_KEY)');
    const signed = signNetworkConfig(this.d.networkKey, document);
    const row = await tx.insert({ ...signed, publishedBy: actor });
    // Under the lock nobody else inserts; a conflict means a publisher that lost its lock mid-way.
    if (!row) throw errors.conflict(`Network config version ${signed.version} was published meanwhile; publish again.`, 'version_taken');
    await tx.recordAdminChange({
      actor,
      action: 'network_config.publish',
      subject: String(row.version),
      before: previous ? { version: previous.version, digest: previous.digest } : null,
      after: { version: row.version, digest: row.digest },
    });
    return published(row);
  }
}

/**
 * The version in force and its signer, when the configured network key did not sign it (null: it did, or
 * there is no version yet). Nodes trust configs signed by the network address they pin, so a backbone
 * started with another key (a lost key replaced, a demo restarted with a new one) would serve a config
 * its own nodes refuse: the caller refuses to start, or publishes a version under the new key.
 */
export async function foreignSignedConfig(store: Pick<NetworkConfigStore, 'latest'>, networkKey: string): Promise<{ version: number; signer: string | null } | null> {
  const row = await store.latest();
  if (!row) return null;
  const signer = recoverPersonal(signingMessage(row.digest), row.signature);
  return signer === addressOf(networkKey) ? null : { version: row.version, signer };
}

function published(row: NetworkConfigRow): PublishedConfig {
  return { version: row.version, digest: row.digest, document: row.document, signature: row.signature, publishedAt: row.published_at, publishedBy: row.published_by };
}

/** The fields actually given: `{a: undefined}` must not erase the previous version's `a`. */
function definedOnly<T extends object>(o: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function invalid(err: z.ZodError) {
  return errors.invalidInput(err.issues, 'invalid network config');
}
