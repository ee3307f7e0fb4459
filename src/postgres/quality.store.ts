// The quality pass's store (network/quality.service.ts QualityStore) on PostgreSQL: the repository
// functions bound to the pool. It matches the port by shape (checked where the service is built).
import type { JobRequest } from '../domain/protocol.js';
import type { NodeScore } from '../domain/scores.js';
import { findNamespace } from './accounts.repository.js';
import { ADVISORY_LOCKS, runExclusive } from './advisory-lock.js';
import type { Db } from './db.js';
import { balanceOf } from './ledger.repository.js';
import { findModel, listModels } from './models.repository.js';
import {
  attemptStats,
  blindFailureStreak,
  blindStats,
  deactivateBlindProbe,
  findSystemPrincipal,
  insertBlindProbe,
  lastBlindJobAt,
  listBlindProbes,
  listEndedUnevaluated,
  listNodeScores,
  recordBlindJob,
  recordBlindVerdict,
  saveSystemPrincipal,
  upsertNodeScore,
} from './quality.repository.js';

export function qualityStore(db: Db) {
  return {
    exclusive: async (fn: () => Promise<void>) => (await runExclusive(db, ADVISORY_LOCKS.quality, fn)).ran,
    findModel: (name: string) => findModel(db, name),
    listModelNames: async () => (await listModels(db)).map((m) => m.name),
    insertBlindProbe: (p: { model: string; request: JobRequest; expectedSha256: string | null; expectedContains: string | null }) => insertBlindProbe(db, p),
    listBlindProbes: (activeOnly?: boolean) => listBlindProbes(db, activeOnly),
    deactivateBlindProbe: (id: string) => deactivateBlindProbe(db, id),
    lastBlindJobAt: () => lastBlindJobAt(db),
    recordBlindJob: (jobId: string, probeId: string) => recordBlindJob(db, jobId, probeId),
    listEndedUnevaluated: (limit: number) => listEndedUnevaluated(db, limit),
    recordBlindVerdict: (jobId: string, nodeId: string | null, passed: boolean | null, detail: string) => recordBlindVerdict(db, jobId, nodeId, passed, detail),
    blindFailureStreak: (nodeId: string, lookBack: number) => blindFailureStreak(db, nodeId, lookBack),
    attemptStats: (since: Date, maxJobAgeMs: number) => attemptStats(db, since, maxJobAgeMs),
    blindStats: (since: Date) => blindStats(db, since),
    upsertNodeScore: (nodeId: string, score: NodeScore, attempts: number, blindJobs: number) => upsertNodeScore(db, nodeId, score, attempts, blindJobs),
    listNodeScores: () => listNodeScores(db),
    findSystemPrincipal: (purpose: string) => findSystemPrincipal(db, purpose),
    saveSystemPrincipal: (purpose: string, namespaceId: string, apiKeyId: string) => saveSystemPrincipal(db, purpose, namespaceId, apiKeyId),
    accountOfNamespace: async (namespaceId: string) => (await findNamespace(db, namespaceId))?.account_id ?? null,
    availableMicro: (namespaceId: string) => balanceOf(db, 'ns_available', namespaceId),
  };
}
