// The outbox's "published" marks, off the request path. A job row is the outbox: `published_at` stays
// NULL until RabbitMQ confirmed the job's message, and the maintenance role republishes jobs left
// unmarked past OUTBOX_REPUBLISH_AFTER_MS. Marking each job as its publish is confirmed would cost a
// PostgreSQL transaction (and a WAL flush) per job. Instead confirmed jobs wait here for `delayMs`; those
// that finished meanwhile (most of them: a finished job is out of the outbox anyway) are dropped, and the
// rest are marked in one statement per batch.
//
// What a crash costs: the marks still waiting here are lost, so the outbox publishes those jobs again;
// the scheduler fences duplicate messages (redis/inflight.repository.ts), so a job still runs once.
import type { Logger } from 'pino';
import type { Db } from '../postgres/db.js';
import { markPublished } from '../postgres/jobs.repository.js';

const BATCH = 1_000;

export class PublishMarks {
  /** Confirmed, not yet marked nor finished: job id -> when its publish was confirmed. */
  private readonly pending = new Map<string, Date>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly db: Db,
    /** Must stay well below OUTBOX_REPUBLISH_AFTER_MS, or the outbox would republish jobs that were published. */
    private readonly delayMs: number,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.flush(false), Math.max(10, Math.floor(this.delayMs / 2)));
  }

  /** Stops the timer and marks everything still waiting (shutdown). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush(true);
  }

  confirmed(jobId: string, at = new Date()): void {
    this.pending.set(jobId, at);
  }

  /** The job finished: it left the outbox by itself. */
  finished(jobId: string): void {
    this.pending.delete(jobId);
  }

  private async flush(all: boolean): Promise<void> {
    const due = Date.now() - this.delayMs;
    const marks: Array<{ id: string; at: Date }> = [];
    for (const [id, at] of this.pending) {
      if (!all && at.getTime() > due) break; // insertion order is confirmation order
      marks.push({ id, at });
    }
    for (const m of marks) this.pending.delete(m.id);
    for (let i = 0; i < marks.length; i += BATCH) {
      const batch = marks.slice(i, i + BATCH);
      try {
        await markPublished(this.db, batch);
      } catch (err) {
        // The outbox will publish these jobs again; the scheduler fences the duplicates.
        this.logger.warn({ err, jobs: batch.length }, 'outbox: publish marks not written');
      }
    }
  }
}
