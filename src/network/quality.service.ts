// Node quality: blind jobs and scores. One pass every QUALITY_INTERVAL_MS, run by whichever maintenance
// instance takes the advisory lock (so N instances do it once):
//   1. blind jobs: every BLIND_JOB_INTERVAL_MS, one job per model that has active probes, submitted
//      through the ordinary accept path under the network's own namespace. On the node's wire it is a
//      job like any other (same dispatch, same signature, a fresh job id); no consumer is billed: the
//      network's namespace pays, funded from the platform's funding account, so the node is paid as for
//      any job and cannot tell from its earnings either;
//   3. scores: success rate, latency against peers on the same models and blind accuracy over the last
//      SCORE_WINDOW_HOURS (src/domain/scores.ts), written to PostgreSQL and mirrored to Redis, where
//      reservations weight their choice of node by them.
import type { Logger } from 'pino';
import { PeriodicTask } from '../common/periodic-task.js';
import { z } from 'zod';
import { text } from '../domain/wire-strings.js';
import type { Config } from '../config.js';
import { errors } from '../errors.js';
import { blindVerdict, nodeScore, scoreInputs } from '../domain/scores.js';
import { NETWORKS, type Network } from '../domain/eligibility.js';
import { jobRequestSchema, type JobRequest } from '../domain/protocol.js';
import type { ModelRow } from '../postgres/models.repository.js';
import { usageDrift } from '../domain/usage-bounds.js';
import type { UsageSamples } from '../redis/usage-samples.repository.js';
import type { AttemptStats, BlindProbeRow, NodeScoreRow, PendingBlindJob } from '../postgres/quality.repository.js';
import type { NodeScore } from '../domain/scores.js';
import type { PayloadsRepository } from '../mongo/payloads.repository.js';
import type { ScoresMirror } from '../redis/scores.mirror.js';
import type { NodeFlagsService } from './node-flags.service.js';
import type { ApiKeyPrincipal } from '../domain/api-keys.js';

const BLIND_PURPOSE = 'blind-jobs';
const VERDICT_BATCH = 200;
/** How long after a blind job ended its answer may still be on its way to the payload store (see judgeEndedBlindJobs). */
const ANSWER_GRACE_MS = 60_000;

export const blindProbeInputSchema = z
  .object({
    model: text().min(1).max(128),
    request: jobRequestSchema,
    expected_sha256: z.string().regex(/^[0-9a-f]{64}$/, 'lower-case hex SHA-256 of the exact answer').optional(),
    expected_contains: text().min(1).max(2000).optional(),
  })
  .refine((p) => p.expected_sha256 !== undefined || p.expected_contains !== undefined, 'name the right answer: expected_sha256 and/or expected_contains');
export type BlindProbeInput = z.infer<typeof blindProbeInputSchema>;

/**
 * What the quality pass needs of the cloud role: accepting a blind job like any client's (the same hold,
 * queue and settlement, so that a node cannot tell it apart). A port, wired in the composition root, so
 * that this service does not depend on the role.
 */
export interface BlindJobIntake {
  accept(principal: ApiKeyPrincipal, models: readonly string[], request: JobRequest): Promise<{ job: { id: string } }>;
}

/** What it needs of the tenants' administration: the network's own account, namespace, key and credits. */
export interface SystemTenants {
  createAccount(name: string): Promise<{ id: string }>;
  createNamespace(accountId: string, name: string, network: Network): Promise<{ id: string }>;
  issueApiKey(namespaceId: string, opts: { name: string }): Promise<{ key: { id: string } }>;
  topUp(namespaceId: string, credits: number, memo: string): Promise<unknown>;
}

/**
 * What the quality pass needs from PostgreSQL (postgres/quality.store.ts; in memory:
 * test/fakes/quality.store.ts). No transaction spans two calls: each is one statement.
 */
export interface QualityStore {
  /** Runs `fn` unless another instance is running it (an advisory lock); false when one is. */
  exclusive(fn: () => Promise<void>): Promise<boolean>;
  findModel(name: string): Promise<ModelRow | null>;
  listModelNames(): Promise<string[]>;
  insertBlindProbe(p: { model: string; request: JobRequest; expectedSha256: string | null; expectedContains: string | null }): Promise<BlindProbeRow>;
  listBlindProbes(activeOnly?: boolean): Promise<BlindProbeRow[]>;
  /** false: no such active probe. */
  deactivateBlindProbe(id: string): Promise<boolean>;
  lastBlindJobAt(): Promise<Date | null>;
  recordBlindJob(jobId: string, probeId: string): Promise<void>;
  /** Blind jobs whose job has ended and that have no verdict yet, oldest first. */
  listEndedUnevaluated(limit: number): Promise<PendingBlindJob[]>;
  /** Records a verdict once; false when one was already recorded. */
  recordBlindVerdict(jobId: string, nodeId: string | null, passed: boolean | null, detail: string): Promise<boolean>;
  /** How many of the node's latest (up to `lookBack`) judged blind jobs in a row were failed. */
  blindFailureStreak(nodeId: string, lookBack: number): Promise<number>;
  attemptStats(since: Date, maxJobAgeMs: number): Promise<AttemptStats[]>;
  blindStats(since: Date): Promise<Array<{ node_id: string; passed: number; evaluated: number }>>;
  upsertNodeScore(nodeId: string, score: NodeScore, attempts: number, blindJobs: number): Promise<void>;
  listNodeScores(): Promise<NodeScoreRow[]>;
  /** The network's own namespace and key for a purpose (blind jobs per network). */
  findSystemPrincipal(purpose: string): Promise<{ namespace_id: string; api_key_id: string } | null>;
  saveSystemPrincipal(purpose: string, namespaceId: string, apiKeyId: string): Promise<void>;
  accountOfNamespace(namespaceId: string): Promise<string | null>;
  /** The namespace's available credits, in micro-credits. */
  availableMicro(namespaceId: string): Promise<number>;
}

