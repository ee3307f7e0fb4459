// Counting what the backbone asks of its databases, without touching src/: the bench wraps the query
// method of the pg client class and the operation methods of the MongoDB driver's Collection class (both
// shared with src/ through node_modules), and counts calls. Counting only: the calls pass through as is.
import pg from 'pg';
import { Collection } from 'mongodb';

export interface DbCounts {
  /** Statements sent to PostgreSQL by the backbone (every pg client query call). */
  pgStatements: number;
  /** Of which COMMIT. */
  pgCommits: number;
  /** MongoDB operations (Collection method calls). */
  mongoOps: number;
}

const counts: DbCounts = { pgStatements: 0, pgCommits: 0, mongoOps: 0 };
let installed = false;

const MONGO_METHODS = [
  'insertOne', 'insertMany', 'bulkWrite', 'updateOne', 'updateMany', 'replaceOne', 'deleteOne', 'deleteMany',
  'findOne', 'find', 'aggregate', 'findOneAndUpdate', 'findOneAndDelete', 'findOneAndReplace', 'countDocuments',
] as const;

type AnyFn = (this: unknown, ...args: unknown[]) => unknown;

// The bench's own observers (the pg_stat_activity sampler) are not the backbone's work.
const excluded = new WeakSet<object>();

/** Leaves this client's statements out of the counts. */
export function excludeFromCounts(client: object): void {
  excluded.add(client);
}

// With BENCH_PG_STATEMENTS=1: statement counts by text, for diagnosis (printed by the bench at the end).
let byStatement: Map<string, number> | null = null;

/** Statement counts by (abridged) text since the last call, most frequent first; null unless enabled. */
export function takeStatementCounts(): Array<[string, number]> | null {
  if (!byStatement) return null;
  const out = [...byStatement.entries()].sort((a, b) => b[1] - a[1]);
  byStatement.clear();
  return out;
}

/** Installs the counters (once). Call before the backbone starts. */
export function installCounters(opts: { statementCounts?: boolean } = {}): void {
  if (installed) return;
  installed = true;
  if (opts.statementCounts) byStatement = new Map();
  const clientProto = pg.Client.prototype as unknown as Record<string, AnyFn>;
  const query = clientProto.query!;
  clientProto.query = function (this: unknown, ...args: unknown[]) {
    if (typeof this === 'object' && this !== null && excluded.has(this)) return query.apply(this, args);
    counts.pgStatements++;
    const first = args[0];
    const text = typeof first === 'string' ? first : (first as { text?: unknown } | null)?.text;
    if (typeof text === 'string' && /^\s*COMMIT\b/i.test(text)) counts.pgCommits++;
    if (byStatement && typeof text === 'string') {
      const key = text.replace(/\s+/g, ' ').trim().slice(0, 110);
      byStatement.set(key, (byStatement.get(key) ?? 0) + 1);
    }
    return query.apply(this, args);
  };
  const collProto = Collection.prototype as unknown as Record<string, AnyFn>;
  for (const name of MONGO_METHODS) {
    const original = collProto[name];
    if (typeof original !== 'function') continue;
    collProto[name] = function (this: unknown, ...args: unknown[]) {
      counts.mongoOps++;
      return original.apply(this, args);
    };
  }
}

export function readCounters(): DbCounts {
  return { ...counts };
}

export function diffCounters(a: DbCounts, b: DbCounts): DbCounts {
  return { pgStatements: b.pgStatements - a.pgStatements, pgCommits: b.pgCommits - a.pgCommits, mongoOps: b.mongoOps - a.mongoOps };
}
