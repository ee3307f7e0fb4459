// Relaying a streamed job (stream: true) to its client: follows the job's attempts and forwards the text
// chunks the node streams (through Redis, from whichever io instance holds the node's socket), then the
// end of the answer from the stored, signed result.
//
// Rules that keep what the client reads equal to what is stored and billed:
// - Only the running attempt's chunks are forwarded, and only after that attempt is recorded in
//   PostgreSQL as the one the client is reading (commitStreamedAttempt). Until then, a failed attempt is
//   retried on another node like any job and the client sees nothing of it; after, the job is never
//   retried (the scheduler fails it, hold released) and the client gets an error event.
// - The result of a streamed attempt is accepted only if its content equals the chunks put together
//   (io/results.service.ts); the relay ends with whatever of the stored content it has not forwarded yet
//   (everything, for a node that did not stream, or a stream Redis lost), so the client always ends up
//   with the stored text.
// - A job that expires (the client's deadline) after its client read part of an answer is charged for that
//   part (jobs/lifecycle.service.ts); the relay sends the rest of the stream before the error event.
// - A client that goes away stops only the relay: the job runs on, completes and is charged like a
//   synchronous job whose caller hung up (the node's work is done and paid for), and the node's slot
//   returns as usual. Nothing waits on the client.
import type { Logger } from 'pino';
import { AppError, errors } from '../errors.js';
import { isTerminal } from '../domain/job-states.js';
import type { JobOutput } from '../domain/protocol.js';
import type { JobRow } from '../postgres/jobs.repository.js';
import { stageTimer } from '../metrics/job-stages.js';
import type { PayloadsRepository } from '../mongo/payloads.repository.js';
import type { FinishedEvent, JobEvent, JobEvents } from '../redis/job-events.js';
import type { JobStreams, StreamWakeups, StreamWatch } from '../redis/job-streams.js';
import { jobFailure } from './inference.service.js';

export type StreamEvent =
  | { kind: 'delta'; text: string }
  /** The answer is complete; `job` is the settled row (usage and charge). */
  | { kind: 'completed'; job: JobRow; finishReason: JobOutput['finish_reason']; output: JobOutput }
  | { kind: 'failed'; error: AppError };

/** A listener for one job's 'finished' event (JobEvents.watchFinished). */
export type FinishedWatch = ReturnType<JobEvents['watchFinished']>;

/**
 * What the relay reads and writes in PostgreSQL: the port its fast tests fake
 * (test/fakes/stream-relay.store.ts); on the engine it is postgres/stream-relay.store.ts.
 */
export interface StreamRelayStore {
  findJob(id: string): Promise<JobRow | null>;
  /**
   * Records `attempt` as the one the client reads, if it has not ended and no other attempt was recorded
   * (false otherwise: its chunks must not be forwarded); from then on the job is never retried.
   */
  commitStreamedAttempt(jobId: string, attempt: number): Promise<boolean>;
}

export interface StreamRelayDeps {
  store: StreamRelayStore;
  /** The attempts' chunks in Redis (redis/job-streams.ts). */
  streams: Pick<JobStreams, 'read'>;
  wakeups: Pick<StreamWakeups, 'watch'>;
  events: Pick<JobEvents, 'watchFinished' | 'waitFor'>;
  /** A completed job's stored output, when its event did not carry it (mongo/payloads.repository.ts). */
  payloads: Pick<PayloadsRepository, 'find'>;
  logger: Pick<Logger, 'error'>;
}

/** Re-read the job row at least this often while no chunk comes, in case a wake-up was lost. */
const IDLE_POLL_MS = 1_000;
/** Chunks read from Redis per round trip. */
const READ_BATCH = 256;

export class StreamRelay {
  constructor(private readonly d: StreamRelayDeps) {}