export interface QualityDeps {
  config: Config;
  store: QualityStore;
  payloads: Pick<PayloadsRepository, 'find'>;
  jobs: BlindJobIntake;
  admin: SystemTenants;
  flags: Pick<NodeFlagsService, 'set'>;
  scores: Pick<ScoresMirror, 'write' | 'writeEarned'>;
  usageSamples: Pick<UsageSamples, 'ofModel'>;
  logger: Logger;
}

export class QualityService {
  private readonly task: PeriodicTask;

  constructor(private readonly d: QualityDeps) {
    this.task = new PeriodicTask('quality pass', d.config.QUALITY_INTERVAL_MS, () => this.pass(), d.logger);
  }

  start(): void {
    this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** One pass (blind jobs due, verdicts, scores), if this instance gets the lock; false when another has it. */
  async pass(now = new Date()): Promise<boolean> {
    return this.d.store.exclusive(async () => {
      // Verdicts first: a node that has just failed one too many is benched before new blind jobs go out.
      await this.judgeEndedBlindJobs();
      await this.submitBlindJobsIfDue(now);
      await this.updateScores(now);
    });
  }

  // ---- blind probes (admin) --------------------------------------------------------------------------

  async addProbe(input: BlindProbeInput): Promise<BlindProbeRow> {
    const model = await this.d.store.findModel(input.model);
    if (!model) throw errors.notFound('Model');
    if (input.request.max_tokens > model.context_tokens) throw errors.invalid(`max_tokens exceeds the model's context of ${model.context_tokens}`, 'request.max_tokens');
    return this.d.store.insertBlindProbe({
      model: input.model,
      request: input.request,
      expectedSha256: input.expected_sha256 ?? null,
      expectedContains: input.expected_contains ?? null,
    });
  }

  listProbes(): Promise<BlindProbeRow[]> {
    return this.d.store.listBlindProbes();
  }

  async retireProbe(id: string): Promise<void> {
    if (!(await this.d.store.deactivateBlindProbe(id))) throw errors.notFound('Blind probe');
  }

  listScores(): Promise<NodeScoreRow[]> {
    return this.d.store.listNodeScores();
  }

  // ---- blind jobs -----------------------------------------------------------------------------------

  private async submitBlindJobsIfDue(now: Date): Promise<void> {
    const interval = this.d.config.BLIND_JOB_INTERVAL_MS;
    if (interval === 0) return;
    // When the last one was submitted is in PostgreSQL, so the cadence holds whichever instance runs the pass.
    const lastAt = await this.d.store.lastBlindJobAt();
    if (lastAt && now.getTime() - lastAt.getTime() < interval) return;
    const probes = await this.d.store.listBlindProbes(true);
    if (probes.length === 0) return;
    const byModel = new Map<string, BlindProbeRow[]>();
    for (const p of probes) byModel.set(p.model, [...(byModel.get(p.model) ?? []), p]);
    // Jobs never cross networks, so each network's nodes get blind jobs of a namespace on that network.
    // (Members of isolated subclouds serve only their subcloud's own jobs, and get none.)
    for (const network of NETWORKS) {
      const principal = await this.blindPrincipal(network);
      for (const [model, candidates] of byModel) {
        const probe = candidates[Math.floor(Math.random() * candidates.length)]!;
        try {
          const { job } = await this.d.jobs.accept(principal, [model], probe.request);
          await this.d.store.recordBlindJob(job.id, probe.id);
        } catch (err) {
          // No node serves the model on this network right now (503), or the budget ran out (402): next time.
          this.d.logger.debug({ err, model, network }, 'blind job not submitted');
        }
      }
    }
  }

  /** The network's own namespace and key for blind jobs on `network`, created on first use, topped up when low. */
  private async blindPrincipal(network: Network): Promise<ApiKeyPrincipal> {
    const purpose = network === 'mainnet' ? BLIND_PURPOSE : `${BLIND_PURPOSE}-${network}`;
    let found = await this.d.store.findSystemPrincipal(purpose);
    if (!found) {
      // One 'network' account owns every system namespace.
      const sibling = await this.d.store.findSystemPrincipal(network === 'mainnet' ? `${BLIND_PURPOSE}-testnet` : BLIND_PURPOSE);
      const accountId = (sibling && (await this.d.store.accountOfNamespace(sibling.namespace_id))) ?? (await this.d.admin.createAccount('network')).id;
      const ns = await this.d.admin.createNamespace(accountId, purpose, network);
      const { key } = await this.d.admin.issueApiKey(ns.id, { name: 'blind jobs (never leaves the backbone)' });
      // The secret is dropped on the spot: the key exists only so the job rows have one; nobody can use it.
      await this.d.store.saveSystemPrincipal(purpose, ns.id, key.id);
      found = { namespace_id: ns.id, api_key_id: key.id };
    }
    const budget = this.d.config.BLIND_BUDGET_CREDITS;
    const available = await this.d.store.availableMicro(found.namespace_id);
    if (available < (budget * 1_000_000) / 2) await this.d.admin.topUp(found.namespace_id, budget - available / 1_000_000, 'blind-job budget');
    return { keyId: found.api_key_id, namespaceId: found.namespace_id, rateLimitRps: null, rateLimitBurst: null, monthlyCapMicro: null, expiresAt: null };
  }

  // ---- verdicts ---------------------------------------------------------------------------------------

  private async judgeEndedBlindJobs(): Promise<void> {
    for (const b of await this.d.store.listEndedUnevaluated(VERDICT_BATCH)) {
      let passed: boolean | null = null;
      let detail = `the job ended ${b.status} without an answer`;
      if (b.status === 'completed') {
        const payload = await this.d.payloads.find(b.job_id, b.namespace_id);
        const answer = payload?.results?.[String(b.attempt)]?.output.content;
        if (answer === undefined) {
          // The answer is stored beside the job's settlement, not before it: a pass that comes between the
          // two leaves the job to a later one, and only an answer still missing after the grace is gone.
          if (b.ended_ms_ago < ANSWER_GRACE_MS) continue;
          detail = 'the answer expired before it was judged';
        } else ({ passed, detail } = blindVerdict(b, answer));
      }
      if (!(await this.d.store.recordBlindVerdict(b.job_id, b.node_id, passed, detail))) continue;
      if (passed === false && b.node_id) {
        this.d.logger.warn({ node: b.node_id, jobId: b.job_id, detail }, 'blind job failed');
        const streak = await this.d.store.blindFailureStreak(b.node_id, this.d.config.BLIND_COOLDOWN_FAILURES);
        if (streak >= this.d.config.BLIND_COOLDOWN_FAILURES) {
          await this.d.flags.set(b.node_id, { cooldownSeconds: this.d.config.NODE_COOLDOWN_SECONDS }, `cooldown: ${streak} blind jobs failed in a row (${detail})`);
        }
      }
    }
  }

  // ---- scores -----------------------------------------------------------------------------------------

  /** Each node's lowest usage factor over the models it served (domain/usage-bounds.ts usageDrift). */
  private async usageFactors(): Promise<Map<string, number>> {
    const lowest = new Map<string, number>();
    for (const model of await this.d.store.listModelNames()) {
      for (const [nodeId, factor] of usageDrift(await this.d.usageSamples.ofModel(model))) {
        lowest.set(nodeId, Math.min(factor, lowest.get(nodeId) ?? 1));
      }
    }
    return lowest;
  }

  private async updateScores(now: Date): Promise<void> {
    const since = new Date(now.getTime() - this.d.config.SCORE_WINDOW_HOURS * 3_600_000);
    const stats = await this.d.store.attemptStats(since, this.d.config.JOB_DEADLINE_MS);
    const blind = await this.d.store.blindStats(since);
    const usageFactors = await this.usageFactors();
    const inputs = scoreInputs(
      stats.map((s) => ({ nodeId: s.node_id, model: s.model, completed: s.completed, failed: s.failed, latencyMs: s.latency_ms })),
      blind.map((b) => ({ nodeId: b.node_id, passed: b.passed, evaluated: b.evaluated })),
      usageFactors,
    );
    for (const [nodeId, input] of inputs) {
      await this.d.store.upsertNodeScore(nodeId, nodeScore(input), input.completed + input.failed, input.blindEvaluated);
    }
    for (const [nodeId, factor] of usageFactors) {
      if (factor < 1) this.d.logger.warn({ node: nodeId, factor }, "node's claimed tokens per byte drift from its peers'");
    }
    await this.d.scores.writeEarned(new Map([...inputs].map(([nodeId, input]) => [nodeId, input.completed])));
    // The whole table, not just this window's nodes: the mirror is back in full after a loss of Redis.
    await this.d.scores.write(new Map((await this.d.store.listNodeScores()).map((r) => [r.node_id, r.score])));
  }
}
