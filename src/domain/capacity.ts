// Capacity a node may fill: what it declares is a ceiling, never a weight. Below the ceiling a node has the
// slots it has earned (slow start): the network config's `startSlots`, plus one per job it completed
// (over the scores window; redis/readiness.lua.ts counts them live). The ceiling itself is the declared
// capacity capped by the network config per GPU class and model: a class of card runs so many jobs of a
// model at once, whatever a node of that class claims.
import { z } from 'zod';
import { GPU_CLASS_PATTERN, MODEL_NAME_PATTERN } from './eligibility.js';
import type { DeclaredModel } from './protocol.js';

export const MAX_SLOTS = 1024;

export const capacityCapSchema = z.object({
  gpu: z.string().regex(GPU_CLASS_PATTERN, 'a GPU class'),
  /** null: every model on that GPU class (a cap naming the model wins over it). */
  model: z.string().regex(MODEL_NAME_PATTERN, 'a model name').nullable(),
  maxSlots: z.number().int().min(1).max(MAX_SLOTS),
});

export const capacityRulesSchema = z.object({
  /** Slots a node that has completed nothing may fill. */
  startSlots: z.number().int().min(1).max(MAX_SLOTS),
  caps: z
    .array(capacityCapSchema)
    .max(1000)
    .refine((cs) => new Set(cs.map((c) => `${c.gpu} ${c.model ?? ''}`)).size === cs.length, 'each GPU class and model at most once'),
});
export type CapacityRules = z.infer<typeof capacityRulesSchema>;

/**
 * A node's ceiling per model it serves ('name@version' → slots): its declared capacity, capped by the
 * rule for its GPU class and that model, or else by the rule for its GPU class and any model.
 */
export function capacityCeilings(rules: Pick<CapacityRules, 'caps'>, declared: number, gpu: string, models: readonly DeclaredModel[]): Map<string, number> {
  const ceilings = new Map<string, number>();
  const anyModel = rules.caps.find((c) => c.gpu === gpu && c.model === null);
  for (const m of models) {
    const cap = rules.caps.find((c) => c.gpu === gpu && c.model === m.name) ?? anyModel;
    ceilings.set(`${m.name}@${m.version}`, Math.min(declared, cap?.maxSlots ?? declared));
  }
  return ceilings;
}
