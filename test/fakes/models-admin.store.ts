// In-memory ModelsAdminStore (gate/models-admin.service.ts) on the shared gate tables, with stand-ins for
// the eligibility mirror's sync and the broker's queue declaration.
import type { ModelUpsert } from '../../src/postgres/models.repository.js';
import type { ModelsAdminStore, ModelsAdminTx } from '../../src/gate/models-admin.service.js';
import type { ModelRow } from '../../src/postgres/models.repository.js';
import type { TokenizerRow } from '../../src/postgres/tokenizers.repository.js';
import type { FakeGateDatabase } from './gate-tables.js';

export class FakeModelsAdminStore implements ModelsAdminStore {
  constructor(readonly db: FakeGateDatabase) {}

  findTokenizer(sha256: string): Promise<TokenizerRow | null> {
    this.db.call('findTokenizer');
    return Promise.resolve(this.db.state.tokenizers.get(sha256) ?? null);
  }

  insertTokenizer(t: TokenizerRow): Promise<void> {
    this.db.call('insertTokenizer');
    if (!this.db.state.tokenizers.has(t.sha256)) this.db.state.tokenizers.set(t.sha256, t);
    return Promise.resolve();
  }

  transaction<T>(fn: (tx: ModelsAdminTx) => Promise<T>): Promise<T> {
    const db = this.db;
    const s = () => db.state;
    const aliasesOf = (name: string) => [...s().aliases].filter(([, m]) => m === name).map(([a]) => a).sort();
    return db.transaction(() =>
      fn({
        findModelForUpdate: (name) => {
          db.call('findModelForUpdate');
          return Promise.resolve(s().models.get(name) ?? null);
        },
        upsertModel: (m: ModelUpsert) => {
          db.call('upsertModel');
          const current = s().models.get(m.name);
          const row: ModelRow = {
            name: m.name,
            input_price_micro: m.inputPriceMicro,
            output_price_micro: m.outputPriceMicro,
            min_charge_micro: m.minChargeMicro,
            context_tokens: m.contextTokens,
            version: m.version ?? current?.version ?? '1',
            content_hash: m.contentHash === undefined ? (current?.content_hash ?? null) : m.contentHash,
            min_gpu_memory_mb: m.minGpuMemoryMb ?? current?.min_gpu_memory_mb ?? 0,
            priority_surcharge_bps: m.prioritySurchargeBps ?? current?.priority_surcharge_bps ?? {},
            tokenizer_sha256: current?.tokenizer_sha256 ?? null,
            max_tokens_per_byte: current?.max_tokens_per_byte ?? 1,
            created_at: current?.created_at ?? new Date(),
          };
          s().models.set(m.name, row);
          return Promise.resolve(row);
        },
        setUsageBound: (name, b) => {
          db.call('setUsageBound');
          const current = s().models.get(name);
          if (!current) return Promise.resolve(null);
          const row = {
            ...current,
            tokenizer_sha256: b.tokenizerSha256 === undefined ? current.tokenizer_sha256 : b.tokenizerSha256,
            max_tokens_per_byte: b.maxTokensPerByte ?? current.max_tokens_per_byte,
          };
          s().models.set(name, row);
          return Promise.resolve(row);
        },
        modelAliases: (name) => {
          db.call('modelAliases');
          return Promise.resolve(aliasesOf(name));
        },
        // As the engine does: an alias that is a model's name is refused; one that is another model's alias
        // is left to that model (not inserted).
        replaceModelAliases: (name, aliases) => {
          db.call('replaceModelAliases');
          if (aliases.some((a) => s().models.has(a))) return Promise.resolve(false);
          for (const a of aliasesOf(name)) if (!aliases.includes(a)) s().aliases.delete(a);
          for (const a of aliases) if (!s().aliases.has(a)) s().aliases.set(a, name);
          return Promise.resolve(true);
        },
        bumpEligibilityRevision: () => {
          db.call('bumpEligibilityRevision');
          s().revision++;
          return Promise.resolve();
        },
        recordAdminChange: (change) => {
          db.call('recordAdminChange');
          s().adminChanges.push(change);
          return Promise.resolve();
        },
      }),
    );
  }
}

/** The eligibility mirror (its revision as of the last sync) and the broker's declared queues. */
export class FakeModelSideEffects {
  syncedRevision = -1;
  readonly declared: string[] = [];
  constructor(private readonly db: FakeGateDatabase) {}
  readonly eligibility = {
    sync: (): Promise<void> => {
      this.syncedRevision = this.db.state.revision;
      return Promise.resolve();
    },
  };
  readonly queue = {
    declareModel: (model: string): Promise<void> => {
      this.declared.push(model);
      return Promise.resolve();
    },
  };
}
