// PostgreSQL's instrumentation for GET /metrics (metrics/engine-metrics.ts declares the series): every
// statement of every client a pool connects, by first keyword, the transactions they end, and errors.
import type pg from 'pg';
import { countEngineError, pgStatements, pgTransactions } from '../metrics/engine-metrics.js';
import { pgStatementKind, PgTransactionTracker } from '../metrics/labels.js';

type QueryFn = (...args: unknown[]) => unknown;

function statementText(first: unknown): string | null {
  if (typeof first === 'string') return first;
  if (typeof first === 'object' && first !== null && 'text' in first && typeof first.text === 'string') return first.text;
  return null;
}

/**
 * SQLSTATE classes that mean the server or the connection, not the statement: 08 connection exception,
 * 57 operator intervention (a shutdown, a terminated backend), 53 insufficient resources. A Node socket
 * error has no SQLSTATE: connection as well.
 */
function pgErrorKind(err: unknown): 'connection' | 'operation' {
  const code = typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : '';
  if (!/^[0-9A-Z]{5}$/.test(code)) return 'connection';
  return /^(08|57|53)/.test(code) ? 'connection' : 'operation';
}

/** Counts every statement of every client the pool connects (pool.query included: it runs on a client). */
export function instrumentPgPool(pool: pg.Pool): void {
  pool.on('error', () => countEngineError('postgres', 'connection'));
  pool.on('connect', (client: pg.PoolClient) => {
    const tracker = new PgTransactionTracker();
    const target = client as unknown as { query: QueryFn };
    const query: QueryFn = target.query.bind(client);
    target.query = (...args: unknown[]) => {
      const text = statementText(args[0]);
      const kind = text === null ? 'other' : pgStatementKind(text);
      pgStatements.inc({ kind });
      const ended = tracker.observe(kind);
      if (ended) pgTransactions.inc({ kind: ended });
      // pool.query hands its client a callback; the code's own client.query calls get a promise. Either
      // way the error is counted and the caller still gets it.
      const last = args.length - 1;
      const callback = args[last];
      if (typeof callback === 'function') {
        args[last] = (err: unknown, ...rest: unknown[]) => {
          if (err) countEngineError('postgres', pgErrorKind(err));
          return (callback as (...a: unknown[]) => unknown)(err, ...rest);
        };
      }
      const result = query(...args);
      if (result instanceof Promise) result.catch((err: unknown) => countEngineError('postgres', pgErrorKind(err)));
      return result;
    };
  });
}
