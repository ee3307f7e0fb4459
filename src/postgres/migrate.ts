// Runs the numbered SQL migrations in migrations/ with node-pg-migrate, creating the database first
// when it does not exist (a fresh machine has only the server).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { runner } from 'node-pg-migrate';
import type { Logger } from 'pino';

export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../migrations');

export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const dbName = decodeURIComponent(target.pathname.slice(1));
  if (!dbName) throw new Error('DATABASE_URL names no database');
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [dbName]);
    if (exists.rowCount === 0) {
      // Identifiers cannot be bound as parameters; quote it as PostgreSQL's quote_ident would.
      await client.query(`CREATE DATABASE "${dbName.replaceAll('"', '""')}"`).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err; // created concurrently by another instance
      });
    }
  } finally {
    await client.end();
  }
}

export async function migrate(url: string, logger: Logger): Promise<string[]> {
  await ensureDatabase(url);
  const applied = await runner({
    databaseUrl: url,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    migrationsTable: 'pgmigrations',
    checkOrder: true,
    // node-pg-migrate takes an advisory lock, so concurrent instances migrate once; the others wait for it
    // and then find nothing to apply (its default, 'fail', made every instance but one of a fleet started
    // together exit at boot: seen by the chaos run).
    noLock: false,
    advisoryLockMode: 'wait',
    log: (msg: string) => logger.debug(msg),
  });
  return applied.map((m) => m.name);
}
