// Eligibility: which nodes may run which jobs (issue 4, part 2). Pure definitions shared by the node
// protocol, the admin API, the public API and the reservation scripts.
//
// A node declares its network, region, GPU and, for every model it serves, the version it runs. A job
// carries its namespace's network (and subcloud, when the namespace is bound to one) and, optionally,
// the region its consumer asked for. A node may run a job when, all at once:
//   - it is on the job's network (testnet and mainnet never cross);
//   - it serves the job's model at the catalogue's current version of that model;
//   - its GPU memory is at least max(the model's floor, the job's subcloud's floor);
//   - it is in the job's region, when the job asks for one;
//   - for a job of a subcloud: it is a member of that subcloud (and the subcloud allows the model);
//     for any other job: it is a member of no subcloud in isolate mode;
//   - it is not flagged (node flags) and has a free slot (it may run up to the capacity it declares).
// The syntax rules below keep every value safe to build Redis keys and lists from: none contains ',',
// '@' or '|', the separators of src/redis/readiness.lua.ts.
import { z } from 'zod';
import type { Capability } from './capabilities.js';

export const NETWORKS = ['mainnet', 'testnet'] as const;
export type Network = (typeof NETWORKS)[number];
export const networkSchema = z.enum(NETWORKS);

/** A region slug such as `eu-west` or `us-east-1`: lower-case letters, digits and dashes, 2 to 32. */
export const REGION_PATTERN = /^[a-z][a-z0-9-]{1,31}$/;
export const regionSchema = z.string().regex(REGION_PATTERN, 'a region slug: 2-32 of a-z, 0-9 and -, starting with a letter');

/** A GPU class such as `rtx-4090` or `a100-80gb` (`none` for a node without a GPU). */
export const GPU_CLASS_PATTERN = /^[a-z0-9][a-z0-9._+-]{0,47}$/;
export const gpuSchema = z.object({
  name: z.string().regex(GPU_CLASS_PATTERN, 'a GPU class: 1-48 of a-z, 0-9 and . _ + -'),
  /** Memory in MiB; 0 for a node without a GPU. 16 TiB bounds any single node we can imagine. */
  memoryMb: z.number().int().min(0).max(16 * 1024 * 1024),
});
export type Gpu = z.infer<typeof gpuSchema>;
export const NO_GPU: Gpu = { name: 'none', memoryMb: 0 };

/** Model names, as the catalogue (migration 0001) and the node protocol accept them. */
export const MODEL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;
export const modelNameSchema = z.string().regex(MODEL_NAME_PATTERN, 'a model name: 1-128 of letters, digits and . _ : / -');

/** A model version as the catalogue and nodes name it: `1`, `2024-06`, `q4_k_m.v3`. */
export const MODEL_VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
export const modelVersionSchema = z.string().regex(MODEL_VERSION_PATTERN, 'a model version: 1-64 of letters, digits and . _ + -');
export const DEFAULT_MODEL_VERSION = '1';

/** Subcloud names follow namespace names. */
export const SUBCLOUD_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const subcloudNameSchema = z.string().regex(SUBCLOUD_NAME_PATTERN, 'a subcloud name: 1-63 of a-z, 0-9, _ and -, starting with a letter or digit');

/** The largest GPU-memory floor a model or subcloud may ask for (MiB), as large as a node may declare. */
export const MAX_GPU_MEMORY_MB = 16 * 1024 * 1024;

/** What a job needs from a node, beyond a free slot: everything the reservation checks. */
export interface Placement {
  network: Network;
  model: string;
  /** The region the consumer asked for; null: any region. */
  region: string | null;
  /** The subcloud the job's namespace was bound to when the job was accepted; null: public. */
  subcloud: string | null;
  /**
   * The capabilities the job needs of its node (domain/capabilities.ts requiredCapabilities of its
   * request); absent or empty: none. Derived from the request wherever a reservation is made, never stored.
   */
  needs?: readonly Capability[];
}

/** A job row's placement (the columns migration 0012 added). */
export function placementOf(job: { model: string; network: string; region: string | null; subcloud: string | null }): Placement {
  return { network: networkSchema.parse(job.network), model: job.model, region: job.region, subcloud: job.subcloud };
}

/** One line for error messages and logs: "'m' on testnet in region eu-west for subcloud lab". */
export function describePlacement(p: Placement): string {
  return `'${p.model}' on ${p.network}${p.region ? ` in region ${p.region}` : ''}${p.subcloud ? ` for subcloud ${p.subcloud}` : ''}${p.needs?.length ? ` with ${p.needs.join(', ')}` : ''}`;
}

/** The rules a node's eligibility is read from, as PostgreSQL holds them and Redis mirrors them. */
export interface EligibilityRules {
  /** PostgreSQL's eligibility revision the snapshot was read at: `<database uuid>:<counter>`. */
  revision: string;
  models: Array<{ name: string; version: string; minGpuMemoryMb: number }>;
  subclouds: Array<{ name: string; network: Network; models: string[]; minGpuMemoryMb: number; isolate: boolean; members: string[] }>;
}
