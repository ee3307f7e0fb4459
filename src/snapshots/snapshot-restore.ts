// Restore: rebuilds history from a chain of snapshots into an empty database (migrated, nothing in it):
// the reference state, the job rollups, the ledger (transactions, entries, rollups and daily chain), the
// contribution records and sealed epochs, the network config versions and the admin change log; and the
// snapshot index itself, so that the restored network goes on with the same chain.
//
// The range is the chain from its first snapshot up to the one chosen: the ledger's chain is verified from
// genesis, so a restore that skipped the first days could never pass ledger-verify. Every snapshot is
// verified (blocks, signature, parts, ledger, epochs, link to the one before) before any of its rows is
// written; each is restored in one transaction. Raw job rows stay in the archive (their partitions were
// dropped on purpose).
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { withTransaction, type Db, type Queryable } from '../postgres/db.js';
import type { CarContents } from './car-file.js';
import { PART_ENCODING, type Manifest, type PartEntry, type Row } from './snapshot.format.js';
import { copyText } from './copy-text.js';
import { partSpec, type PartSpec } from './snapshot-parts.js';
import { partChunks, partRows, rootManifest, verifySnapshot } from './snapshot.verify.js';
import { fixTextOutput, insertSealedEpochs, insertSnapshot } from './snapshots.repository.js';

export interface RestoreProgress {
  /** 'fetch' while walking the chain back, then the CID being restored. */
  phase: string;
  done: number;
  total: number;
}

export interface RestoreReport {
  snapshots: number;
  rows: number;
  first: string;
  head: string;
  days: { first: string | null; last: string | null };
}

export interface RestoreDeps {
  db: Db;
  /** Fetches a snapshot's CAR by CID (from the store). */
  fetch: (cid: string) => Promise<CarContents>;
  /** Every snapshot must be signed by this address; null: by whoever signed the head (reported). */
  networkAddress: string | null;
  onProgress?: (p: RestoreProgress) => void;
}

/** Tables whose rows prove a database is not empty: restore refuses to write over history. */
const HISTORY_TABLES = ['ledger_transactions', 'job_rollup_days', 'network_configs', 'snapshots', 'rcp_records'];

export async function assertEmptyDatabase(q: Queryable): Promise<void> {
  for (const t of HISTORY_TABLES) {
    const r = await q.query(`SELECT 1 FROM ${t} LIMIT 1`);
    if ((r.rowCount ?? 0) > 0) throw new Error(`the database is not empty (${t} has rows): restore rebuilds history into an empty database only`);
  }
}

export async function restoreChain(head: string, d: RestoreDeps): Promise<RestoreReport> {
  await assertEmptyDatabase(d.db);
  // Walk back to the first snapshot, keeping the manifests only (each CAR is fetched again to restore).
  const chain: Array<{ cid: string; manifest: Manifest }> = [];
  for (let cid: string | null = head; cid !== null; ) {
    d.onProgress?.({ phase: 'fetch', done: chain.length, total: chain.length + 1 });
    const { manifest } = rootManifest(await d.fetch(cid));
    chain.unshift({ cid, manifest });
    cid = manifest.previous;
  }
  const signer = d.networkAddress ?? chain.at(-1)!.manifest.signer;
  let rows = 0;
  for (const [i, link] of chain.entries()) {
    d.onProgress?.({ phase: link.cid, done: i, total: chain.length });
    const car = await d.fetch(link.cid);
    const report = verifySnapshot(car, { networkAddress: signer, ...(i > 0 ? { previous: chain[i - 1]! } : {}) });
    if (!report.ok) throw new Error(`snapshot ${link.cid} does not verify, nothing of it was restored: ${report.problems.join('; ')}`);
    rows += await withTransaction(d.db, async (tx) => {
      await fixTextOutput(tx);
      let n = 0;
      for (const part of link.manifest.parts) n += await restorePart(tx, car, part);
      await insertSnapshot(tx, {
        cid: link.cid,
        seq: i + 1,
        previous_cid: i > 0 ? chain[i - 1]!.cid : null,
        kind: link.manifest.kind,
        day: link.manifest.day,
        bytes: car.bytes,
        part_rows: Object.fromEntries(link.manifest.parts.map((p) => [p.name, p.rows])),
        store: 'restored',
        created_at: new Date(link.manifest.created_at),
      });
      await insertSealedEpochs(tx, link.manifest.epochs.map((e) => ({ ...e, snapshot_cid: link.cid })));
      return n;
    });
  }
  await withTransaction(d.db, (tx) => afterRestore(tx));
  d.onProgress?.({ phase: 'done', done: chain.length, total: chain.length });
  const days = chain.map((c) => c.manifest.day).filter((x): x is string => x !== null);
  return { snapshots: chain.length, rows, first: chain[0]!.cid, head, days: { first: days[0] ?? null, last: days.at(-1) ?? null } };
}

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** Streams rows into `COPY <target> (<columns>) FROM STDIN` (text format): a format-1 part's rows. */
export async function copyRows(tx: pg.PoolClient, target: string, columns: readonly string[], rows: Iterable<Row>): Promise<void> {
  const lines = (function* () {
    let batch: string[] = [];
    for (const row of rows) {
      batch.push(row.map(copyText).join('\t'));
      if (batch.length === 1_000) {
        yield `${batch.join('\n')}\n`;
        batch = [];
      }
    }
    if (batch.length > 0) yield `${batch.join('\n')}\n`;
  })();
  await copyIn(tx, target, columns, lines);
}

