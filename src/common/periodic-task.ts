// A task run every so often in the background: never two runs at once (a run still going when the next
// is due makes that one skip), failures logged and retried at the next interval, and stop() waits for a
// run in progress. Tasks that must run once across instances take an advisory lock inside `run`
// (src/postgres/advisory-lock.ts).
import type { Logger } from 'pino';

export class PeriodicTask {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly name: string,
    private readonly intervalMs: number,
    private readonly run: () => Promise<unknown>,
    private readonly logger: Logger,
  ) {}

  /** Starts the schedule; with `immediately`, the first run starts now rather than after one interval. */
  start(opts: { immediately?: boolean } = {}): void {
    if (opts.immediately) this.kick();
    this.timer = setInterval(() => this.kick(), this.intervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  private kick(): void {
    if (this.running) return;
    this.running = this.run()
      .then(() => undefined)
      .catch((err: unknown) => this.logger.warn({ err, task: this.name }, `${this.name} failed`))
      .finally(() => (this.running = null));
  }
}
