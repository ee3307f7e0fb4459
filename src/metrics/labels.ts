// Pure label helpers for the engine counters (engine-metrics.ts): every label value comes from a fixed
// set or from the code's own command names, never from data (no ids, no SQL text), so that a series
// count stays bounded whatever the traffic.

/** Kinds of PostgreSQL statement, by first keyword. Everything else is `other`. */
export const PG_STATEMENT_KINDS = [
  'select', 'insert', 'update', 'delete', 'with', 'begin', 'commit', 'rollback', 'savepoint', 'release',
  'set', 'lock', 'call', 'do', 'listen', 'notify', 'copy', 'other',
] as const;
export type PgStatementKind = (typeof PG_STATEMENT_KINDS)[number];

/** The kind of a statement from its text: its first keyword (after comments and blanks), lower-cased. */
export function pgStatementKind(text: string): PgStatementKind {
  const stripped = text.replace(/^(\s|--[^\n]*\n|\/\*[\s\S]*?\*\/)*/, '');
  const m = /^([A-Za-z]+)(\s+([A-Za-z]+))?/.exec(stripped);
  if (!m) return 'other';
  const first = m[1]!.toLowerCase();
  const second = m[3]?.toLowerCase();
  if (first === 'start' && second === 'transaction') return 'begin';
  if (first === 'end' || first === 'abort') return first === 'end' ? 'commit' : 'rollback';
  // ROLLBACK TO [SAVEPOINT] x stays inside the transaction: a savepoint operation, not its end.
  if (first === 'rollback' && second === 'to') return 'savepoint';
  if (first === 'prepare' || first === 'execute') return 'other';
  return (PG_STATEMENT_KINDS as readonly string[]).includes(first) ? (first as PgStatementKind) : 'other';
}

/**
 * Follows one PostgreSQL connection's statements to count transactions the way the server does: a
 * COMMIT ends an explicit transaction, and a statement outside BEGIN..COMMIT is a transaction of its own
 * (implicit). A connection runs its statements in the order they were sent, so the order of calls is the
 * order on the wire. Multi-statement strings ("BEGIN; ...; COMMIT") are counted by their first keyword only.
 */
export class PgTransactionTracker {
  private inTransaction = false;

  /** What the statement does to the transaction count: null when it ends none. */
  observe(kind: PgStatementKind): 'explicit' | 'implicit' | 'rollback' | null {
    switch (kind) {
      case 'begin':
        this.inTransaction = true;
        return null;
      case 'commit':
        if (!this.inTransaction) return null; // COMMIT outside a transaction: a warning on the server, no transaction
        this.inTransaction = false;
        return 'explicit';
      case 'rollback':
        if (!this.inTransaction) return null;
        this.inTransaction = false;
        return 'rollback';
      default:
        return this.inTransaction ? null : 'implicit';
    }
  }
}

/** MongoDB commands counted by name; any other command is `other`. */
const MONGO_COMMANDS = new Set([
  'insert', 'update', 'delete', 'find', 'getMore', 'aggregate', 'findAndModify', 'count', 'distinct', 'bulkWrite',
  'createIndexes', 'listIndexes', 'listCollections', 'drop', 'dropDatabase', 'killCursors', 'endSessions', 'ping',
  'hello', 'isMaster', 'ismaster', 'buildInfo', 'serverStatus', 'commitTransaction', 'abortTransaction',
]);

export function mongoCommandLabel(name: string): string {
  return MONGO_COMMANDS.has(name) ? name : 'other';
}

/**
 * A Redis command's name as a label: lower-cased; names that are not a plain command word (the code
 * only sends those) become `other`, so a bug can never turn a key or a value into a series.
 */
export function redisCommandLabel(name: string): string {
  const n = name.toLowerCase();
  return /^[a-z][a-z_.|-]{0,30}$/.test(n) ? n : 'other';
}

/** A client or connection name (from the code: `main`, `sub`, ...) as a label. */
export function clientLabel(name: string): string {
  return /^[A-Za-z0-9_.:-]{1,40}$/.test(name) ? name : 'other';
}
