// The pre-flight check of `resultity serve` and the test command (cli/engines.ts): can the server be
// reached at all? Connects to the maintenance database, since the configured one may not exist yet.
import pg from 'pg';

/** Resolves when PostgreSQL at `url`'s host answers a query; rejects with the driver's error otherwise. */
export async function reachPostgres(url: string, timeoutMs: number): Promise<void> {
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: timeoutMs });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } finally {
    await client.end().catch(() => undefined);
  }
}