  /**
   * The job's answer as it is produced, ending with one `completed` or `failed` event; nothing more once
   * `signal` aborts (the client left). Past `until` (ms since the epoch) it gives up with a `failed`
   * event naming the job to poll.
   */
  async *follow(accepted: JobRow, until: number, signal: AbortSignal, finishedWatch?: FinishedWatch | null): AsyncGenerator<StreamEvent, void> {
    const jobId = accepted.id;
    // The job's 'finished' event is listened for all along (from before its publish when the caller
    // watched it), not only while the relay pauses: one that comes while the relay reads or forwards
    // chunks is kept, and the pause that follows returns it at once.
    const finished = finishedWatch ?? this.d.events.watchFinished(jobId);
    let ended: FinishedEvent | null = null;
    const watch = await this.d.wakeups.watch(jobId);
    void finished.finished.then((e) => {
      if (!e) return;
      ended = e;
      watch.poke();
    });
    const endedEvent = () => ended;
    try {
      // The row as accepted: the job's stream is watched already, so nothing it sends can be missed.
      let job = accepted;
      /** A completed job's answer, when its 'finished' event brought it (no read of the stored output). */
      let answer: JobOutput | null = null;
      /** The attempt whose stream is being read, and the last entry forwarded from it. */
      let following: number | null = null;
      let after: string | null = null;
      /** True once `following` is recorded as the attempt the client reads (and its chunks flow). */
      let committed = false;
      let sent = '';
      for (;;) {
        if (signal.aborted) return;
        if (job.status === 'completed') {
          yield* this.finish(job, committed && following === job.attempt ? { after, sent } : { after: null, sent: '' }, answer);
          return;
        }
        if (isTerminal(job.status)) {
          // Expired (the client's deadline) after part of the answer reached the client: that part was
          // charged, as it stood in the stream, so the client gets the rest of it before the error.
          if (committed && following !== null && job.status === 'expired') {
            for await (const e of this.entriesAfter(jobId, following, after)) yield { kind: 'delta', text: e.delta };
          }
          yield { kind: 'failed', error: jobFailure(job) };
          return;
        }
        if (Date.now() >= until) {
          yield { kind: 'failed', error: stillRunning(jobId) };
          return;
        }
        // A queued job's next attempt is the next number: reading its stream ahead means its first chunk
        // wakes the relay at once, without waiting to see the attempt start in the row.
        const current = job.status === 'running' ? job.attempt : job.attempt + 1;
        if (committed && current !== following) {
          // The attempt the client was reading ended without a result: the scheduler is failing the job.
          ({ job, answer } = await this.next(job, await this.pause(watch, jobId, signal, endedEvent), answer));
          continue;
        }
        if (current !== following) {
          following = current;
          after = null;
        }
        const entries = await this.d.streams.read(jobId, following, after, READ_BATCH);
        if (entries.length === 0) {
          ({ job, answer } = await this.next(job, await this.pause(watch, jobId, signal, endedEvent), answer));
          continue;
        }
        if (!committed) {
          // The row is older than these chunks (or the attempt ended meanwhile): look again before
          // committing the client to this attempt. The commit is fenced in PostgreSQL: it fails once the
          // attempt has ended.
          if (isTerminal(job.status) || !(await this.commit(jobId, following))) {
            const fresh = await this.row(jobId);
            if (fresh.status === job.status && fresh.attempt === job.attempt) await this.pause(watch, jobId, signal, endedEvent); // no hot loop on an odd state
            job = fresh;
            continue;
          }
          committed = true;
        }
        for (const e of entries) {
          sent += e.delta;
          after = e.id;
          yield { kind: 'delta', text: e.delta };
        }
      }
    } finally {
      finished.close();
      await watch.close();
    }
  }

