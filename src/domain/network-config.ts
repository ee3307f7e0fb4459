// The network config: one versioned document that states the network's rules to every node and every
// backbone instance: the models (with the version nodes must run, the sha256 of the weights and the
// hardware they need), the runtime versions nodes should run, the job parameters (default and maximum
// tokens, execution timeout per attempt, attempts), the heartbeat interval and presence TTL, and who may
// take part (networks accepted, minimum agent version).
//
// Identity and trust: a version is identified by its digest, the sha256 (hex) of the document's canonical
// JSON (RFC 8785, the encoding node messages are signed over), and signed by the network key as an
// EIP-191 personal message over a domain tag and that digest (see signingMessage), like the jobs the
// network signs. A node pins the network address (configured, or from its first gateway) and so needs
// no trust in the gateway or the HTTP path that served a config: a document whose digest or signature
// does not check out is refused and the node keeps the last good one. Versions only go up: a node refuses
// a version below the one it holds, so a replayed old (genuinely signed) config cannot roll it back.
//
// Pure: no I/O. The backbone side is src/network/network-config.service.ts; the node side
// src/node-agent/network-config.ts.
import { capacityRulesSchema, MAX_SLOTS, type CapacityRules } from './capacity.js';
import { z } from 'zod';
import type { Config } from '../config.js';
import { MAX_GPU_MEMORY_MB, modelNameSchema, modelVersionSchema, NETWORKS, networkSchema } from './eligibility.js';
import { canonicalJson, recoverPersonal, sha256Hex, signPersonal } from './signatures.js';

/** Names the document's shape; a future incompatible shape gets a new one. */
export const NETWORK_CONFIG_FORMAT = 'resultity/network-config/1';

const digestSchema = z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 in lower-case hex');
const signatureSchema = z.string().regex(/^0x[0-9a-f]{130}$/, 'a 65-byte hex signature');
/** Dotted numbers, e.g. 0.1.0 or 12.4: what agent and runtime versions are compared as. */
export const DOTTED_VERSION_PATTERN = /^[0-9]{1,9}(\.[0-9]{1,9}){0,3}$/;
const dottedVersion = z.string().regex(DOTTED_VERSION_PATTERN, 'dotted numbers such as 0.1.0');
const runtimeName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'a runtime name: 1-64 of a-z, 0-9, . _ -');

export const MAX_TOKENS_LIMIT = 10_000_000;
/** Longest execution timeout a config may set: one day. */
export const MAX_EXECUTION_TIMEOUT_MS = 86_400_000;
export const MAX_ATTEMPTS_LIMIT = 100;
const MAX_CONFIG_MODELS = 4096;

export const configModelSchema = z.object({
  name: modelNameSchema,
  version: modelVersionSchema,
  contentHash: digestSchema.nullable(),
  requirements: z.object({ minGpuMemoryMb: z.number().int().min(0).max(MAX_GPU_MEMORY_MB) }),
});
export type ConfigModel = z.infer<typeof configModelSchema>;

export const runtimeRequirementSchema = z.object({ name: runtimeName, minVersion: dottedVersion });
export type RuntimeRequirement = z.infer<typeof runtimeRequirementSchema>;

/**
 * Job parameters, applied when a job is accepted and kept on its row (jobs.max_attempts,
 * jobs.attempt_timeout_ms), so that a later version never changes the terms of an accepted job.
 *   defaultMaxTokens    max_tokens of a request that names none
 *   maxTokens           the most a request may ask for (more is refused with 400)
 *   executionTimeoutMs  how long one attempt may run before it fails and the job is retried
 *   maxAttempts         the retry limit, counted as attempts, the first one included (1: never retried)
 */
export const jobParametersFields = z.object({
  defaultMaxTokens: z.number().int().min(1).max(MAX_TOKENS_LIMIT),
  maxTokens: z.number().int().min(1).max(MAX_TOKENS_LIMIT),
  executionTimeoutMs: z.number().int().min(100).max(MAX_EXECUTION_TIMEOUT_MS),
  maxAttempts: z.number().int().min(1).max(MAX_ATTEMPTS_LIMIT),
});
export const jobParametersSchema = jobParametersFields.refine((j) => j.defaultMaxTokens <= j.maxTokens, { message: 'defaultMaxTokens must not exceed maxTokens', path: ['defaultMaxTokens'] });
export type JobParameters = z.infer<typeof jobParametersSchema>;

