// In-memory QualityStore (network/quality.service.ts) for the quality pass's fast tests. The statistics
// the engine computes with SQL (attempt outcomes, blind results per node) are set by the test as rows:
// the fake keeps only what the service reads and writes.
import type { ModelRow } from '../../src/postgres/models.repository.js';
import type { AttemptStats, BlindProbeRow, NodeScoreRow, PendingBlindJob } from '../../src/postgres/quality.repository.js';
import type { QualityStore } from '../../src/network/quality.service.js';
import type { NodeScore } from '../../src/domain/scores.js';
import type { JobRequest } from '../../src/domain/protocol.js';
import { FakeDatabase } from './fake-database.js';
import { modelRow } from './catalog.store.js';

export class FakeQualityStore implements QualityStore {
  readonly db = new FakeDatabase({
    models: new Map<string, ModelRow>(),
    probes: [] as BlindProbeRow[],
    /** job id -> probe id */
    blindJobs: new Map<string, string>(),
    lastBlindJobAt: null as Date | null,
    ended: [] as PendingBlindJob[],
    /** verdicts by job id, in the order recorded */
    verdicts: new Map<string, { nodeId: string | null; passed: boolean | null; detail: string }>(),
    attemptStats: [] as AttemptStats[],
    blindStats: [] as Array<{ node_id: string; passed: number; evaluated: number }>,
    scores: new Map<string, NodeScoreRow>(),
    principals: new Map<string, { namespace_id: string; api_key_id: string }>(),
    /** namespace id -> account id */
    namespaces: new Map<string, string>(),
    availableMicro: new Map<string, number>(),
  });
  /** Another instance holds the pass's lock. */
  lockedElsewhere = false;

  addModel(name: string, contextTokens = 4096): void {
    this.db.state.models.set(name, modelRow(name, { context_tokens: contextTokens }));
  }

  private op<R>(name: string, f: () => R): Promise<R> {
    this.db.call(name);
    return Promise.resolve(f());
  }

  async exclusive(fn: () => Promise<void>): Promise<boolean> {
    if (this.lockedElsewhere) return false;
    await fn();
    return true;
  }

  findModel = (name: string) => this.op('findModel', () => this.db.state.models.get(name) ?? null);
  listModelNames = () => this.op('listModelNames', () => [...this.db.state.models.keys()]);

  insertBlindProbe = (p: { model: string; request: JobRequest; expectedSha256: string | null; expectedContains: string | null }) =>
    this.op('insertBlindProbe', () => {
      const row: BlindProbeRow = {
        id: `probe-${this.db.state.probes.length + 1}`,
        model: p.model,
        request: p.request,
        expected_sha256: p.expectedSha256,
        expected_contains: p.expectedContains,
        active: true,
        created_at: new Date(),
      };
      this.db.state.probes.push(row);
      return row;
    });

  listBlindProbes = (activeOnly = false) => this.op('listBlindProbes', () => this.db.state.probes.filter((p) => !activeOnly || p.active));

  deactivateBlindProbe = (id: string) =>
    this.op('deactivateBlindProbe', () => {
      const p = this.db.state.probes.find((x) => x.id === id && x.active);
      if (p) p.active = false;
      return p !== undefined;
    });

  lastBlindJobAt = () => this.op('lastBlindJobAt', () => this.db.state.lastBlindJobAt);

  recordBlindJob = (jobId: string, probeId: string) =>
    this.op('recordBlindJob', () => {
      this.db.state.blindJobs.set(jobId, probeId);
      this.db.state.lastBlindJobAt = new Date();
    });

  listEndedUnevaluated = (limit: number) => this.op('listEndedUnevaluated', () => this.db.state.ended.filter((b) => !this.db.state.verdicts.has(b.job_id)).slice(0, limit));

  recordBlindVerdict = (jobId: string, nodeId: string | null, passed: boolean | null, detail: string) =>
    this.op('recordBlindVerdict', () => {
      if (this.db.state.verdicts.has(jobId)) return false;
      this.db.state.verdicts.set(jobId, { nodeId, passed, detail });
      return true;
    });

  blindFailureStreak = (nodeId: string, lookBack: number) =>
    this.op('blindFailureStreak', () => {
      const judged = [...this.db.state.verdicts.values()].filter((v) => v.nodeId === nodeId && v.passed !== null).reverse().slice(0, lookBack);
      const firstPass = judged.findIndex((v) => v.passed);
      return firstPass === -1 ? judged.length : firstPass;
    });

  attemptStats = () => this.op('attemptStats', () => this.db.state.attemptStats);
  blindStats = () => this.op('blindStats', () => this.db.state.blindStats);

  upsertNodeScore = (nodeId: string, s: NodeScore, attempts: number, blindJobs: number) =>
    this.op('upsertNodeScore', () => {
      this.db.state.scores.set(nodeId, {
        node_id: nodeId,
        score: s.score,
        success_rate: s.successRate,
        latency_factor: s.latencyFactor,
        blind_accuracy: s.blindAccuracy,
        usage_factor: s.usageFactor,
        attempts,
        blind_jobs: blindJobs,
        updated_at: new Date(),
      });
    });

  listNodeScores = () => this.op('listNodeScores', () => [...this.db.state.scores.values()]);
  findSystemPrincipal = (purpose: string) => this.op('findSystemPrincipal', () => this.db.state.principals.get(purpose) ?? null);
  saveSystemPrincipal = (purpose: string, namespaceId: string, apiKeyId: string) =>
    this.op('saveSystemPrincipal', () => void this.db.state.principals.set(purpose, { namespace_id: namespaceId, api_key_id: apiKeyId }));
  accountOfNamespace = (namespaceId: string) => this.op('accountOfNamespace', () => this.db.state.namespaces.get(namespaceId) ?? null);
  availableMicro = (namespaceId: string) => this.op('availableMicro', () => this.db.state.availableMicro.get(namespaceId) ?? 0);
}
