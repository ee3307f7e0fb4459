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
  // pg-pool listens for a client's errors only while it is idle in the pool. A checked-out one (a
  // transaction in flight, the idle one holding an advisory lock while its task runs, an export's) whose
  // connection is cut emits 'error' with nobody listening, which kills the process. The holder learns of
  // it anyway: its statement in flight fails, or its next one does (the client is no longer queryable),
  // and the pool discards a client released in that state.
  pool.on('connect', (client: pg.PoolClient) => {
    client.on('error', () => undefined);
  });
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

/**
 * A connection-level failure: the server is down, restarting or shutting down, or the connection to it
 * was cut. A statement's own error (a constraint, a syntax error, a serialization failure) is not one.
 * The HTTP layer answers these with a 503 to retry, as it does for Redis.
 */
export function isPostgresUnreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as Error & { code?: unknown }).code;
  if (typeof code === 'string') {
    if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'ETIMEDOUT' || code === 'EHOSTUNREACH') return true;
    // 08: connection exception; 57P01-57P03: admin shutdown, crash shutdown, cannot connect now (starting
    // up, shutting down, in recovery).
    if (/^08/.test(code) || code === '57P01' || code === '57P02' || code === '57P03') return true;
  }
  // node-postgres's own messages for a connection lost or never made.
  return /^Connection terminated|not queryable|^timeout exceeded when trying to connect/.test(err.message);
}

/** One round trip, for readiness probes: throws when the server cannot be reached. */
export async function pingDatabase(q: Queryable): Promise<void> {
  await q.query('SELECT 1');
}
