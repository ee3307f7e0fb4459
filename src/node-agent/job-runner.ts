// Runs the jobs the gateway dispatches: checks each one (network signature, duplicates, capacity,
// deadline, model), runs it on the runtime under a deadline, and turns the outcome into a signed result or
// job_error for the agent to deliver. A streamed job's text also goes out piece by piece, as the runtime
// produces it (chunks.ts). Knows nothing about sockets.
import type { Logger } from 'pino';
import {
  outputHash,
  outputSchema,
  usageSchema,
  type JobChunkMessage,
  type JobDispatch,
  type JobErrorMessage,
  type ResultMessage,
} from '../domain/protocol.js';
import { verifyMessage } from '../domain/signatures.js';
import type { NodeIdentity } from './identity.js';
import type { InferenceRuntime } from './runtime.js';
import { ChunkStream } from './chunks.js';

export type JobOutcome = ResultMessage | JobErrorMessage;
export type SignedObject = { type: string; signature: string } & Record<string, unknown>;

export interface JobRunnerOptions {
  identity: NodeIdentity;
  runtime: InferenceRuntime;
  capacity: number;
  /** The network key's address; when known, only jobs it signed are run. */
  networkAddress: () => string | undefined;
  logger: Logger;
  /** The models the node currently advertises; a job for any other model is refused. */
  servedModels: () => readonly string[];
  /** Sends an outcome to the gateway; must not reject. */
  deliver: (outcome: JobOutcome, deadline: number) => Promise<void>;
  /** Sends a streamed job's chunk to the gateway if connected; must not throw. */
  sendChunk: (chunk: JobChunkMessage) => void;
}

// Dispatches remembered to drop duplicates (a gateway re-sending after a reconnect, or a replay).
const SEEN_LIMIT = 4096;
// setTimeout overflows (and fires at once) beyond this many ms.
const MAX_TIMER_MS = 2 ** 31 - 1;
const MAX_ERROR_CHARS = 2000;

export class JobRunner {
  private readonly inFlight = new Map<string, AbortController>();
  private readonly work = new Set<Promise<void>>();
  private readonly seen = new Set<string>();
  private accepting = true;
  private abandoned = false;

  constructor(private readonly opts: JobRunnerOptions) {}

  /** Jobs currently on the runtime: what counts against capacity. */
  get running(): number {
    return this.inFlight.size;
  }

  /**
   * `raw` is the dispatch exactly as received, because that is what the network key signed (schema parsing
   * drops unknown fields, which would break the signature); `job` is its validated form.
   */
  accept(raw: SignedObject, job: JobDispatch): void {
    if (this.abandoned) return;
    const log = this.opts.logger.child({ jobId: job.jobId, attempt: job.attempt, model: job.model });
    const network = this.opts.networkAddress();
    if (network !== undefined && !verifyMessage(raw, network)) {
      // Checked before the duplicate filter, so forged dispatches cannot poison it.
      log.warn('refusing a job not signed by the network key');
      this.refuse(job, 'job refused: not signed by the network key');
      return;
    }
    const key = `${job.jobId}#${job.attempt}`;
    if (this.seen.has(key)) {
      log.warn('ignoring a duplicate dispatch');
      return;
    }
    this.remember(key);
    if (!this.accepting) return this.refuse(job, 'node is stopping');
    if (this.inFlight.size >= this.opts.capacity) return this.refuse(job, 'over capacity');
    if (job.deadline <= Date.now()) return this.refuse(job, 'deadline already passed');
    if (!this.opts.servedModels().includes(job.model)) return this.refuse(job, `model not served by this node: ${job.model}`);
    log.debug('job started');
    this.track(this.run(job, key, log));
  }

