// Platform administration: accounts, namespaces, API keys, credits, models and the ledger's totals. One
// service behind two surfaces, the admin API (/admin) and the `resultity admin` CLI.
import type { Catalog } from '../catalog/catalog.service.js';
import { AppError, errors, formatCredits, MICRO } from '../errors.js';
import { generateApiKey } from '../domain/api-keys.js';
import { withTransaction, isUniqueViolation, type Db } from '../postgres/db.js';
import { NAMESPACE_NAME, NAMESPACE_NAME_RULE } from '../domain/namespaces.js';
import {
  countUnfinishedJobs,
  createAccount,
  createNamespace,
  findAccount,
  findNamespace,
  lockLiveNamespace,
  markNamespaceDeleted,
  NAMESPACE_NAME_UNIQUE,
  renameNamespace,
  type AccountRow,
  type NamespaceRow,
} from '../postgres/accounts.repository.js';
import { findApiKey, insertApiKey, listApiKeys, revokeApiKey, revokeNamespaceApiKeys, type ApiKeyRow } from '../postgres/api-keys.repository.js';
import { balanceOf, ledgerAccountId, ledgerTotals, lockAccounts, post, type LedgerTotals } from '../postgres/ledger.repository.js';
import * as postings from '../domain/postings.js';
import { isPriorityClass, PRIORITY_CLASSES, SURCHARGE_BPS_MAX, SURCHARGE_BPS_MIN, type PrioritySurcharges } from '../domain/priority.js';
import { findModel, modelAliases, replaceModelAliases, setModelUsageBound, upsertModel, type ModelRow } from '../postgres/models.repository.js';
import { findTokenizer, insertTokenizer } from '../postgres/tokenizers.repository.js';
import { tokenCounter } from '../catalog/usage-rules.js';
import { sha256Hex } from '../domain/signatures.js';
import { recordAdminChange, SYSTEM_ACTOR } from '../postgres/admin-changes.repository.js';
import type { JobQueue } from '../rabbitmq/job-queue.js';
import type { FlagChange, NodeFlagsService, StoredFlags } from '../network/node-flags.service.js';
import { rcpByEpoch, type RcpEpochRow } from '../postgres/rcp.repository.js';
import { bumpEligibilityRevision } from '../postgres/subclouds.repository.js';
import { carryMonthlySpend, countActiveApiKeys, countLiveNamespaces, lockAccountForQuota } from '../postgres/account-quotas.repository.js';
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

/** How much one account may hold (ACCOUNT_MAX_NAMESPACES, ACCOUNT_MAX_API_KEYS), whichever surface asks. */
export interface AccountQuotas {
  namespaces: number;
  apiKeys: number;
}

