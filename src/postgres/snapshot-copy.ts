// PostgreSQL side of snapshot export and restore. Export: a part's rows copied out as COPY text (`COPY
// (SELECT ...) TO STDOUT`) in one REPEATABLE READ snapshot, which a second connection may share
// (pg_export_snapshot), under a session advisory lock that makes snapshots one at a time. Restore: COPY
// text handed back to `COPY ... FROM STDIN`, appended or merged, and what the restored rows leave to
// recompute. The snapshot service sees the interfaces here (ExportSession, ExportReader, RestoreWriter),
// never a client.
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { CopyToBlocks } from './copy-out.js';
import { withTransaction, type Db, type Queryable } from './db.js';

/** The rows of one table that a part holds; `where` may read the transaction's settings (copyOut sets them). */
export interface CopySource {
  table: string;
  where: string;
  orderBy: string;
}

/** A transaction that reads one snapshot of the database, with every value's text fixed (fixTextOutput). */
export interface ExportReader extends Queryable {
  /** The table's columns in order, less the `omit`ted ones. */
  columns(table: string, omit?: Readonly<Record<string, string>>): Promise<string[]>;
  /**
   * The rows as PostgreSQL prints them with `COPY (SELECT <columns> ...) TO STDOUT` (text format), in blocks
   * of at most `blockBytes` cut at rows' ends (common/row-blocks.ts): no value is converted on the way.
   * `settings` (names to text) are set for the transaction first, since a COPY takes no bind parameters.
   * Read the blocks to their end (or leave the loop) before using the reader again.
   */
  copyOut(source: CopySource, columns: readonly string[], settings: Readonly<Record<string, string>>, blockBytes: number): Promise<AsyncIterable<Buffer>>;
}

/** A second connection reading the same snapshot; `end` gives it back (dropped when it failed mid-COPY). */
export interface SharedReader extends ExportReader {
  end(failed: boolean): Promise<void>;
}

/** One connection holding the snapshot lock. */
export interface ExportSession {
  /**
   * Runs `fn` in a REPEATABLE READ, READ ONLY transaction begun after the lock (so it sees the latest
   * snapshot row). `share()` opens a second connection in the same snapshot, or gives null when the pool
   * is too small to spare one (with a pool of two, one may hold the history lock while this one reads,
   * and waiting for a third would never end).
   */
  read<T>(fn: (tx: ExportReader, share: () => Promise<SharedReader | null>) => Promise<T>): Promise<T>;
  /** Runs `fn` in a read-write transaction on the same connection. */
  write<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
}

/**
 * Makes the transaction's text output of values fixed, whatever the server's or the role's settings:
 * timestamps in UTC, ISO dates, hex bytea. The same row then always prints the same text.
 */
export async function fixTextOutput(tx: Queryable): Promise<void> {
  await tx.query(`SELECT set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO, YMD', true),
                         set_config('bytea_output', 'hex', true), set_config('extra_float_digits', '1', true),
                         set_config('IntervalStyle', 'postgres', true)`);
}

/**
 * Gives the transaction's sorts the memory to run in it: each part is copied in its order (a day's rows
 * sorted by the part's key), and at the default 4 MB a day of 100,000 jobs sorts on disk (external merge).
 * Beyond it a sort still spills, so this bounds the memory, not the day.
 */
async function allowPartSorts(tx: Queryable): Promise<void> {
  await tx.query(`SELECT set_config('work_mem', '64MB', true)`);
}

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

function exportReader(client: pg.PoolClient): ExportReader {
  return {
    query: client.query.bind(client),
    async columns(table, omit) {
      const r = await client.query<{ name: string }>(
        `SELECT attname AS name FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
        [table],
      );
      return r.rows.map((c) => c.name).filter((c) => !(omit && c in omit));
    },
    async copyOut(source, columns, settings, blockBytes) {
      const entries = Object.entries(settings);
      if (entries.length > 0) {
        await client.query(`SELECT ${entries.map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, true)`).join(', ')}`, entries.flat());
      }
      const sql = `COPY (SELECT ${columns.map(ident).join(', ')} FROM ${ident(source.table)} WHERE ${source.where} ORDER BY ${source.orderBy}) TO STDOUT`;
      return client.query(new CopyToBlocks(sql, blockBytes));
    },
  };
}

