// Which model runs a request: `model`, then OpenRouter's `models` fallbacks in order. The first that can
// be served (known to the catalogue, by name or alias, with an eligible node online) runs the job, and
// the response's `model` names the one that did. Shared by every inference request schema.
import { z } from 'zod';
import { text } from '../domain/wire-strings.js';

/** At most this many models per request: each is a catalogue and presence look-up at accept. */
export const MAX_FALLBACK_MODELS = 8;

const modelName = text().min(1).max(128);

export const modelChoiceFields = {
  model: modelName,
  /** Fallbacks, tried in order after `model` when it cannot be served (OpenRouter's `models`). */
  models: z.array(modelName).min(1).max(MAX_FALLBACK_MODELS).optional(),
};

/** The models to try, in order, each once. */
export function modelsOf(req: { model: string; models?: string[] | undefined }): string[] {
  return [...new Set([req.model, ...(req.models ?? [])])];
}
