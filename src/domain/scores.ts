// Node scores: how much a node is trusted with work, from three signals, each in [0, 1]:
//   - success rate: completed attempts over attempts that ended by the node's doing (failed, timed out,
//     invalid result; a dropped connection or an attempt superseded elsewhere is not counted);
//   - latency factor: how the node's mean completion time compares with all nodes' on the same models
//     (1 when it is as fast as its peers or faster, 1/2 when twice as slow);
//   - blind accuracy: blind jobs answered right over blind jobs evaluated.
// Rates are smoothed with one success and one failure of prior (Laplace), so a new node starts at 1/2
// rather than at 0 or 1, and a single outcome never swings it to an extreme.
// score = success × accuracy × (1/2 + latency/2) × usage: a node that fails or lies loses most of its share, a
// slow but honest node loses at most half. The usage factor (domain/usage-bounds.ts usageDrift) is below 1
// for a node whose claimed tokens per byte stray from its peers' on the same model: claims within the
// bound, but not what the others bill for the same kind of output.
import { sha256Hex } from './signatures.js';

export interface ScoreInputs {
  completed: number;
  failed: number;
  /** The node's mean completion time over its peers' on the same models; null without data. */
  latencyRatio: number | null;
  blindPassed: number;
  blindEvaluated: number;
  /** The node's usage factor (lowest over its models), 1 when in line with its peers or not judged. */
  usageFactor?: number;
}

export interface NodeScore {
  score: number;
  successRate: number;
  latencyFactor: number;
  blindAccuracy: number;
  usageFactor: number;
}

export function smoothedRate(good: number, total: number): number {
  return (good + 1) / (total + 2);
}

export function nodeScore(i: ScoreInputs): NodeScore {
  const successRate = smoothedRate(i.completed, i.completed + i.failed);
  const blindAccuracy = smoothedRate(i.blindPassed, i.blindEvaluated);
  const latencyFactor = i.latencyRatio === null || i.latencyRatio <= 1 ? 1 : 1 / i.latencyRatio;
  const usageFactor = i.usageFactor ?? 1;
  return { score: successRate * blindAccuracy * (0.5 + 0.5 * latencyFactor) * usageFactor, successRate, latencyFactor, blindAccuracy, usageFactor };
}

/** The score of a node the network knows nothing about yet (what reservations assume without a score). */
export const NEW_NODE_SCORE = nodeScore({ completed: 0, failed: 0, latencyRatio: null, blindPassed: 0, blindEvaluated: 0 }).score;

export interface BlindExpectation {
  expected_sha256: string | null;
  expected_contains: string | null;
}

/** Whether an answer matches a probe: every expectation the probe names must hold. */
export function blindVerdict(probe: BlindExpectation, content: string): { passed: boolean; detail: string } {
  if (probe.expected_sha256 !== null && sha256Hex(content) !== probe.expected_sha256) return { passed: false, detail: 'fingerprint mismatch' };
  if (probe.expected_contains !== null && !content.includes(probe.expected_contains)) return { passed: false, detail: 'expected answer missing' };
  return { passed: true, detail: 'ok' };
}

/** One node's attempts on one model over the score window, as PostgreSQL counts them. */
export interface NodeModelAttempts {
  nodeId: string;
  model: string;
  completed: number;
  /** Attempts that ended by the node's doing (failed, timed out, invalid result). */
  failed: number;
  /** Mean completion time of its completed attempts; null without any. */
  latencyMs: number | null;
}

/**
 * Each node's score inputs from its attempts per model, its blind-job record and its usage factor. The
 * latency ratio is the node's mean completion time over each model's mean (all nodes, weighted by their
 * completed attempts), averaged over the node's models weighted by its completed attempts on each: a node
 * is compared with its peers on the same work, never with nodes serving faster models.
 */
export function scoreInputs(
  attempts: readonly NodeModelAttempts[],
  blind: ReadonlyArray<{ nodeId: string; passed: number; evaluated: number }>,
  usageFactors: ReadonlyMap<string, number>,
): Map<string, Required<ScoreInputs>> {
  const modelMean = new Map<string, { sum: number; n: number }>();
  for (const a of attempts) {
    if (a.latencyMs === null || a.completed === 0) continue;
    const m = modelMean.get(a.model) ?? { sum: 0, n: 0 };
    m.sum += a.latencyMs * a.completed;
    m.n += a.completed;
    modelMean.set(a.model, m);
  }
  const perNode = new Map<string, { completed: number; failed: number; ratioSum: number; ratioWeight: number; passed: number; evaluated: number }>();
  const entry = (id: string) => {
    let e = perNode.get(id);
    if (!e) perNode.set(id, (e = { completed: 0, failed: 0, ratioSum: 0, ratioWeight: 0, passed: 0, evaluated: 0 }));
    return e;
  };
  for (const a of attempts) {
    const e = entry(a.nodeId);
    e.completed += a.completed;
    e.failed += a.failed;
    const mean = modelMean.get(a.model);
    if (a.latencyMs !== null && a.completed > 0 && mean && mean.sum > 0) {
      e.ratioSum += (a.latencyMs / (mean.sum / mean.n)) * a.completed;
      e.ratioWeight += a.completed;
    }
  }
  for (const b of blind) Object.assign(entry(b.nodeId), { passed: b.passed, evaluated: b.evaluated });
  return new Map(
    [...perNode].map(([nodeId, e]) => [
      nodeId,
      {
        completed: e.completed,
        failed: e.failed,
        latencyRatio: e.ratioWeight > 0 ? e.ratioSum / e.ratioWeight : null,
        blindPassed: e.passed,
        blindEvaluated: e.evaluated,
        usageFactor: usageFactors.get(nodeId) ?? 1,
      },
    ]),
  );
}