/** Hands COPY text (a format-2 part's chunks, as they are) to `COPY <target> (<columns>) FROM STDIN`. */
export async function copyIn(tx: pg.PoolClient, target: string, columns: readonly string[], text: Iterable<Uint8Array | string>): Promise<void> {
  await pipeline(Readable.from(text), tx.query(copyFrom(`COPY ${target} (${columns.map(ident).join(', ')}) FROM STDIN`)));
}

/** Writes a part's rows into `target`: its chunks straight into COPY (format 2), or its decoded rows (format 1). */
async function writePartRows(tx: pg.PoolClient, target: string, car: CarContents, part: PartEntry): Promise<void> {
  if (part.encoding === PART_ENCODING) await copyIn(tx, target, part.columns, partChunks(car, part));
  else await copyRows(tx, target, part.columns, partRows(car, part));
}

/** Restores one part by its mode (see snapshot-parts.ts); returns the rows written. */
export async function restorePart(tx: pg.PoolClient, car: CarContents, part: PartEntry): Promise<number> {
  const spec: PartSpec | undefined = partSpec(part.name);
  if (!spec || spec.table !== part.table) throw new Error(`part ${part.name} (table ${part.table}) is unknown to this version: cannot restore it`);
  if (spec.restore === 'archive' || part.rows === 0) return 0;
  if (spec.restore === 'append') {
    // Verified before: the part's rows are `part.rows`.
    await writePartRows(tx, ident(spec.table), car, part);
    return part.rows;
  }
  // merge: into a staging table of the part's columns, then whatever is not there yet.
  const staging = ident(`restore_${part.name}`);
  await tx.query(`CREATE TEMP TABLE ${staging} ON COMMIT DROP AS SELECT ${part.columns.map(ident).join(', ')} FROM ${ident(spec.table)} WITH NO DATA`);
  await writePartRows(tx, staging, car, part);
  const fill = Object.entries(spec.fill ?? {});
  const columns = [...part.columns.map(ident), ...fill.map(([c]) => ident(c))].join(', ');
  const values = [...part.columns.map(ident), ...fill.map(([, expr]) => expr)].join(', ');
  const r = await tx.query(`INSERT INTO ${ident(spec.table)} (${columns}) SELECT ${values} FROM ${staging} ON CONFLICT DO NOTHING`);
  return r.rowCount ?? 0;
}

/**
 * What the restored rows leave to recompute: the cached balances of the ledger accounts that keep one
 * (the sum of their entries), and the id sequences past the restored ids.
 */
async function afterRestore(tx: Queryable): Promise<void> {
  await tx.query(
    `UPDATE ledger_accounts a SET balance = coalesce((SELECT sum(amount) FROM ledger_entries e WHERE e.account_id = a.id), 0)
      WHERE kind NOT IN ('operator_earnings', 'platform_revenue')`,
  );
  for (const table of ['ledger_accounts', 'ledger_transactions', 'ledger_entries', 'admin_changes', 'rcp_records']) {
    await tx.query(`SELECT setval(pg_get_serial_sequence($1, 'id'), m) FROM (SELECT max(id) AS m FROM ${ident(table)}) x WHERE m IS NOT NULL`, [table]);
  }
}