/** Runs `fn` in a transaction on `client`, begun with `begin`. */
async function inTransaction<T>(client: pg.PoolClient, begin: string, fn: () => Promise<T>): Promise<T> {
  await client.query(begin);
  try {
    const result = await fn();
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

const READ_SNAPSHOT = 'BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY';

/** A second connection in `tx`'s snapshot, or null when the pool cannot spare one (see ExportSession.read). */
async function shareSnapshot(db: Db, tx: pg.PoolClient): Promise<SharedReader | null> {
  if ((db.options.max ?? 10) < 3) return null;
  const { rows } = await tx.query<{ id: string }>(`SELECT pg_export_snapshot() AS id`);
  const id = rows[0]!.id;
  // SET TRANSACTION SNAPSHOT takes no parameter: the id (the server's, checked) is written in the statement.
  if (!/^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$/i.test(id)) throw new Error(`unexpected snapshot id from pg_export_snapshot: ${id}`);
  const helper = await db.connect();
  try {
    await helper.query(READ_SNAPSHOT);
    await helper.query(`SET TRANSACTION SNAPSHOT '${id}'`);
    await fixTextOutput(helper);
    await allowPartSorts(helper);
  } catch (err) {
    await helper.query('ROLLBACK').catch(() => undefined);
    helper.release(true);
    throw err;
  }
  return {
    ...exportReader(helper),
    async end(failed) {
      await helper.query(failed ? 'ROLLBACK' : 'COMMIT').catch(() => undefined);
      // A connection left mid-COPY by an error is not given back to the pool.
      helper.release(failed ? true : undefined);
    },
  };
}

/**
 * Runs `fn` on one connection holding the session advisory lock `lock` (waiting for it): snapshots are
 * taken one at a time across instances, since each names the one before.
 */
export async function withExportSession<T>(db: Db, lock: number, fn: (s: ExportSession) => Promise<T>): Promise<T> {
  const client = await db.connect();
  try {
    await client.query(`SELECT pg_advisory_lock($1)`, [lock]);
    try {
      return await fn({
        read: (body) =>
          inTransaction(client, READ_SNAPSHOT, async () => {
            await fixTextOutput(client);
            await allowPartSorts(client);
            return body(exportReader(client), () => shareSnapshot(db, client));
          }),
        write: (body) => inTransaction(client, 'BEGIN', () => body(client)),
      });
    } finally {
      await client.query(`SELECT pg_advisory_unlock($1)`, [lock]);
    }
  } finally {
    client.release();
  }
}

/** Runs `fn` in one REPEATABLE READ, READ ONLY transaction with the export's text settings, no lock. */
export function readSnapshotOnce<T>(db: Db, fn: (tx: ExportReader) => Promise<T>): Promise<T> {
  return withTransaction(
    db,
    async (tx) => {
      await fixTextOutput(tx);
      await allowPartSorts(tx);
      return fn(exportReader(tx));
    },
    { isolation: 'snapshot', readOnly: true },
  );
}

/** A restore's transaction: COPY text written into tables. */
export interface RestoreWriter extends Queryable {
  /** Hands COPY text, as it is, to `COPY <table> (<columns>) FROM STDIN`. */
  append(table: string, columns: readonly string[], text: Iterable<Uint8Array | string>): Promise<void>;
  /**
   * Rows that later snapshots repeat: COPY into a staging table of the columns, then whatever is not there
   * yet, omitted NOT NULL columns filled by the SQL expressions of `fill`. Returns the rows inserted.
   */
  merge(table: string, columns: readonly string[], text: Iterable<Uint8Array | string>, fill: Readonly<Record<string, string>>): Promise<number>;
}

/** Runs `fn` in one transaction whose text input reads what the export's settings printed. */
export function withRestoreTransaction<T>(db: Db, fn: (w: RestoreWriter) => Promise<T>): Promise<T> {
  return withTransaction(db, async (tx) => {
    await fixTextOutput(tx);
    const copyIn = (target: string, columns: readonly string[], text: Iterable<Uint8Array | string>) =>
      pipeline(Readable.from(text), tx.query(copyFrom(`COPY ${target} (${columns.map(ident).join(', ')}) FROM STDIN`)));
    let staged = 0;
    return fn({
      query: tx.query.bind(tx),
      append: (table, columns, text) => copyIn(ident(table), columns, text),
      async merge(table, columns, text, fill) {
        const staging = ident(`restore_${table}_${(staged += 1)}`);
        await tx.query(`CREATE TEMP TABLE ${staging} ON COMMIT DROP AS SELECT ${columns.map(ident).join(', ')} FROM ${ident(table)} WITH NO DATA`);
        await copyIn(staging, columns, text);
        const filled = Object.entries(fill);
        const targetColumns = [...columns.map(ident), ...filled.map(([c]) => ident(c))].join(', ');
        const values = [...columns.map(ident), ...filled.map(([, expr]) => expr)].join(', ');
        const r = await tx.query(`INSERT INTO ${ident(table)} (${targetColumns}) SELECT ${values} FROM ${staging} ON CONFLICT DO NOTHING`);
        return r.rowCount ?? 0;
      },
    });
  });
}

/** Tables whose rows prove a database is not empty: restore refuses to write over history. */
const HISTORY_TABLES = ['ledger_transactions', 'job_rollup_days', 'network_configs', 'snapshots', 'rcp_records'];

export async function assertEmptyHistory(q: Queryable): Promise<void> {
  for (const t of HISTORY_TABLES) {
    const r = await q.query(`SELECT 1 FROM ${t} LIMIT 1`);
    if ((r.rowCount ?? 0) > 0) throw new Error(`the database is not empty (${t} has rows): restore rebuilds history into an empty database only`);
  }
}

/**
 * What restored rows leave to recompute: the cached balances of the ledger accounts that keep one (the
 * sum of their entries), and the id sequences past the restored ids.
 */
export async function recomputeAfterRestore(db: Db): Promise<void> {
  await withTransaction(db, async (tx) => {
    await tx.query(
      `UPDATE ledger_accounts a SET balance = coalesce((SELECT sum(amount) FROM ledger_entries e WHERE e.account_id = a.id), 0)
        WHERE kind NOT IN ('operator_earnings', 'platform_revenue')`,
    );
    for (const table of ['ledger_accounts', 'ledger_transactions', 'ledger_entries', 'admin_changes', 'rcp_records']) {
      await tx.query(`SELECT setval(pg_get_serial_sequence($1, 'id'), m) FROM (SELECT max(id) AS m FROM ${ident(table)}) x WHERE m IS NOT NULL`, [table]);
    }
  });
}
