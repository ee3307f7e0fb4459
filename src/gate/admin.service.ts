// Platform administration: accounts, namespaces, API keys, credits, models and the ledger's totals. One
// service behind two surfaces, the admin API (/admin) and the `resultity admin` CLI.
import { errors, MICRO } from '../errors.js';
import { generateApiKey } from '../domain/api-keys.js';
import { withTransaction, isUniqueViolation, type Db } from '../postgres/db.js';
import { createAccount, createNamespace, findAccount, findNamespace, type AccountRow, type NamespaceRow } from '../postgres/accounts.repository.js';
import { findApiKey, insertApiKey, listApiKeys, revokeApiKey, type ApiKeyRow } from '../postgres/api-keys.repository.js';
import { balanceOf, ledgerAccountId, ledgerTotals, postTransaction, type LedgerTotals } from '../postgres/ledger.repository.js';
import { upsertModel, type ModelRow } from '../postgres/models.repository.js';
import type { ApiKeyCache } from '../redis/api-key-cache.repository.js';
import type { JobQueue } from '../rabbitmq/job-queue.js';
import type { FlagChange, NodeFlagsService, StoredFlags } from '../network/node-flags.service.js';
import { rcpByEpoch, type RcpEpochRow } from '../postgres/rcp.repository.js';
import { bumpEligibilityRevision } from '../postgres/subclouds.repository.js';
import type { EligibilityService } from '../network/eligibility.service.js';
import { MAX_GPU_MEMORY_MB, MODEL_NAME_PATTERN, MODEL_VERSION_PATTERN, NETWORKS, type Network } from '../domain/eligibility.js';

/** Largest single top-up, in credits: keeps every amount far inside the safe-integer range. */
const MAX_TOPUP_CREDITS = 1_000_000_000;

export interface KeyOptions {
  name?: string;
  rateLimitRps?: number;
  rateLimitBurst?: number;
  /** Credits the key may commit per calendar month (UTC); unset: no cap. */
  monthlyCapCredits?: number;
  expiresAt?: Date;
}

export interface Balance {
  namespace_id: string;
  available_micro: number;
  held_micro: number;
}

export class AdminService {
  constructor(private readonly d: { db: Db; keyCache: ApiKeyCache; flags: NodeFlagsService; eligibility: EligibilityService; queue: JobQueue | null }) {}

  /** The database this service administers (for read-only reports built beside it). */
  get db(): Db {
    return this.d.db;
  }

  createAccount(name: string): Promise<AccountRow> {
    if (!name.trim()) throw errors.invalid('name must not be empty', 'name');
    return withTransaction(this.d.db, (tx) => createAccount(tx, name.trim()));
  }

