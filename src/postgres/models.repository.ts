// The model catalogue and its prices (integer micro-credits per token).
import type { Queryable } from './db.js';

export interface ModelRow {
  name: string;
  input_price_micro: number;
  output_price_micro: number;
  min_charge_micro: number;
  context_tokens: number;
  created_at: Date;
}

const COLUMNS = `name, input_price_micro, output_price_micro, min_charge_micro, context_tokens, created_at`;

export async function upsertModel(
  q: Queryable,
  m: { name: string; inputPriceMicro: number; outputPriceMicro: number; minChargeMicro: number; contextTokens: number },
): Promise<ModelRow> {
  const r = await q.query<ModelRow>(
    `INSERT INTO models (name, input_price_micro, output_price_micro, min_charge_micro, context_tokens) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (name) DO UPDATE SET input_price_micro = EXCLUDED.input_price_micro, output_price_micro = EXCLUDED.output_price_micro,
       min_charge_micro = EXCLUDED.min_charge_micro, context_tokens = EXCLUDED.context_tokens, updated_at = now()
     RETURNING ${COLUMNS}`,
    [m.name, m.inputPriceMicro, m.outputPriceMicro, m.minChargeMicro, m.contextTokens],
  );
  return r.rows[0]!;
}

export async function findModel(q: Queryable, name: string): Promise<ModelRow | null> {
  const r = await q.query<ModelRow>(`SELECT ${COLUMNS} FROM models WHERE name = $1`, [name]);
  return r.rows[0] ?? null;
}

export async function listModels(q: Queryable): Promise<ModelRow[]> {
  const r = await q.query<ModelRow>(`SELECT ${COLUMNS} FROM models ORDER BY name`);
  return r.rows;
}
