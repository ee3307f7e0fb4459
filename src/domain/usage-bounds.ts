// Usage bounds: what a node may claim for an output it delivered. The claim is the bill, so it is checked
// against a number the backbone computes itself from the output:
//   - a model whose tokenizer is registered: the output's tokens, counted here, plus a few for the special
//     tokens a runtime counts but never shows (end of sequence, say);
//   - any other model: the output's UTF-8 bytes times the model's `max_tokens_per_byte` (1 by default: a
//     token of a byte-level BPE covers at least one byte), plus the same allowance.
// A claim above the bound is an invalid result (io/results.service.ts): retried elsewhere, and counted
// against the node. Within the bound, honest nodes still differ from a lying one in how many tokens they
// claim per byte; the quality pass compares each node with its peers on the same model (usageDrift).

/** Counts a text's tokens with a model's own tokenizer (catalog/tokenizers.ts loads it). */
export interface TokenCounter {
  count(text: string): number;
}

export interface UsageRule {
  /** The model's tokenizer, when one is registered. */
  tokenizer: TokenCounter | null;
  /** Tokens per UTF-8 byte at most, for a model without a tokenizer. */
  maxTokensPerByte: number;
}

/** Tokens a runtime may count beyond those it shows (special tokens: end of sequence, end of turn). */
export const SPECIAL_TOKEN_ALLOWANCE = 4;

/** The most completion tokens a node may claim for `content`. */
export function completionTokenBound(rule: UsageRule, content: string): number {
  const shown = rule.tokenizer ? rule.tokenizer.count(content) : Math.ceil(Buffer.byteLength(content, 'utf8') * rule.maxTokensPerByte);
  return shown + SPECIAL_TOKEN_ALLOWANCE;
}

/**
 * Tokens delivered in `content`, as billed when a job ends by its client's doing part-way (no claim of the
 * node's to check): counted with the tokenizer, or else bytes times `peerTokensPerByte` (what honest nodes
 * claim per byte on the model, when known), never more than the bound itself.
 */
export function deliveredTokens(rule: UsageRule, content: string, peerTokensPerByte: number | null): number {
  if (content === '') return 0;
  if (rule.tokenizer) return rule.tokenizer.count(content);
  const ratio = Math.min(peerTokensPerByte ?? rule.maxTokensPerByte, rule.maxTokensPerByte);
  return Math.max(1, Math.ceil(Buffer.byteLength(content, 'utf8') * ratio));
}

/** Claimed tokens and delivered bytes of one node on one model, summed over its completed jobs. */
export interface UsageSample {
  nodeId: string;
  tokens: number;
  bytes: number;
}

/** Bytes a node must have delivered on a model before its ratio is compared with its peers'. */
export const DRIFT_MIN_BYTES = 1_024;
/** How far a node's tokens per byte may stray from the median of its model's nodes before it loses score. */
export const DRIFT_TOLERANCE = 0.2;
/** Nodes with enough samples a model needs before any is judged: with two, which one strays is unknowable. */
export const DRIFT_MIN_NODES = 3;

/** The median tokens per byte of the nodes with enough samples, or null with too few of them. */
export function medianTokensPerByte(samples: readonly UsageSample[]): number | null {
  const ratios = samples
    .filter((s) => s.bytes >= DRIFT_MIN_BYTES)
    .map((s) => s.tokens / s.bytes)
    .sort((a, b) => a - b);
  if (ratios.length < DRIFT_MIN_NODES) return null;
  const mid = Math.floor(ratios.length / 2);
  return ratios.length % 2 === 1 ? ratios[mid]! : (ratios[mid - 1]! + ratios[mid]!) / 2;
}

/**
 * Each judged node's usage factor on a model, in (0, 1]: 1 while its tokens per byte stay within the
 * tolerance of the median of the model's nodes, else how far it strays (median/ratio above it, ratio/median
 * below: a node claiming too little is as likely to run another model as one claiming too much).
 */
export function usageDrift(samples: readonly UsageSample[]): Map<string, number> {
  const median = medianTokensPerByte(samples);
  const factors = new Map<string, number>();
  if (median === null || median <= 0) return factors;
  for (const s of samples) {
    if (s.bytes < DRIFT_MIN_BYTES) continue;
    const drift = s.tokens / s.bytes / median;
    factors.set(s.nodeId, drift <= 1 + DRIFT_TOLERANCE && drift >= 1 / (1 + DRIFT_TOLERANCE) ? 1 : Math.min(drift, 1 / drift));
  }
  return factors;
}