export class AdminService {
  constructor(
    private readonly d: { db: Db; catalog?: Catalog; flags: NodeFlagsService; eligibility: EligibilityService; queue: JobQueue | null; quotas: AccountQuotas },
  ) {}

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
    if (!NAMESPACE_NAME.test(name)) throw errors.invalid(NAMESPACE_NAME_RULE, 'name');
    if (!(NETWORKS as readonly string[]).includes(network)) throw errors.invalid(`network must be one of ${NETWORKS.join(', ')}`, 'network');
    if (!(await findAccount(this.d.db, accountId))) throw errors.notFound('Account');
    try {
      return await withTransaction(this.d.db, async (tx) => {
        if (!(await lockAccountForQuota(tx, accountId))) throw errors.notFound('Account');
        if ((await countLiveNamespaces(tx, accountId)) >= this.d.quotas.namespaces) throw quotaReached('namespaces', this.d.quotas.namespaces);
        return createNamespace(tx, accountId, name, network);
      });
    } catch (err) {
      if (isUniqueViolation(err, NAMESPACE_NAME_UNIQUE)) throw nameTaken(name, err);
      throw err;
    }
  }

  async renameNamespace(namespaceId: string, name: string): Promise<NamespaceRow> {
    if (!NAMESPACE_NAME.test(name)) throw errors.invalid(NAMESPACE_NAME_RULE, 'name');
    try {
      const ns = await renameNamespace(this.d.db, namespaceId, name);
      if (!ns) throw errors.notFound('Namespace');
      return ns;
    } catch (err) {
      if (isUniqueViolation(err, NAMESPACE_NAME_UNIQUE)) throw nameTaken(name, err);
      throw err;
    }
  }

  /**
   * Deletes a namespace, refusing (409) while it holds credits (available or held) or has jobs not yet
   * finished: deleting then would strand money or results. Its API keys are revoked in the same
   * transaction, and evicted from the Redis cache after it, as a single revocation is.
   *
   * Soft delete (the row stays, marked): jobs, keys and the append-only ledger refer to the namespace,
   * and its history must stay auditable. The ledger accounts stay too, at zero.
   *
   * Concurrency: the namespace's two ledger accounts are locked first (the lock order every ledger
   * transaction follows), so a top-up or job accept either committed before (and is seen here, refusing
   * the delete) or waits and then finds the namespace deleted (topUp re-checks under the same lock; an
   * accept finds the key revoked or the balance at zero), and a key issued meanwhile is revoked with the
   * others (see below).
   */
  async deleteNamespace(namespaceId: string): Promise<void> {
    const revoked = await withTransaction(this.d.db, async (tx) => {
      if (!(await findNamespace(tx, namespaceId))) throw errors.notFound('Namespace');
      const available = await ledgerAccountId(tx, 'ns_available', namespaceId);
      const held = await ledgerAccountId(tx, 'ns_held', namespaceId);
      await lockAccounts(tx, [available, held]);
      const credits = (await balanceOf(tx, 'ns_available', namespaceId)) + (await balanceOf(tx, 'ns_held', namespaceId));
      if (credits > 0) {
        throw errors.conflict(`The namespace holds ${formatCredits(credits)} credits: spend or transfer them before deleting it.`, 'namespace_not_empty');
      }
      const unfinished = await countUnfinishedJobs(tx, namespaceId);
      if (unfinished > 0) throw errors.conflict(`The namespace has ${unfinished} job(s) not finished yet: delete it when they are done.`, 'namespace_busy');
      // Marked before its keys are revoked: marking waits for any key issuance in progress (issueApiKey
      // locks the row), so the revocation that follows sees every key the namespace will ever have.
      if (!(await markNamespaceDeleted(tx, namespaceId))) throw errors.notFound('Namespace');
      return revokeNamespaceApiKeys(tx, namespaceId);
    });
    this.forgetKeys(revoked);
  }

  /**
   * Issues a key; the secret is in the result and nowhere else, ever. `replacing`: the key a rotation
   * revokes next, which does not count against the account's quota.
   */
  async issueApiKey(namespaceId: string, opts: KeyOptions = {}, replacing: ApiKeyRow | null = null): Promise<{ key: ApiKeyRow; secret: string }> {
    const ns = await findNamespace(this.d.db, namespaceId);
    if (!ns) throw errors.notFound('Namespace');
    if (opts.expiresAt && opts.expiresAt.getTime() <= Date.now()) throw errors.invalid('expires_at must be in the future', 'expires_at');
    if (opts.monthlyCapCredits !== undefined && (!Number.isFinite(opts.monthlyCapCredits) || opts.monthlyCapCredits < 0 || opts.monthlyCapCredits > MAX_TOPUP_CREDITS)) {
      throw errors.invalid(`monthly_cap must be between 0 and ${MAX_TOPUP_CREDITS} credits`, 'monthly_cap');
    }
    const { secret, hash, displayPrefix } = generateApiKey();
    const key = await withTransaction(this.d.db, async (tx) => {
      // The account first (the quota's lock), then the namespace, so that a namespace deleted meanwhile
      // cannot get a key its deletion did not revoke.
      await lockAccountForQuota(tx, ns.account_id);
      const others = (await countActiveApiKeys(tx, ns.account_id)) - (replacing && isActiveKey(replacing) ? 1 : 0);
      if (others >= this.d.quotas.apiKeys) throw quotaReached('API keys', this.d.quotas.apiKeys);
      if (!(await lockLiveNamespace(tx, namespaceId))) throw errors.notFound('Namespace');
      return insertApiKey(tx, {
        namespaceId,
        keyHash: hash,
        keyPrefix: displayPrefix,
        name: opts.name ?? '',
        rateLimitRps: opts.rateLimitRps ?? null,
        rateLimitBurst: opts.rateLimitBurst ?? null,
        monthlyCapMicro: opts.monthlyCapCredits === undefined ? null : Math.round(opts.monthlyCapCredits * MICRO),
        expiresAt: opts.expiresAt ?? null,
      });
    });
    return { key, secret };
  }

  /** A namespace's keys (never their secrets), newest last. */
  async listApiKeys(namespaceId: string): Promise<ApiKeyRow[]> {
    if (!(await findNamespace(this.d.db, namespaceId))) throw errors.notFound('Namespace');
    return listApiKeys(this.d.db, namespaceId);
  }

  /**
   * Replaces a key by a new one with the same settings; the old one stops working at once. The new key
   * takes over the old one's spend of the month, so that rotating does not reset its monthly cap.
   */
  async rotateApiKey(keyId: string): Promise<{ key: ApiKeyRow; secret: string }> {
    const old = await findApiKey(this.d.db, keyId);
    if (!old || old.revoked_at) throw errors.notFound('Active API key');
    const fresh = await this.issueApiKey(
      old.namespace_id,
      {
        name: old.name,
        ...(old.rate_limit_rps !== null ? { rateLimitRps: old.rate_limit_rps } : {}),
        ...(old.rate_limit_burst !== null ? { rateLimitBurst: old.rate_limit_burst } : {}),
        ...(old.monthly_cap_micro !== null ? { monthlyCapCredits: old.monthly_cap_micro / MICRO } : {}),
        ...(old.expires_at && old.expires_at.getTime() > Date.now() ? { expiresAt: old.expires_at } : {}),
      },
      old,
    );
    const hash = await withTransaction(this.d.db, async (tx) => {
      // The namespace's ledger accounts first, the lock order of every writer of monthly spend.
      await lockAccounts(tx, [await ledgerAccountId(tx, 'ns_available', old.namespace_id), await ledgerAccountId(tx, 'ns_held', old.namespace_id)]);
      const revoked = await revokeApiKey(tx, keyId);
      if (revoked) await carryMonthlySpend(tx, keyId, fresh.key.id);
      return revoked;
    });
    if (!hash) throw errors.notFound('Active API key');
    this.forgetKeys([hash]);
    return fresh;
  }

  async revokeApiKey(keyId: string): Promise<void> {
    const hash = await revokeApiKey(this.d.db, keyId);
    if (!hash) throw errors.notFound('Active API key');
    this.forgetKeys([hash]);
  }

  /**
   * Every instance drops its copy of a revoked key when the revocation's commit is announced
   * (catalog/catalog.service.ts); this instance does at once, before it answers.
   */
  private forgetKeys(hashes: readonly Buffer[]): void {
    this.d.catalog?.forgetApiKeys(hashes.map((h) => h.toString('hex')));
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
      await post(tx, postings.topup(namespaceId, micro, memo));
      // Checked again now that the posting holds the namespace's ledger lock, which deleteNamespace takes
      // too: credits must never land in a namespace deleted since the check above.
      if (!(await findNamespace(tx, namespaceId))) throw errors.notFound('Namespace');
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
   * Requirements left undefined keep their current value. Logged in the admin change log as `actor`'s.
   * The network config states models as of its last version: publish one for nodes to see the change.
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
    /** Per priority class, in basis points of the charge; classes left out cost the base price. */
    prioritySurchargeBps?: Record<string, number>;
  }, actor: string = SYSTEM_ACTOR): Promise<ModelRow> {
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
    // Left out: the model keeps its surcharges (a new model has none).
    let surcharges: PrioritySurcharges | undefined;
    if (m.prioritySurchargeBps !== undefined) {
      surcharges = {};
      for (const [cls, bps] of Object.entries(m.prioritySurchargeBps)) {
        if (!isPriorityClass(cls)) throw errors.invalid(`unknown priority class '${cls}'; known: ${PRIORITY_CLASSES.join(', ')}`, 'priority_surcharge_bps');
        if (!Number.isSafeInteger(bps) || bps < SURCHARGE_BPS_MIN || bps > SURCHARGE_BPS_MAX) {
          throw errors.invalid(`the ${cls} surcharge must be a whole number of basis points from ${SURCHARGE_BPS_MIN} to ${SURCHARGE_BPS_MAX}`, 'priority_surcharge_bps');
        }
        surcharges[cls] = bps;
      }
    }
    // The version and floor are eligibility rules mirrored in Redis: bump the revision with the change,
    // then mirror it, so that the next reservation anywhere applies it.
    const row = await withTransaction(this.d.db, async (tx) => {
      const before = await findModel(tx, m.name, true);
      const saved = await upsertModel(tx, {
        name: m.name,
        inputPriceMicro: m.inputPricePerMtok,
        outputPriceMicro: m.outputPricePerMtok,
        minChargeMicro: Math.round((m.minCharge ?? 0) * MICRO),
        contextTokens: m.contextTokens ?? 8192,
        version: m.version,
        contentHash: m.contentHash,
        minGpuMemoryMb: m.minGpuMemoryMb,
        prioritySurchargeBps: surcharges,
      });
      await bumpEligibilityRevision(tx);
      await recordAdminChange(tx, { actor, action: 'model.put', subject: m.name, before, after: saved });
      return saved;
    });
    await this.d.eligibility.sync();
    // Declare the queue now, so jobs published before any scheduler consumes it are kept.
    await this.d.queue?.declareModel(row.name);
    return row;
  }

  /**
   * Registers a tokenizer (the text of a Hugging Face tokenizer.json, and its tokenizer_config.json) under
   * the SHA-256 of that text; a model then names it to have its output tokens counted by the backbone.
   * Refused (400) when the tokenizer library cannot load it.
   */
  async putTokenizer(tokenizer: string, config: Record<string, unknown> = {}): Promise<{ sha256: string }> {
    try {
      tokenCounter({ tokenizer, config }).count('probe');
    } catch (err) {
      throw errors.invalid(`the tokenizer cannot be loaded: ${err instanceof Error ? err.message : String(err)}`, 'tokenizer');
    }
    const sha256 = sha256Hex(tokenizer);
    await insertTokenizer(this.d.db, { sha256, tokenizer, config });
    return { sha256 };
  }

  /**
   * Sets how a model's claimed usage is bounded (domain/usage-bounds.ts): `tokenizerSha256`, a registered
   * tokenizer (null: none); `maxTokensPerByte`, the bound without one. Fields left undefined keep their
   * value; in force on every instance at the catalogue change. Logged as `actor`'s.
   */
  async setUsageBound(name: string, b: { tokenizerSha256?: string | null; maxTokensPerByte?: number }, actor: string = SYSTEM_ACTOR): Promise<ModelRow> {
    if (b.maxTokensPerByte !== undefined && !(b.maxTokensPerByte > 0 && b.maxTokensPerByte <= 8)) throw errors.invalid('max_tokens_per_byte must be above 0 and at most 8', 'max_tokens_per_byte');
    if (b.tokenizerSha256 != null && !(await findTokenizer(this.d.db, b.tokenizerSha256))) throw errors.invalid('no tokenizer is registered with that sha256', 'tokenizer_sha256');
    return withTransaction(this.d.db, async (tx) => {
      const before = await findModel(tx, name, true);
      if (!before) throw errors.notFound('Model');
      const after = (await setModelUsageBound(tx, name, b))!;
      await recordAdminChange(tx, { actor, action: 'model.usage_bound', subject: name, before, after });
      return after;
    });
  }

  /** Replaces a model's aliases (other names requests may use for it; migration 0022). Logged as `actor`'s. */
  async setModelAliases(name: string, aliases: readonly string[], actor: string = SYSTEM_ACTOR): Promise<{ model: string; aliases: string[] }> {
    for (const a of aliases) if (!MODEL_NAME_PATTERN.test(a)) throw errors.invalid('aliases are 1-128 of letters, digits and . _ : / -', 'aliases');
    try {
      return await withTransaction(this.d.db, async (tx) => {
        if (!(await findModel(tx, name, true))) throw errors.notFound('Model');
        const before = await modelAliases(tx, name);
        await replaceModelAliases(tx, name, [...new Set(aliases)]);
        const after = await modelAliases(tx, name);
        if (after.length !== new Set(aliases).size) throw errors.conflict('An alias is already another model\'s alias.');
        await recordAdminChange(tx, { actor, action: 'model.aliases', subject: name, before: { aliases: before }, after: { aliases: after } });
        return { model: name, aliases: after };
      });
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw errors.conflict('An alias is the name of a model or another model\'s alias.');
      throw err;
    }
  }

  /** Sets or clears a node's flags (the ones given); `cooldownSeconds` 0 ends a cooldown. Logged as `actor`'s. */
  setNodeFlags(nodeId: string, change: FlagChange, reason = '', actor: string = SYSTEM_ACTOR): Promise<StoredFlags> {
    return this.d.flags.set(nodeId, change, reason, actor);
  }

  /** Clears every flag of a node. Logged as `actor`'s. */
  reinstateNode(nodeId: string, actor: string = SYSTEM_ACTOR): Promise<StoredFlags> {
    return this.d.flags.reinstate(nodeId, 'reinstated', actor);
  }

  /** A node's contribution points per epoch, newest first. */
  contributionPoints(nodeId: string, epochs: number): Promise<RcpEpochRow[]> {
    return rcpByEpoch(this.d.db, nodeId, epochs);
  }

  ledgerTotals(): Promise<LedgerTotals> {
    return ledgerTotals(this.d.db);
  }
}

function isActiveKey(k: ApiKeyRow): boolean {
  return k.revoked_at === null && (k.expires_at === null || k.expires_at.getTime() > Date.now());
}

/** 403: the account holds as many as its quota allows. */
function quotaReached(what: 'namespaces' | 'API keys', limit: number): AppError {
  return new AppError(
    'forbidden',
    what === 'namespaces' ? 'namespace_limit_reached' : 'api_key_limit_reached',
    `This account already has ${limit} ${what}, its limit: ${what === 'namespaces' ? 'delete one' : 'revoke one'} first.`,
  );
}

function nameTaken(name: string, cause: unknown): AppError {
  return new AppError('conflict', 'name_taken', `The account already has a namespace named '${name}'.`, { param: 'name' }, { cause });
}
