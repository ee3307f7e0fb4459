// Announcements of changed catalogue rows (models, namespaces, API keys), sent by triggers on channel
// `resultity_catalog` at each change's commit (migrations/0018_hot_path.sql). One dedicated connection per
// process LISTENs; every instance hears every change, whichever process made it.
//
// A notification can be missed only while the connection is down, so every (re)connection is reported as
// `lost` first: the listener then forgets everything it cached, as if every row had changed.
import pg from 'pg';
import type { Logger } from 'pino';

export const CATALOG_CHANNEL = 'resultity_catalog';

export type CatalogChange = { table: 'models' | 'namespaces' | 'api_keys'; key: string } | { table: 'lost' };

const RECONNECT_MS = 1_000;

export class CatalogChanges {
  private client: pg.Client | null = null;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly url: string,
    private readonly onChange: (change: CatalogChange) => void,
    private readonly logger: Logger,
  ) {}

  /** Connects and listens; resolves once listening (later reconnections happen in the background). */
  async start(): Promise<void> {
    await this.connect();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, application_name: 'resultity:catalog' });
    client.on('notification', (n) => {
      if (n.channel !== CATALOG_CHANNEL || !n.payload) return;
      const sep = n.payload.indexOf(':');
      const table = n.payload.slice(0, sep);
      if (table === 'models' || table === 'namespaces' || table === 'api_keys') this.onChange({ table, key: n.payload.slice(sep + 1) });
    });
    client.on('error', (err) => {
      this.logger.warn({ err }, 'catalog listener: connection error; reconnecting');
      this.retry(client);
    });
    client.on('end', () => this.retry(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${CATALOG_CHANNEL}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    this.client = client;
    // Whatever changed while nobody listened is unknown: everything cached before now is suspect.
    this.onChange({ table: 'lost' });
  }

  /** The listening connection failed: forget everything cached, reconnect after a pause. */
  private retry(failed: pg.Client): void {
    if (this.client !== failed) return; // a connection that never listened, or one already given up
    this.client = null;
    failed.end().catch(() => undefined);
    this.onChange({ table: 'lost' });
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.closed) return;
      this.connect().catch((err: unknown) => {
        this.logger.warn({ err }, 'catalog listener: reconnect failed; retrying');
        this.scheduleReconnect();
      });
    }, RECONNECT_MS);
  }
}
