// Pricing: what a job may cost at most (the hold taken at accept), what it actually costs (captured at
// completion), and how the capture is split between the node's operator and the platform. All amounts
// are integer micro-credits; prices are micro-credits per token.
import type { ChatMessage, JobRequest, Usage } from './protocol.js';

export interface ModelPrices {
  inputPriceMicro: number;
  outputPriceMicro: number;
  /** The least a completed request with output costs. */
  minChargeMicro: number;
  /** The job's priority-class surcharge in basis points (negative: a discount), applied to the whole charge. */
  surchargeBps: number;
}

/** Per-message allowance for role markers and separators that chat templates add around each message. */
const TEMPLATE_TOKENS_PER_MESSAGE = 8;
/**
 * Per-request allowance for what templates add once (Llama 3.1's default system header with its dates
 * is about 25 tokens even for "hi").
 */
const TEMPLATE_TOKENS_PER_REQUEST = 64;

/**
 * An upper bound on the prompt's token count without a tokenizer: a byte-level BPE token covers at
 * least one UTF-8 byte, so the byte count bounds the content tokens. Deliberately pessimistic: the hold
 * must cover the worst case, and whatever is not used is released at settlement. A node that reports
 * more prompt tokens than this has returned an invalid result.
 */
export function promptTokenUpperBound(messages: readonly ChatMessage[]): number {
  let total = TEMPLATE_TOKENS_PER_REQUEST;
  for (const m of messages) total += Buffer.byteLength(m.content, 'utf8') + TEMPLATE_TOKENS_PER_MESSAGE;
  return total;
}

/** What a runtime's template adds once when a request has tools (the instructions around their list), and per tool. */
const TEMPLATE_TOKENS_FOR_TOOLS = 256;
const TEMPLATE_TOKENS_PER_TOOL = 16;

/**
 * The prompt bound of a whole request: its messages' text as above, and what the runtime also puts in the
 * prompt: the tool calls of earlier assistant turns, the tools' definitions and the response format's
 * schema. Templates print JSON their own way (indented, key by key), so its compact bytes count twice.
 */
export function requestPromptBound(request: JobRequest): number {
  let total = promptTokenUpperBound(request.messages);
  for (const m of request.messages) if (m.tool_calls) total += 2 * Buffer.byteLength(JSON.stringify(m.tool_calls), 'utf8') + TEMPLATE_TOKENS_PER_MESSAGE;
  if (request.tools) total += TEMPLATE_TOKENS_FOR_TOOLS + request.tools.length * TEMPLATE_TOKENS_PER_TOOL + 2 * Buffer.byteLength(JSON.stringify(request.tools), 'utf8');
  if (request.response_format && request.response_format.type !== 'text') total += TEMPLATE_TOKENS_FOR_TOOLS + 2 * Buffer.byteLength(JSON.stringify(request.response_format), 'utf8');
  return total;
}

export function worstCaseCost(prices: ModelPrices, promptTokens: number, maxTokens: number): number {
  const base = checkedAmount(Math.max(prices.minChargeMicro, promptTokens * prices.inputPriceMicro + maxTokens * prices.outputPriceMicro));
  return withSurcharge(base, prices.surchargeBps);
}

/**
 * The amount captured for a completed job: actual usage at the job's prices, never more than its hold.
 * Empty output is not charged (DESIGN: no charge for failed or empty output).
 */
export function actualCost(prices: ModelPrices, usage: Usage, hold: number, outputEmpty = false): number {
  if (outputEmpty) return 0;
  const cost = checkedAmount(usage.prompt_tokens * prices.inputPriceMicro + usage.completion_tokens * prices.outputPriceMicro);
  return Math.min(withSurcharge(Math.max(cost, prices.minChargeMicro), prices.surchargeBps), hold);
}

/**
 * An amount with a surcharge of `bps` basis points, rounded up to the micro-credit (a discount rounds in
 * the platform's favour too, by less than one micro-credit). Computed in BigInt: amount × 10000 can pass
 * 2^53 for amounts that are themselves safe.
 */
export function withSurcharge(amount: number, bps: number): number {
  if (bps === 0) return amount;
  const scaled = (BigInt(amount) * BigInt(10_000 + bps) + 9_999n) / 10_000n;
  return checkedAmount(Number(scaled));
}

/** Splits a capture into the operator's share (rounded down) and the platform's commission (the rest). */
export function splitCapture(amount: number, operatorShareBps: number): { operator: number; platform: number } {
  const operator = Math.floor((amount * operatorShareBps) / 10_000);
  return { operator, platform: amount - operator };
}

function checkedAmount(n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`amount out of range: ${n}`);
  return n;
}
