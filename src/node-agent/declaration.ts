// What a node declares about itself in its registration and every heartbeat (network, region, GPU, model
// versions, the models it serves), checked against the protocol's rules before anything is sent: a bad
// declaration fails the agent's start with a clear message instead of being refused by the gateway.
import type { Logger } from 'pino';
import { gpuSchema, MODEL_NAME_PATTERN, modelVersionSchema, NO_GPU, networkSchema, regionSchema, type Gpu, type Network } from '../domain/eligibility.js';

const MAX_MODELS = 256;

export interface Declaration {
  network: Network;
  region: string | null;
  gpu: Gpu;
  versions: Readonly<Record<string, string>>;
}

/** The operator's declaration (defaults: mainnet, no region, no GPU), checked against the protocol's rules. */
export function checkDeclaration(opts: { network?: Network; region?: string | null; gpu?: Gpu; modelVersions?: Readonly<Record<string, string>> }): Declaration {
  const problem = (what: string, r: { success: boolean; error?: { issues: Array<{ message: string }> } }) => {
    if (!r.success) throw new Error(`${what}: ${r.error?.issues[0]?.message ?? 'invalid'}`);
  };
  const network = opts.network ?? 'mainnet';
  problem('network', networkSchema.safeParse(network));
  const region = opts.region ?? null;
  if (region !== null) problem('region', regionSchema.safeParse(region));
  const gpu = opts.gpu ?? NO_GPU;
  problem('gpu', gpuSchema.safeParse(gpu));
  const versions = opts.modelVersions ?? {};
  for (const [name, version] of Object.entries(versions)) problem(`version of ${name}`, modelVersionSchema.safeParse(version));
  return { network, region, gpu, versions };
}

/** Keeps names the protocol accepts (see MODEL_NAME_PATTERN; at most 256 of them), once each. */
export function sanitizeModels(models: readonly string[], logger: Logger): string[] {
  const valid = [...new Set(models.filter((m) => MODEL_NAME_PATTERN.test(m)))];
  if (valid.length !== models.length || valid.length > MAX_MODELS) {
    logger.warn({ given: models.length, kept: Math.min(valid.length, MAX_MODELS) }, 'some model names were dropped (invalid, duplicate or too many)');
  }
  return valid.slice(0, MAX_MODELS);
}
