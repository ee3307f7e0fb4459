// The model catalogue: prices (integer micro-credits per token) and requirements (migration 0012: the
// current version nodes must run, the sha256 of its weights, the least GPU memory a node needs).
import type { PrioritySurcharges } from '../domain/priority.js';
import type { Queryable } from './db.js';

export interface ModelRow {
  name: string;
  input_price_micro: number;
  output_price_micro: number;
  min_charge_micro: number;
  context_tokens: number;
  version: string;
  content_hash: string | null;
  min_gpu_memory_mb: number;
  priority_surcharge_bps: PrioritySurcharges;
  /** The registered tokenizer that counts this model's output (migration 0020), or null. */
  tokenizer_sha256: string | null;
  /** Without a tokenizer: the most tokens a node may claim per byte of output. */
  max_tokens_per_byte: number;
  created_at: Date;
}

const COLUMNS = `name, input_price_micro, output_price_micro, min_charge_micro, context_tokens, version, content_hash, min_gpu_memory_mb, priority_surcharge_bps,
  tokenizer_sha256, max_tokens_per_byte, created_at`;

/** A model as written: prices in micro-credits per token; requirements left undefined keep their value. */
export interface ModelUpsert {
  name: string;
  inputPriceMicro: number;
  outputPriceMicro: number;
  minChargeMicro: number;
  contextTokens: number;
  version?: string;
  contentHash?: string | null;
  minGpuMemoryMb?: number;
  /** Unset: kept as it is (a new model: none). */
  prioritySurchargeBps?: PrioritySurcharges;
}

/**
 * Inserts or updates a model. The requirements left undefined keep their current value (their default
 * for a new model), so that repricing a model never resets its version; `contentHash: null` clears the hash.
 */
export async function upsertModel(
  q: Queryable,
  m: ModelUpsert,
): Promise<ModelRow> {
  const r = await q.query<ModelRow>(
    `INSERT INTO models (name, input_price_micro, output_price_micro, min_charge_micro, context_tokens, version, content_hash, min_gpu_memory_mb, priority_surcharge_bps)
     VALUES ($1, $2, $3, $4, $5, coalesce($6, '1'), $7, coalesce($9, 0), coalesce($10::jsonb, '{}'::jsonb))
     ON CONFLICT (name) DO UPDATE SET input_price_micro = EXCLUDED.input_price_micro, output_price_micro = EXCLUDED.output_price_micro,
       min_charge_micro = EXCLUDED.min_charge_micro, context_tokens = EXCLUDED.context_tokens,
       version = coalesce($6, models.version),
       content_hash = CASE WHEN $8 THEN $7 ELSE models.content_hash END,
       min_gpu_memory_mb = coalesce($9, models.min_gpu_memory_mb),
       priority_surcharge_bps = coalesce($10::jsonb, models.priority_surcharge_bps),
       updated_at = now()
     RETURNING ${COLUMNS}`,
    [
      m.name,
      m.inputPriceMicro,
      m.outputPriceMicro,
      m.minChargeMicro,
      m.contextTokens,
      m.version ?? null,
      m.contentHash ?? null,
      m.contentHash !== undefined,
      m.minGpuMemoryMb ?? null,
      m.prioritySurchargeBps === undefined ? null : JSON.stringify(m.prioritySurchargeBps),
    ],
  );
  return r.rows[0]!;
}

/** `forUpdate`: lock the row to the end of the caller's transaction (to read a value about to change). */
export async function findModel(q: Queryable, name: string, forUpdate = false): Promise<ModelRow | null> {
  const r = await q.query<ModelRow>(`SELECT ${COLUMNS} FROM models WHERE name = $1${forUpdate ? ' FOR UPDATE' : ''}`, [name]);
  return r.rows[0] ?? null;
}

/** A model by its name or one of its aliases (migration 0022): what a request's `model` names. */
export async function findModelByNameOrAlias(q: Queryable, name: string): Promise<ModelRow | null> {
  const r = await q.query<ModelRow>(`SELECT ${COLUMNS} FROM models WHERE name = COALESCE((SELECT model FROM model_aliases WHERE alias = $1), $1)`, [name]);
  return r.rows[0] ?? null;
}

/** A model's aliases, sorted. */
export async function modelAliases(q: Queryable, model: string): Promise<string[]> {
  const r = await q.query<{ alias: string }>('SELECT alias FROM model_aliases WHERE model = $1 ORDER BY alias', [model]);
  return r.rows.map((row) => row.alias);
}

/** Replaces a model's aliases with `aliases` (in the caller's transaction). */
export async function replaceModelAliases(q: Queryable, model: string, aliases: readonly string[]): Promise<void> {
  await q.query('DELETE FROM model_aliases WHERE model = $1 AND NOT (alias = ANY($2::text[]))', [model, aliases]);
  await q.query('INSERT INTO model_aliases (alias, model) SELECT unnest($2::text[]), $1 ON CONFLICT (alias) DO NOTHING', [model, aliases]);
}

export async function listModels(q: Queryable): Promise<ModelRow[]> {
  const r = await q.query<ModelRow>(`SELECT ${COLUMNS} FROM models ORDER BY name`);
  return r.rows;
}

/**
 * Sets how a model's usage is bounded (domain/usage-bounds.ts): its tokenizer (null: none) and, without
 * one, its tokens per byte at most. Fields left undefined keep their value. Null when no such model.
 */
export async function setModelUsageBound(q: Queryable, name: string, b: { tokenizerSha256?: string | null; maxTokensPerByte?: number }): Promise<ModelRow | null> {
  const r = await q.query<ModelRow>(
    `UPDATE models SET tokenizer_sha256 = CASE WHEN $2 THEN $3 ELSE tokenizer_sha256 END, max_tokens_per_byte = coalesce($4, max_tokens_per_byte), updated_at = now()
      WHERE name = $1 RETURNING ${COLUMNS}`,
    [name, b.tokenizerSha256 !== undefined, b.tokenizerSha256 ?? null, b.maxTokensPerByte ?? null],
  );
  return r.rows[0] ?? null;
}
