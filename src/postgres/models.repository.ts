// The model catalogue and its prices (integer micro-credits per token).
import type { PrioritySurcharges } from '../domain/priority.js';
import type { Queryable } from './db.js';

export interface ModelRow {
  name: string;
  input_price_micro: number;
  output_price_micro: number;
  min_charge_micro: number;
  context_tokens: number;
  priority_surcharge_bps: PrioritySurcharges;
  created_at: Date;
}

const COLUMNS = `name, input_price_micro, output_price_micro, min_charge_micro, context_tokens, priority_surcharge_bps, created_at`;

export async function upsertModel(
  q: Queryable,
  m: { name: string; inputPriceMicro: number; outputPriceMicro: number; minChargeMicro: number; contextTokens: number; prioritySurchargeBps: PrioritySurcharges },
): Promise<ModelRow> {
  const r = await q.query<ModelRow>(
    `INSERT INTO models (name, input_price_micro, output_price_micro, min_charge_micro, context_tokens, priority_surcharge_bps) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (name) DO UPDATE SET input_price_micro = EXCLUDED.input_price_micro, output_price_micro = EXCLUDED.output_price_micro,
       min_charge_micro = EXCLUDED.min_charge_micro, context_tokens = EXCLUDED.context_tokens,
       priority_surcharge_bps = EXCLUDED.priority_surcharge_bps, updated_at = now()
     RETURNING ${COLUMNS}`,
    [m.name, m.inputPriceMicro, m.outputPriceMicro, m.minChargeMicro, m.contextTokens, JSON.stringify(m.prioritySurchargeBps)],
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