  /**
   * Graceful: refuse new jobs, let running ones finish and deliver their outcomes within `timeoutMs`;
   * whatever still runs then is aborted and reported as a job_error.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.accepting = false;
    await settleWithin([...this.work], timeoutMs);
    if (this.inFlight.size > 0) {
      for (const controller of this.inFlight.values()) controller.abort(new Error('node is stopping'));
      await settleWithin([...this.work], 2_000);
    }
  }

  /** The gateway says this attempt's job has ended (cancelled by its client): stop the runtime's work on it. */
  abort(jobId: string, attempt: number, reason: string): void {
    this.inFlight.get(`${jobId}#${attempt}`)?.abort(new Error(`aborted by the gateway: ${reason}`));
  }

  /** Abrupt, like a crash: abort everything and deliver nothing more. */
  abandon(): void {
    this.abandoned = true;
    this.accepting = false;
    for (const controller of this.inFlight.values()) controller.abort(new Error('node killed'));
  }

  private async run(job: JobDispatch, key: string, log: Logger): Promise<void> {
    const controller = new AbortController();
    this.inFlight.set(key, controller);
    const timer = setTimeout(
      () => controller.abort(new Error('deadline exceeded')),
      Math.min(MAX_TIMER_MS, Math.max(0, job.deadline - Date.now())),
    );
    const started = Date.now();
    let outcome: JobOutcome;
    try {
      outcome = await this.execute(job, controller.signal);
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(key);
    }
    if (this.abandoned) return;
    log.info({ outcome: outcome.type, ms: Date.now() - started }, 'job finished');
    await this.opts.deliver(outcome, job.deadline);
  }

  private async execute(job: JobDispatch, signal: AbortSignal): Promise<JobOutcome> {
    try {
      const stream = job.request.stream === true ? new ChunkStream(job, this.opts.identity.nodeId, this.opts.sendChunk) : null;
      const answer = await this.opts.runtime.complete(job.model, job.request, signal, stream ? (text) => stream.push(text) : undefined);
      // Parsing also drops fields the schemas do not know, so the hash covers exactly what the gateway sees.
      const output = outputSchema.safeParse(answer.output);
      const usage = usageSchema.safeParse(answer.usage);
      if (!output.success || !usage.success) return this.jobError(job, 'runtime returned an invalid output or usage');
      if (stream?.started) {
        stream.finish();
        // The gateway would refuse this result as invalid (the client may have read the stream already):
        // say plainly that the runtime broke its contract instead.
        if (stream.text !== output.data.content) return this.jobError(job, 'runtime returned an answer that differs from the text it streamed');
      }
      return this.opts.identity.sign({
        type: 'result' as const,
        nodeId: this.opts.identity.nodeId,
        jobId: job.jobId,
        attempt: job.attempt,
        ts: Date.now(),
        output: output.data,
        outputHash: outputHash(output.data),
        usage: usage.data,
      });
    } catch (err) {
      // After an abort the runtime's own error is usually a bare AbortError; the reason is what matters.
      const cause: unknown = signal.aborted ? signal.reason : err;
      return this.jobError(job, cause instanceof Error ? cause.message : String(cause));
    }
  }

  private refuse(job: JobDispatch, message: string): void {
    this.track(this.opts.deliver(this.jobError(job, message), job.deadline));
  }

  private jobError(job: JobDispatch, message: string): JobErrorMessage {
    return this.opts.identity.sign({
      type: 'job_error' as const,
      nodeId: this.opts.identity.nodeId,
      jobId: job.jobId,
      attempt: job.attempt,
      ts: Date.now(),
      message: (message || 'runtime error').slice(0, MAX_ERROR_CHARS),
    });
  }

  private track(p: Promise<void>): void {
    const tracked = p.catch((err: unknown) => {
      this.opts.logger.error({ err }, 'job handling failed');
    });
    this.work.add(tracked);
    void tracked.finally(() => this.work.delete(tracked));
  }

  private remember(key: string): void {
    this.seen.add(key);
    if (this.seen.size > SEEN_LIMIT) {
      const oldest = this.seen.values().next();
      if (!oldest.done) this.seen.delete(oldest.value);
    }
  }
}

/** Waits for all of `promises` to settle, or for `ms`, whichever comes first. */
async function settleWithin(promises: Promise<unknown>[], ms: number): Promise<void> {
  if (promises.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.allSettled(promises),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}