/**
 * Heartbeats: nodes send one every intervalMs; a node whose last one is older than ttlMs leaves rotation.
 * The TTL must cover at least two intervals, or one late heartbeat would drop a healthy node.
 */
export const heartbeatParametersFields = z.object({
  intervalMs: z.number().int().min(10).max(3_600_000),
  ttlMs: z.number().int().min(1_000).max(7_200_000),
});
export const heartbeatParametersSchema = heartbeatParametersFields.refine((h) => h.ttlMs >= 2 * h.intervalMs, { message: 'ttlMs must be at least twice intervalMs', path: ['ttlMs'] });
export type HeartbeatParameters = z.infer<typeof heartbeatParametersSchema>;

/**
 * Who may take part, checked by the gateway at registration and at every heartbeat:
 *   networks         the networks whose nodes are accepted (a node declares one)
 *   minAgentVersion  the least agent version (the dotted numbers after the last '/' of the agent's
 *                    `agentVersion`, e.g. resultity-node/0.1.0); null: any
 */
export const participationRulesSchema = z.object({
  networks: z
    .array(networkSchema)
    .min(1)
    .refine((ns) => new Set(ns).size === ns.length, 'each network at most once'),
  minAgentVersion: dottedVersion.nullable(),
});
export type ParticipationRules = z.infer<typeof participationRulesSchema>;

export const networkConfigSchema = z.object({
  format: z.literal(NETWORK_CONFIG_FORMAT),
  version: z.number().int().min(1),
  /** ISO 8601, UTC. */
  issuedAt: z.iso.datetime(),
  /** The digest of the version before (null for version 1): versions form a chain. */
  previousDigest: digestSchema.nullable(),
  models: z
    .array(configModelSchema)
    .max(MAX_CONFIG_MODELS)
    .refine((ms) => new Set(ms.map((m) => m.name)).size === ms.length, 'each model at most once'),
  runtimes: z
    .array(runtimeRequirementSchema)
    .max(64)
    .refine((rs) => new Set(rs.map((r) => r.name)).size === rs.length, 'each runtime at most once'),
  jobs: jobParametersSchema,
  heartbeat: heartbeatParametersSchema,
  participation: participationRulesSchema,
  /** Slow start and capacity caps (domain/capacity.ts); versions before them had none: no caps, no slow start. */
  capacity: capacityRulesSchema.default({ startSlots: MAX_SLOTS, caps: [] }),
});
export type NetworkConfig = z.infer<typeof networkConfigSchema>;

/** A version as stored and served: the document, its digest and the network's signature over the digest. */
export const signedNetworkConfigSchema = z.object({
  version: z.number().int().min(1),
  digest: digestSchema,
  document: z.record(z.string(), z.unknown()),
  signature: signatureSchema,
});
export interface SignedNetworkConfig {
  version: number;
  digest: string;
  document: NetworkConfig;
  signature: string;
}

/** The sha256 (hex) of the document's canonical JSON: the version's identity. */
export function networkConfigDigest(document: unknown): string {
  return sha256Hex(canonicalJson(document));
}

/** What the network key signs: a domain tag (no other signed message starts with it) and the digest. */
export function signingMessage(digest: string): string {
  return `resultity/v1/network_config\n${digest}`;
}

/** Validates a document, computes its digest and signs it with the network key. */
export function signNetworkConfig(networkKey: string, document: NetworkConfig): SignedNetworkConfig {
  const checked = networkConfigSchema.parse(document);
  const digest = networkConfigDigest(checked);
  return { version: checked.version, digest, document: checked, signature: signPersonal(networkKey, signingMessage(digest)) };
}

export type VerifyOutcome = { ok: true; config: SignedNetworkConfig } | { ok: false; reason: string };

/**
 * Checks a served config against the network address a node pins: the digest must be the document's,
 * the signature the network key's over it, and the document a valid config of the version claimed.
 * The digest is computed over the document exactly as received (before any parsing drops a field a
 * newer format may carry), so a changed byte anywhere fails it.
 */
