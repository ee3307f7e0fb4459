// What every inference route (chat, completions, embeddings) does once its body is parsed: read the
// Resultity headers, accept the job, and answer it synchronously, asynchronously (Prefer: respond-async,
// 202 and a job to poll) or as a stream. The route only says what the job is and how its answer reads.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { errors, formatCredits } from '../errors.js';
import type { JobRow } from '../postgres/jobs.repository.js';
import type { JobOutput, JobRequest } from '../domain/protocol.js';
import type { Principal } from './auth.service.js';
import { jobFailure, type InferenceService } from './inference.service.js';
import { sendAppError } from '../http/errors.http.js';
import { isPriorityClass, PRIORITY_CLASSES, priorityFromServiceTier, type PriorityClass } from '../domain/priority.js';
import { REGION_PATTERN } from '../domain/eligibility.js';
import type { StreamRelay } from './stream-relay.service.js';
import { sendChatStream, type StreamFormat } from './chat-stream.http.js';
import { countDegraded } from '../metrics/degraded.js';
import { bindJobToLogContext } from '../common/log-context.js';

export interface SubmissionDeps {
  jobs: InferenceService;
  relay: StreamRelay;
  syncGraceMs: number;
  maxDeadlineMs: number;
  /** Whether Redis is usable now (redis/redis-health.ts redisReady); absent: always tried. */
  redisReady?: () => boolean;
}

export interface Submission {
  /** The models to try, in order (one, or OpenRouter's `models` fallbacks): the first that can be served runs it. */
  models: readonly string[];
  job: JobRequest;
  /** Streamed (`stream: true`): the chunks' format and whether a usage chunk ends them. */
  stream: { format: StreamFormat; includeUsage: boolean } | null;
  serviceTier: string | undefined;
  /** The answer of a completed job, in the route's own shape. */
  render(job: JobRow, output: JobOutput | null): unknown;
  /** The job resource answered to Prefer: respond-async. */
  view(job: JobRow): unknown;
}

export async function submitJob(request: FastifyRequest, reply: FastifyReply, principal: Principal, d: SubmissionDeps, s: Submission): Promise<unknown> {
  const respondAsync = /\brespond-async\b/i.test(String(request.headers.prefer ?? ''));
  if (s.stream && respondAsync) throw errors.invalid('stream: true cannot be combined with Prefer: respond-async; use one or the other.', 'stream');
  // A stream's chunks travel through Redis: without it, refused before anything is held or charged.
  if (s.stream && d.redisReady && !d.redisReady()) {
    countDegraded('refused_no_redis');
    throw errors.engineUnavailable('Streaming (stream: true)');
  }
  const idempotencyKey = request.headers['idempotency-key'];
  if (idempotencyKey !== undefined && (typeof idempotencyKey !== 'string' || !/^[\x21-\x7e]{1,255}$/.test(idempotencyKey))) {
    throw errors.invalid('Idempotency-Key must be 1 to 255 visible ASCII characters.', 'Idempotency-Key');
  }
  const deadlineMs = deadlineHeader(request.headers['x-resultity-deadline-ms'], d.maxDeadlineMs);
  const priority = priorityOf(request.headers['x-resultity-priority'], s.serviceTier);
  const region = regionHeader(request.headers['x-resultity-region']);
  const { job, replayed, watch } = await d.jobs.accept(principal, s.models, s.job, {
    idempotencyKey,
    priority,
    watch: !respondAsync,
    ...(deadlineMs !== undefined ? { deadlineMs } : {}),
    ...(region !== undefined ? { region } : {}),
  });
  reply.header('x-resultity-job-id', job.id);
  bindJobToLogContext(job.id);
  if (replayed) reply.header('idempotent-replayed', 'true');

  if (s.stream) {
    // The relay follows the job's stream, and its end with the watch begun before the publish.
    await sendChatStream(reply, d.relay, job, { ...s.stream, until: job.deadline_at.getTime() + d.syncGraceMs, finished: watch });
    return reply;
  }
  if (respondAsync) {
    reply.header('location', `/v1/jobs/${job.id}`).header('preference-applied', 'respond-async');
    return reply.code(202).send(s.view(job));
  }

  // Stop waiting if the client goes away (the job itself goes on and settles normally). The
  // response's 'close' before it was written is the disconnect; the request's 'close' only means
  // its body was read.
  const abort = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableEnded) abort.abort();
  });
  // From here on the job exists and may be charged: an error must not read as "nothing happened"
  // (a client would resend and pay twice), so any failure answers 202 with the job to poll.
  try {
    const { job: done, output } = await d.jobs.waitForTerminal(job, job.deadline_at.getTime() - Date.now() + d.syncGraceMs, abort.signal, watch);
    if (done.status === 'completed') {
      reply.header('x-resultity-credits-charged', formatCredits(done.charged_micro ?? 0));
      return s.render(done, output);
    }
    if (done.status === 'failed' || done.status === 'expired' || done.status === 'cancelled') return sendAppError(reply, jobFailure(done));
  } catch (err) {
    request.log.error({ err }, 'waiting for an accepted job failed; answering 202');
  }
  reply.header('location', `/v1/jobs/${job.id}`);
  return reply.code(202).send(s.view(job));
}

/** `X-Resultity-Deadline-Ms` (extension): the job's own deadline, from 1 s up to the configured maximum. */
function deadlineHeader(value: string | string[] | undefined, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'string' && /^\d{1,10}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1000 && n <= max)) throw errors.invalid(`X-Resultity-Deadline-Ms must be a whole number of milliseconds from 1000 to ${max}.`, 'X-Resultity-Deadline-Ms');
  return n;
}

/** The job's class: `X-Resultity-Priority` (extension) or OpenAI's `service_tier`; they must agree when both are sent. */
function priorityOf(header: string | string[] | undefined, serviceTier: string | undefined): PriorityClass {
  const fromTier = serviceTier === undefined ? null : priorityFromServiceTier(serviceTier);
  if (header === undefined) return fromTier ?? 'standard';
  if (!isPriorityClass(header)) throw errors.invalid(`X-Resultity-Priority must be one of ${PRIORITY_CLASSES.join(', ')}.`, 'X-Resultity-Priority');
  if (fromTier !== null && serviceTier !== 'auto' && fromTier !== header) {
    throw errors.invalid(`service_tier '${serviceTier}' and X-Resultity-Priority '${header}' disagree; send one of them.`, 'service_tier');
  }
  return header;
}

/** `X-Resultity-Region` (extension): run the job only on nodes that declare this region. */
function regionHeader(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !REGION_PATTERN.test(value)) {
    throw errors.invalid('X-Resultity-Region must be a region slug: 2-32 of a-z, 0-9 and -, starting with a letter (e.g. eu-west).', 'X-Resultity-Region');
  }
  return value;
}