  /**
   * The rest of a completed job's answer: chunks not forwarded yet, then whatever of the output is still
   * missing (`answer`, from the job's event; else read from storage).
   */
  private async *finish(job: JobRow, from: { after: string | null; sent: string }, answer: JobOutput | null): AsyncGenerator<StreamEvent, void> {
    let { sent } = from;
    for await (const e of this.entriesAfter(job.id, job.attempt, from.after)) {
      sent += e.delta;
      yield { kind: 'delta', text: e.delta };
    }
    const output = answer ?? (await this.d.payloads.find(job.id, job.namespace_id))?.results?.[String(job.attempt)]?.output;
    if (!output) {
      yield { kind: 'failed', error: new AppError('output_expired', `Job ${job.id} completed, but its output is no longer stored.`) };
      return;
    }
    if (!output.content.startsWith(sent)) {
      // Cannot happen while the gateway checks results against their streams; if it does, say so rather
      // than end as if the client had the stored answer.
      this.d.logger.error({ jobId: job.id, attempt: job.attempt }, 'streamed text differs from the stored output');
      yield { kind: 'failed', error: new AppError('stream_inconsistent', `The streamed answer differs from the stored one; fetch GET /v1/jobs/${job.id}.`) };
      return;
    }
    if (output.content.length > sent.length) yield { kind: 'delta', text: output.content.slice(sent.length) };
    yield { kind: 'completed', job, finishReason: output.finish_reason, output };
  }

  /** The attempt's stream entries after `after` (all of them for null), to the end of the stream as it is now. */
  private async *entriesAfter(jobId: string, attempt: number, after: string | null): AsyncGenerator<{ id: string; delta: string }, void> {
    for (;;) {
      const entries = await this.d.streams.read(jobId, attempt, after, READ_BATCH);
      if (entries.length === 0) return;
      for (const e of entries) {
        after = e.id;
        yield e;
      }
    }
  }

  /**
   * Waits for a chunk, a job event, `IDLE_POLL_MS` or the client leaving. 'chunk' when only a chunk came;
   * a 'finished' event that carries the job's end; 'reread' when the job row should be read again (another
   * job event, or no news at all).
   */
  private async pause(watch: StreamWatch, jobId: string, signal: AbortSignal, ended: () => FinishedEvent | null): Promise<'chunk' | 'reread' | FinishedEvent> {
    const before = ended();
    if (before?.status) return before;
    const stop = new AbortController();
    let jobEvent: JobEvent | null = null;
    // Stopped below in every case, the client leaving included (that ends watch.wait).
    const event = this.d.events.waitFor(jobId, () => true, IDLE_POLL_MS, stop.signal).then((e) => {
      if (e) {
        jobEvent = e;
        watch.poke();
      }
    });
    const woken = await watch.wait(IDLE_POLL_MS, signal);
    stop.abort();
    await event;
    const e = (jobEvent as JobEvent | null) ?? ended();
    if (e?.kind === 'finished' && e.status) return e;
    return e || !woken ? 'reread' : 'chunk';
  }

  /** The job after a pause: as its 'finished' event describes it, read again, or unchanged (a chunk came). */
  private async next(job: JobRow, woke: 'chunk' | 'reread' | FinishedEvent, answer: JobOutput | null): Promise<{ job: JobRow; answer: JobOutput | null }> {
    if (woke === 'chunk') return { job, answer };
    if (woke === 'reread') return { job: await this.row(job.id), answer };
    const status = woke.status!;
    if (status === 'completed' && woke.completed) {
      const { attempt, usage, chargedMicro, output } = woke.completed;
      return {
        job: { ...job, status, attempt, prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens, charged_micro: chargedMicro, finished_at: new Date() },
        answer: output,
      };
    }
    return { job: await this.row(job.id), answer };
  }

  /** commitStreamedAttempt, timed as the `stream_commit` stage (on the way to the first token). */
  private async commit(jobId: string, attempt: number): Promise<boolean> {
    const timer = stageTimer();
    const ok = await this.d.store.commitStreamedAttempt(jobId, attempt);
    timer.lap('stream_commit');
    return ok;
  }

  private async row(jobId: string): Promise<JobRow> {
    const job = await this.d.store.findJob(jobId);
    if (!job) throw errors.jobNotFound(jobId);
    return job;
  }
}

function stillRunning(jobId: string): AppError {
  return new AppError('stream_timeout', `Job ${jobId} is still running past its deadline; poll GET /v1/jobs/${jobId} for its outcome.`);
}