export function verifyNetworkConfig(served: unknown, networkAddress: string): VerifyOutcome {
  const envelope = signedNetworkConfigSchema.safeParse(served);
  if (!envelope.success) return { ok: false, reason: `malformed: ${envelope.error.issues[0]?.message ?? 'invalid'}` };
  const { digest, document, signature, version } = envelope.data;
  let computed: string;
  try {
    computed = networkConfigDigest(document);
  } catch {
    return { ok: false, reason: 'the document cannot be encoded canonically' };
  }
  if (computed !== digest) return { ok: false, reason: 'digest mismatch: the document is not the one the digest names' };
  const signer = recoverPersonal(signingMessage(digest), signature);
  if (signer === null || signer !== networkAddress.toLowerCase()) return { ok: false, reason: 'not signed by the network key' };
  const parsed = networkConfigSchema.safeParse(document);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, reason: `invalid document: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}` };
  }
  if (parsed.data.version !== version) return { ok: false, reason: `the envelope says version ${version}, the document ${parsed.data.version}` };
  return { ok: true, config: { version, digest, document: parsed.data, signature } };
}

/** The job and heartbeat parameters the environment gives: those of the genesis version. */
export function parametersFromEnv(
  config: Pick<Config, 'MAX_TOKENS_DEFAULT' | 'JOB_ATTEMPT_TIMEOUT_MS' | 'JOB_MAX_ATTEMPTS' | 'HEARTBEAT_TTL_MS' | 'NODE_START_SLOTS'>,
): { jobs: JobParameters; heartbeat: HeartbeatParameters; participation: ParticipationRules; capacity: CapacityRules } {
  return {
    jobs: {
      defaultMaxTokens: Math.min(config.MAX_TOKENS_DEFAULT, MAX_TOKENS_LIMIT),
      // The environment sets no maximum (each model's context is the only bound): the largest allowed.
      maxTokens: MAX_TOKENS_LIMIT,
      executionTimeoutMs: Math.min(config.JOB_ATTEMPT_TIMEOUT_MS, MAX_EXECUTION_TIMEOUT_MS),
      maxAttempts: Math.min(config.JOB_MAX_ATTEMPTS, MAX_ATTEMPTS_LIMIT),
    },
    // What the gateway told nodes before configs existed: a heartbeat every third of the TTL.
    heartbeat: { intervalMs: Math.floor(config.HEARTBEAT_TTL_MS / 3), ttlMs: config.HEARTBEAT_TTL_MS },
    participation: { networks: [...NETWORKS], minAgentVersion: null },
    capacity: { startSlots: config.NODE_START_SLOTS, caps: [] },
  };
}

/** A model row as the config states it. */
export function configModelOf(m: { name: string; version: string; content_hash: string | null; min_gpu_memory_mb: number }): ConfigModel {
  return { name: m.name, version: m.version, contentHash: m.content_hash, requirements: { minGpuMemoryMb: m.min_gpu_memory_mb } };
}

/** Builds and validates a document; models and runtimes are sorted by name, so equal content reads equal. */
export function buildNetworkConfig(parts: Omit<z.input<typeof networkConfigSchema>, 'format'>): NetworkConfig {
  const byName = <T extends { name: string }>(a: T, b: T) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  return networkConfigSchema.parse({
    format: NETWORK_CONFIG_FORMAT,
    ...parts,
    models: [...parts.models].sort(byName),
    runtimes: [...parts.runtimes].sort(byName),
    participation: { ...parts.participation, networks: [...parts.participation.networks].sort() },
  });
}

/** Compares dotted versions numerically (1.10 > 1.9); a missing part counts as 0. */
export function compareDottedVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/**
 * Why a node may not take part under `rules`, or null when it may. `agentVersion` is what the node
 * registered with (e.g. resultity-node/0.1.0): the dotted numbers after its last '/' are its version.
 */
export function participationProblem(rules: ParticipationRules, node: { agentVersion: string; network: string }): string | null {
  if (!(rules.networks as readonly string[]).includes(node.network)) return `the network does not accept nodes of ${node.network} (accepted: ${rules.networks.join(', ')})`;
  if (rules.minAgentVersion !== null) {
    const version = node.agentVersion.slice(node.agentVersion.lastIndexOf('/') + 1);
    if (!DOTTED_VERSION_PATTERN.test(version) || compareDottedVersions(version, rules.minAgentVersion) < 0) {
      return `agent version ${node.agentVersion} is below the network's minimum ${rules.minAgentVersion}`;
    }
  }
  return null;
}
