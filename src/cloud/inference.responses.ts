// The answers of the inference routes in OpenAI's shapes: `chat.completion`, `text_completion`, the
// embeddings `list`, and the job resource of asynchronous submission. None names the node that served
// the job. `output` null: the job's output has expired (or was never stored).
import { formatCredits } from '../errors.js';
import type { JobRow } from '../postgres/jobs.repository.js';
import type { PayloadDoc } from '../mongo/payloads.repository.js';
import { jobKind, type JobOutput } from '../domain/protocol.js';
import { serviceTierOf } from '../domain/priority.js';
import { base64Embedding } from './embeddings.schema.js';

function usageOf(job: JobRow) {
  const prompt = job.prompt_tokens ?? 0;
  const completion = job.completion_tokens ?? 0;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

function extension(job: JobRow, output: JobOutput | null) {
  return { job_id: job.id, priority: job.priority, credits_charged: formatCredits(job.charged_micro ?? 0), output_expired: output === null };
}

/** An OpenAI `chat.completion` object. */
export function chatCompletion(job: JobRow, output: JobOutput | null) {
  return {
    id: job.id,
    object: 'chat.completion' as const,
    created: Math.floor(job.created_at.getTime() / 1000),
    model: job.model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant' as const,
          // OpenAI's content is null on a turn that only calls tools.
          content: output?.tool_calls && output.content === '' ? null : (output?.content ?? null),
          refusal: null,
          ...(output?.tool_calls ? { tool_calls: output.tool_calls } : {}),
        },
        finish_reason: output?.finish_reason ?? 'stop',
        logprobs: output?.logprobs ?? null,
      },
    ],
    usage: usageOf(job),
    service_tier: serviceTierOf(job.priority),
    resultity: extension(job, output),
  };
}

/** An OpenAI `text_completion` object (POST /v1/completions). */
export function textCompletion(job: JobRow, output: JobOutput | null) {
  return {
    id: job.id,
    object: 'text_completion' as const,
    created: Math.floor(job.created_at.getTime() / 1000),
    model: job.model,
    choices: [{ index: 0, text: output?.content ?? '', finish_reason: output?.finish_reason ?? 'stop', logprobs: null }],
    usage: usageOf(job),
    resultity: extension(job, output),
  };
}

/** OpenAI's embeddings answer: one `embedding` per input, as numbers or (encoding_format base64) float32 bytes. */
export function embeddingList(job: JobRow, output: JobOutput | null, encoding: 'float' | 'base64') {
  const prompt = job.prompt_tokens ?? 0;
  return {
    object: 'list' as const,
    data: (output?.embeddings ?? []).map((vector, index) => ({
      object: 'embedding' as const,
      index,
      embedding: encoding === 'base64' ? base64Embedding(vector) : vector,
    })),
    model: job.model,
    usage: { prompt_tokens: prompt, total_tokens: prompt },
    resultity: extension(job, output),
  };
}

/** The job resource returned by async submission and by GET /v1/jobs/{id}; its result in its kind's shape. */
export function jobView(job: JobRow, payload: PayloadDoc | null) {
  const output = payload?.results?.[String(job.attempt)]?.output ?? null;
  const kind = payload?.input ? jobKind(payload.input) : output?.embeddings ? 'embedding' : 'chat';
  const result = job.status !== 'completed' ? null : kind === 'embedding' ? embeddingList(job, output, 'float') : kind === 'completion' ? textCompletion(job, output) : chatCompletion(job, output);
  return {
    id: job.id,
    object: 'chat.completion.job' as const,
    kind,
    status: job.status,
    model: job.model,
    priority: job.priority,
    created: Math.floor(job.created_at.getTime() / 1000),
    finished: job.finished_at ? Math.floor(job.finished_at.getTime() / 1000) : null,
    credits_held: formatCredits(job.finished_at ? 0 : job.hold_micro),
    credits_charged: job.charged_micro === null ? null : formatCredits(job.charged_micro),
    result,
    error: job.status === 'failed' || job.status === 'expired' || job.status === 'cancelled' ? { code: job.error_code, message: job.error_message } : null,
  };
}
