// What the backbone's PostgreSQL sessions were doing during a measured window: pg_stat_activity sampled
// every SAMPLE_MS over a connection of its own, averaged. Separates sessions running a statement, waiting
// for a lock (another transaction's row), waiting for I/O (the WAL flush of a commit), and idle inside a
// transaction (waiting for the backbone to send the next statement, with its row locks held).
import pg from 'pg';
import { excludeFromCounts } from './instrument.js';

const SAMPLE_MS = 50;

export interface PgSessions {
  samples: number;
  /** Average number of sessions in each state over the window. */
  running: number;
  waitingLock: number;
  waitingIo: number;
  waitingOther: number;
  idleInTransaction: number;
  idle: number;
  /** Most frequent wait events of active sessions, as average sessions waiting on each. */
  topWaits: Array<{ event: string; sessions: number }>;
  /** The statements that sessions waiting for a lock were running, as average sessions on each. */
  lockedStatements: Array<{ statement: string; sessions: number }>;
}

export class PgWaitSampler {
  private client: pg.Client | null = null;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private samples = 0;
  private readonly totals = { running: 0, waitingLock: 0, waitingIo: 0, waitingOther: 0, idleInTransaction: 0, idle: 0 };
  private readonly waits = new Map<string, number>();
  private readonly locked = new Map<string, number>();

  constructor(
    private readonly url: string,
    private readonly database: string,
  ) {}

  async open(): Promise<void> {
    this.client = new pg.Client({ connectionString: this.url, application_name: 'resultity-bench-sampler' });
    excludeFromCounts(this.client);
    await this.client.connect();
  }

  start(): void {
    this.reset();
    this.timer = setInterval(() => {
      if (this.inFlight) return; // never pile up samples behind a slow one
      this.inFlight = this.sample().finally(() => (this.inFlight = null));
    }, SAMPLE_MS);
  }

  async stop(): Promise<PgSessions> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.inFlight;
    const n = Math.max(1, this.samples);
    const avg = (v: number) => v / n;
    return {
      samples: this.samples,
      running: avg(this.totals.running),
      waitingLock: avg(this.totals.waitingLock),
      waitingIo: avg(this.totals.waitingIo),
      waitingOther: avg(this.totals.waitingOther),
      idleInTransaction: avg(this.totals.idleInTransaction),
      idle: avg(this.totals.idle),
      topWaits: [...this.waits.entries()]
        .map(([event, count]) => ({ event, sessions: avg(count) }))
        .sort((a, b) => b.sessions - a.sessions)
        .slice(0, 5),
      lockedStatements: [...this.locked.entries()]
        .map(([statement, count]) => ({ statement, sessions: avg(count) }))
        .sort((a, b) => b.sessions - a.sessions)
        .slice(0, 4),
    };
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.inFlight;
    await this.client?.end().catch(() => undefined);
    this.client = null;
  }

  private reset(): void {
    this.samples = 0;
    for (const k of Object.keys(this.totals) as Array<keyof typeof this.totals>) this.totals[k] = 0;
    this.waits.clear();
    this.locked.clear();
  }

  private async sample(): Promise<void> {
    if (!this.client) return;
    type Row = { state: string | null; wait_event_type: string | null; wait_event: string | null; query: string | null };
    let rows: Row[];
    try {
      rows = (
        await this.client.query<Row>(
          `SELECT state, wait_event_type, wait_event, left(query, 300) AS query FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
          [this.database],
        )
      ).rows;
    } catch {
      return;
    }
    this.samples++;
    for (const r of rows) {
      if (r.state === 'idle') this.totals.idle++;
      else if (r.state === 'idle in transaction' || r.state === 'idle in transaction (aborted)') this.totals.idleInTransaction++;
      else if (r.state === 'active') {
        if (!r.wait_event_type) this.totals.running++;
        else {
          if (r.wait_event_type === 'Lock') {
            this.totals.waitingLock++;
            const statement = (r.query ?? '?').replace(/\s+/g, ' ').trim().slice(0, 90);
            this.locked.set(statement, (this.locked.get(statement) ?? 0) + 1);
          }
          else if (r.wait_event_type === 'IO') this.totals.waitingIo++;
          else this.totals.waitingOther++;
          const key = `${r.wait_event_type}:${r.wait_event ?? '?'}`;
          this.waits.set(key, (this.waits.get(key) ?? 0) + 1);
        }
      }
    }
  }
}
