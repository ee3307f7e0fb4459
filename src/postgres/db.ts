// The PostgreSQL port: a pool and a transaction helper. Repositories take a `Queryable` so that a caller
// can run several of them inside one transaction (the job row, its hold and the outbox commit together).
import pg from 'pg';
import { instrumentPgPool } from './instrument.js';

// bigint (int8) columns hold ledger amounts; they stay within Number's safe range by construction (see
// domain/pricing.ts), so parse them as numbers, and refuse silently lossy values.
pg.types.setTypeParser(pg.types.builtins.INT8, (s: string) => {
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new RangeError(`int8 value ${s} exceeds the safe integer range`);
  return n;
});

export type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;
export type Db = pg.Pool;
/** A connection inside a transaction (withTransaction's callback): services name it without importing pg. */
export type Tx = pg.PoolClient;

export function createPool(url: string, max = 20): Db {
  const pool = new pg.Pool({ connectionString: url, max, application_name: 'resultity' });
  // An idle client that errors (the server restarted) must not crash the process; the pool drops it.
  pool.on('error', () => undefined);
  // Statements and transactions counted for GET /metrics (pg sets TCP_NODELAY on its sockets itself).
  instrumentPgPool(pool);
  return pool;
}

export interface TransactionOptions {
  /**
   * 'snapshot' (REPEATABLE READ): every statement sees the same snapshot, for work that reads several
   * tables and must see them as of one moment (rollups, reports, mirrors of a revision).
   */
  isolation?: 'read committed' | 'snapshot';
  readOnly?: boolean;
}

export async function withTransaction<T>(db: Db, fn: (tx: Tx) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
  const client = await db.connect();
  try {
    const mode = [opts.isolation === 'snapshot' ? 'ISOLATION LEVEL REPEATABLE READ' : '', opts.readOnly ? 'READ ONLY' : ''].filter(Boolean).join(', ');
    await client.query(mode ? `BEGIN ${mode}` : 'BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** True for a PostgreSQL unique-violation error, optionally on one constraint. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const e = err as { code?: string; constraint?: string };
  return e.code === '23505' && (constraint === undefined || e.constraint === constraint);
}

/** The database's clock: one clock for every instance, the one the jobs' own timestamps use. */
export async function databaseNow(q: Queryable): Promise<Date> {
  return (await q.query<{ now: Date }>(`SELECT now()`)).rows[0]!.now;
}

/** One round trip, for readiness probes: throws when the server cannot be reached. */
export async function pingDatabase(q: Queryable): Promise<void> {
  await q.query('SELECT 1');
}