  /** Creates a namespace on a network (mainnet by default); its jobs never reach the other network's nodes. */
  async createNamespace(accountId: string, name: string, network: Network = 'mainnet'): Promise<NamespaceRow> {
    if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(name)) throw errors.invalid('namespace names are 1-63 of a-z, 0-9, _ and -, starting with a letter or digit', 'name');
    if (!(NETWORKS as readonly string[]).includes(network)) throw errors.invalid(`network must be one of ${NETWORKS.join(', ')}`, 'network');
    if (!(await findAccount(this.d.db, accountId))) throw errors.notFound('Account');
    try {
      return await withTransaction(this.d.db, (tx) => createNamespace(tx, accountId, name, network));
    } catch (err) {
      if (isUniqueViolation(err)) throw errors.conflict(`The account already has a namespace named '${name}'.`);
      throw err;
    }
  }

  /** Issues a key; the secret is in the result and nowhere else, ever. */
  async issueApiKey(namespaceId: string, opts: KeyOptions = {}): Promise<{ key: ApiKeyRow; secret: string }> {
    if (!(await findNamespace(this.d.db, namespaceId))) throw errors.notFound('Namespace');
    if (opts.expiresAt && opts.expiresAt.getTime() <= Date.now()) throw errors.invalid('expires_at must be in the future', 'expires_at');
    if (opts.monthlyCapCredits !== undefined && (!Number.isFinite(opts.monthlyCapCredits) || opts.monthlyCapCredits < 0 || opts.monthlyCapCredits > MAX_TOPUP_CREDITS)) {
      throw errors.invalid(`monthly_cap must be between 0 and ${MAX_TOPUP_CREDITS} credits`, 'monthly_cap');
    }
    const { secret, hash, displayPrefix } = generateApiKey();
    const key = await insertApiKey(this.d.db, {
      namespaceId,
      keyHash: hash,
      keyPrefix: displayPrefix,
      name: opts.name ?? '',
      rateLimitRps: opts.rateLimitRps ?? null,
      rateLimitBurst: opts.rateLimitBurst ?? null,
      monthlyCapMicro: opts.monthlyCapCredits === undefined ? null : Math.round(opts.monthlyCapCredits * MICRO),
      expiresAt: opts.expiresAt ?? null,
    });
    return { key, secret };
  }

  /** A namespace's keys (never their secrets), newest last. */
  async listApiKeys(namespaceId: string): Promise<ApiKeyRow[]> {
    if (!(await findNamespace(this.d.db, namespaceId))) throw errors.notFound('Namespace');
    return listApiKeys(this.d.db, namespaceId);
  }

  /** Replaces a key by a new one with the same settings; the old one stops working at once. */
  async rotateApiKey(keyId: string): Promise<{ key: ApiKeyRow; secret: string }> {
    const old = await findApiKey(this.d.db, keyId);
    if (!old || old.revoked_at) throw errors.notFound('Active API key');
    const fresh = await this.issueApiKey(old.namespace_id, {
      name: old.name,
      ...(old.rate_limit_rps !== null ? { rateLimitRps: old.rate_limit_rps } : {}),
      ...(old.rate_limit_burst !== null ? { rateLimitBurst: old.rate_limit_burst } : {}),
      ...(old.monthly_cap_micro !== null ? { monthlyCapCredits: old.monthly_cap_micro / MICRO } : {}),
      ...(old.expires_at && old.expires_at.getTime() > Date.now() ? { expiresAt: old.expires_at } : {}),
    });
    await this.revokeApiKey(keyId);
    return fresh;
  }

  async revokeApiKey(keyId: string): Promise<void> {
    const hash = await revokeApiKey(this.d.db, keyId);
    if (!hash) throw errors.notFound('Active API key');
    await this.d.keyCache.evict(hash.toString('hex'));
  }

  /** Adds credits to a namespace: a transfer from the funding account. `credits` may have up to 6 decimals. */
  async topUp(namespaceId: string, credits: number, memo = ''): Promise<Balance> {
    if (!Number.isFinite(credits) || credits <= 0 || credits > MAX_TOPUP_CREDITS) {
      throw errors.invalid(`amount must be a positive number of credits, at most ${MAX_TOPUP_CREDITS}`, 'amount');
    }
    const micro = Math.round(credits * MICRO);
    if (micro < 1) throw errors.invalid('amount must be at least 0.000001 credits (one micro-credit)', 'amount');
    if (!(await findNamespace(this.d.db, namespaceId))) throw errors.notFound('Namespace');
    await withTransaction(this.d.db, async (tx) => {
      const funding = await ledgerAccountId(tx, 'funding', null);
      const available = await ledgerAccountId(tx, 'ns_available', namespaceId);
      await postTransaction(tx, { kind: 'topup', jobId: null, memo }, [
        { accountId: funding, amount: -micro },
        { accountId: available, amount: micro },
      ]);
    });
    return this.balance(namespaceId);
  }

  async balance(namespaceId: string): Promise<Balance> {
    if (!(await findNamespace(this.d.db, namespaceId))) throw errors.notFound('Namespace');
    return {
      namespace_id: namespaceId,
      available_micro: await balanceOf(this.d.db, 'ns_available', namespaceId),
      held_micro: await balanceOf(this.d.db, 'ns_held', namespaceId),
    };
  }

  /**
   * Registers or reprices a model. Prices are credits per million tokens (= micro-credits per token),
   * integers. Requirements: `version`, the version nodes must run to be given the model (a new version
   * takes effect at the next reservation: nodes still on the old one stop getting it); `contentHash`, the
   * sha256 of the weights (hex; null clears it); `minGpuMemoryMb`, the least GPU memory a node needs.
   * Requirements left undefined keep their current value.
   */
  async putModel(m: {
    name: string;
    inputPricePerMtok: number;
    outputPricePerMtok: number;
    minCharge?: number;
    contextTokens?: number;
    version?: string;
    contentHash?: string | null;
    minGpuMemoryMb?: number;
  }): Promise<ModelRow> {
    if (m.minCharge !== undefined && (!Number.isFinite(m.minCharge) || m.minCharge < 0 || m.minCharge > 1_000_000)) {
      throw errors.invalid('min_charge must be between 0 and 1000000 credits', 'min_charge');
    }
    if (!MODEL_NAME_PATTERN.test(m.name)) throw errors.invalid('model names are 1-128 of letters, digits and . _ : / -', 'name');
    if (m.version !== undefined && !MODEL_VERSION_PATTERN.test(m.version)) throw errors.invalid('versions are 1-64 of letters, digits and . _ + -', 'version');
    if (m.contentHash != null && !/^[0-9a-f]{64}$/.test(m.contentHash)) throw errors.invalid('content_hash must be a sha256 in lower-case hex (64 digits)', 'content_hash');
    if (m.minGpuMemoryMb !== undefined && (!Number.isSafeInteger(m.minGpuMemoryMb) || m.minGpuMemoryMb < 0 || m.minGpuMemoryMb > MAX_GPU_MEMORY_MB)) {
      throw errors.invalid(`min_gpu_memory_mb must be a whole number of MiB from 0 to ${MAX_GPU_MEMORY_MB}`, 'min_gpu_memory_mb');
    }
    for (const [field, v] of [
      ['input_price', m.inputPricePerMtok],
      ['output_price', m.outputPricePerMtok],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < 0 || v > 1e9) throw errors.invalid(`${field} must be a whole number of credits per million tokens`, field);
    }
    // The version and floor are eligibility rules mirrored in Redis: bump the revision with the change,
    // then mirror it, so that the next reservation anywhere applies it.
    const row = await withTransaction(this.d.db, async (tx) => {
      const saved = await upsertModel(tx, {
        name: m.name,
        inputPriceMicro: m.inputPricePerMtok,
        outputPriceMicro: m.outputPricePerMtok,
        minChargeMicro: Math.round((m.minCharge ?? 0) * MICRO),
        contextTokens: m.contextTokens ?? 8192,
        version: m.version,
        contentHash: m.contentHash,
        minGpuMemoryMb: m.minGpuMemoryMb,
      });
      await bumpEligibilityRevision(tx);
      return saved;
    });
    await this.d.eligibility.sync();
    // Declare the queue now, so jobs published before any scheduler consumes it are kept.
    await this.d.queue?.declareModel(row.name);
    return row;
  }

  /** Sets or clears a node's flags (the ones given); `cooldownSeconds` 0 ends a cooldown. */
  setNodeFlags(nodeId: string, change: FlagChange, reason = ''): Promise<StoredFlags> {
    return this.d.flags.set(nodeId, change, reason);
  }

  /** Clears every flag of a node. */
  reinstateNode(nodeId: string): Promise<StoredFlags> {
    return this.d.flags.reinstate(nodeId);
  }

  /** A node's contribution points per epoch, newest first. */
  contributionPoints(nodeId: string, epochs: number): Promise<RcpEpochRow[]> {
    return rcpByEpoch(this.d.db, nodeId, epochs);
  }

  ledgerTotals(): Promise<LedgerTotals> {
    return ledgerTotals(this.d.db);
  }
}
