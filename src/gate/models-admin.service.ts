// The model catalogue, for the platform's admin: models with their prices and requirements, tokenizers,
// how a model's claimed usage is bounded, and its aliases. Every change is logged in the admin change log
// in the same transaction.
import { errors, MICRO } from '../errors.js';
import { isPriorityClass, PRIORITY_CLASSES, SURCHARGE_BPS_MAX, SURCHARGE_BPS_MIN, type PrioritySurcharges } from '../domain/priority.js';
import { tokenCounter } from '../catalog/usage-rules.js';
import { sha256Hex } from '../domain/signatures.js';
import { MAX_GPU_MEMORY_MB, MODEL_NAME_PATTERN, MODEL_VERSION_PATTERN } from '../domain/eligibility.js';
import { SYSTEM_ACTOR, type AdminChange } from '../postgres/admin-changes.repository.js';
import type { ModelRow, ModelUpsert } from '../postgres/models.repository.js';
import type { TokenizerRow } from '../postgres/tokenizers.repository.js';
import type { EligibilityService } from '../network/eligibility.service.js';
import type { JobQueue } from '../rabbitmq/job-queue.js';


export interface UsageBound {
  tokenizerSha256?: string | null;
  maxTokensPerByte?: number;
}

/** What the service needs from PostgreSQL: postgres/models-admin.store.ts (in memory: test/fakes/models-admin.store.ts). */
export interface ModelsAdminStore {
  findTokenizer(sha256: string): Promise<TokenizerRow | null>;
  insertTokenizer(tokenizer: TokenizerRow): Promise<void>;
  /** All of `fn` or none of it. */
  transaction<T>(fn: (tx: ModelsAdminTx) => Promise<T>): Promise<T>;
}

export interface ModelsAdminTx {
  /** The model, locked to the end of the transaction; null: none of that name. */
  findModelForUpdate(name: string): Promise<ModelRow | null>;
  upsertModel(model: ModelUpsert): Promise<ModelRow>;
  setUsageBound(name: string, bound: UsageBound): Promise<ModelRow | null>;
  modelAliases(name: string): Promise<string[]>;
  /** false: an alias is already a model's name or another model's alias (nothing replaced). */
  replaceModelAliases(name: string, aliases: readonly string[]): Promise<boolean>;
  /** Marks the eligibility rules (model versions and GPU floors among them) changed, for the Redis mirror. */
  bumpEligibilityRevision(): Promise<void>;
  recordAdminChange(change: AdminChange): Promise<void>;
}

export interface ModelInput {
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
}

export class ModelsAdminService {
  constructor(
    private readonly d: {
      store: ModelsAdminStore;
      /** Mirrors the eligibility rules to Redis after a change (network/eligibility.service.ts). */
      eligibility: Pick<EligibilityService, 'sync'>;
      /** Null where no broker is connected. */
      queue: Pick<JobQueue, 'declareModel'> | null;
    },
  ) {}

  /**
   * Registers or reprices a model. Prices are credits per million tokens (= micro-credits per token),
   * integers. Requirements: `version`, the version nodes must run to be given the model (a new version
   * takes effect at the next reservation: nodes still on the old one stop getting it); `contentHash`, the
   * sha256 of the weights (hex; null clears it); `minGpuMemoryMb`, the least GPU memory a node needs.
   * Requirements left undefined keep their current value. Logged in the admin change log as `actor`'s.
   * The network config states models as of its last version: publish one for nodes to see the change.
   */
  async putModel(m: ModelInput, actor: string = SYSTEM_ACTOR): Promise<ModelRow> {
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
    const surcharges = m.prioritySurchargeBps === undefined ? undefined : checkSurcharges(m.prioritySurchargeBps);
    // The version and floor are eligibility rules mirrored in Redis: bump the revision with the change,
    // then mirror it, so that the next reservation anywhere applies it.
    const row = await this.d.store.transaction(async (tx) => {
      const before = await tx.findModelForUpdate(m.name);
      const saved = await tx.upsertModel({
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
      await tx.bumpEligibilityRevision();
      await tx.recordAdminChange({ actor, action: 'model.put', subject: m.name, before, after: saved });
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
    await this.d.store.insertTokenizer({ sha256, tokenizer, config });
    return { sha256 };
  }

  /**
   * Sets how a model's claimed usage is bounded (domain/usage-bounds.ts): `tokenizerSha256`, a registered
   * tokenizer (null: none); `maxTokensPerByte`, the bound without one. Fields left undefined keep their
   * value; in force on every instance at the catalogue change. Logged as `actor`'s.
   */
  async setUsageBound(name: string, b: UsageBound, actor: string = SYSTEM_ACTOR): Promise<ModelRow> {
    if (b.maxTokensPerByte !== undefined && !(b.maxTokensPerByte > 0 && b.maxTokensPerByte <= 8)) throw errors.invalid('max_tokens_per_byte must be above 0 and at most 8', 'max_tokens_per_byte');
    if (b.tokenizerSha256 != null && !(await this.d.store.findTokenizer(b.tokenizerSha256))) throw errors.invalid('no tokenizer is registered with that sha256', 'tokenizer_sha256');
    return this.d.store.transaction(async (tx) => {
      const before = await tx.findModelForUpdate(name);
      if (!before) throw errors.notFound('Model');
      const after = (await tx.setUsageBound(name, b))!;
      await tx.recordAdminChange({ actor, action: 'model.usage_bound', subject: name, before, after });
      return after;
    });
  }

  /** Replaces a model's aliases (other names requests may use for it; migration 0022). Logged as `actor`'s. */
  async setModelAliases(name: string, aliases: readonly string[], actor: string = SYSTEM_ACTOR): Promise<{ model: string; aliases: string[] }> {
    for (const a of aliases) if (!MODEL_NAME_PATTERN.test(a)) throw errors.invalid('aliases are 1-128 of letters, digits and . _ : / -', 'aliases');
    const wanted = [...new Set(aliases)];
    return this.d.store.transaction(async (tx) => {
      if (!(await tx.findModelForUpdate(name))) throw errors.notFound('Model');
      const before = await tx.modelAliases(name);
      if (!(await tx.replaceModelAliases(name, wanted))) throw errors.conflict('An alias is the name of a model or another model\'s alias.');
      const after = await tx.modelAliases(name);
      if (after.length !== wanted.length) throw errors.conflict('An alias is already another model\'s alias.');
      await tx.recordAdminChange({ actor, action: 'model.aliases', subject: name, before: { aliases: before }, after: { aliases: after } });
      return { model: name, aliases: after };
    });
  }
}

/** Checks each class and its basis points; classes left out cost the base price. */
function checkSurcharges(given: Record<string, number>): PrioritySurcharges {
  const surcharges: PrioritySurcharges = {};
  for (const [cls, bps] of Object.entries(given)) {
    if (!isPriorityClass(cls)) throw errors.invalid(`unknown priority class '${cls}'; known: ${PRIORITY_CLASSES.join(', ')}`, 'priority_surcharge_bps');
    if (!Number.isSafeInteger(bps) || bps < SURCHARGE_BPS_MIN || bps > SURCHARGE_BPS_MAX) {
      throw errors.invalid(`the ${cls} surcharge must be a whole number of basis points from ${SURCHARGE_BPS_MIN} to ${SURCHARGE_BPS_MAX}`, 'priority_surcharge_bps');
    }
    surcharges[cls] = bps;
  }
  return surcharges;
}
