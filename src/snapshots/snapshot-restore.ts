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
import type { Db } from '../postgres/db.js';
import { assertEmptyHistory, recomputeAfterRestore, withRestoreTransaction, type RestoreWriter } from '../postgres/snapshot-copy.js';
import { insertSealedEpochs, insertSnapshot } from '../postgres/snapshots.repository.js';
import type { CarContents } from './car-file.js';
import { PART_ENCODING, type Manifest, type PartEntry, type Row } from './snapshot.format.js';
import { copyText } from './copy-text.js';
import { partSpec, type PartSpec } from './snapshot-parts.js';
import { partChunks, partRows, rootManifest, verifySnapshot } from './snapshot.verify.js';

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

export async function restoreChain(head: string, d: RestoreDeps): Promise<RestoreReport> {
  await assertEmptyHistory(d.db);
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
    rows += await withRestoreTransaction(d.db, async (tx) => {
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
  await recomputeAfterRestore(d.db);
  d.onProgress?.({ phase: 'done', done: chain.length, total: chain.length });
  const days = chain.map((c) => c.manifest.day).filter((x): x is string => x !== null);
  return { snapshots: chain.length, rows, first: chain[0]!.cid, head, days: { first: days[0] ?? null, last: days.at(-1) ?? null } };
}

/** A format-1 part's rows as COPY text, a thousand rows a piece. */
function* copyTextOf(rows: Iterable<Row>): Generator<string> {
  let batch: string[] = [];
  for (const row of rows) {
    batch.push(row.map(copyText).join('\t'));
    if (batch.length === 1_000) {
      yield `${batch.join('\n')}\n`;
      batch = [];
    }
  }
  if (batch.length > 0) yield `${batch.join('\n')}\n`;
}

/** A part's rows as COPY text: its chunks as they are (format 2), or its decoded rows printed (format 1). */
function partText(car: CarContents, part: PartEntry): Iterable<Uint8Array | string> {
  return part.encoding === PART_ENCODING ? partChunks(car, part) : copyTextOf(partRows(car, part));
}

/** Restores one part by its mode (see snapshot-parts.ts); returns the rows written. */
export async function restorePart(tx: RestoreWriter, car: CarContents, part: PartEntry): Promise<number> {
  const spec: PartSpec | undefined = partSpec(part.name);
  if (!spec || spec.table !== part.table) throw new Error(`part ${part.name} (table ${part.table}) is unknown to this version: cannot restore it`);
  if (spec.restore === 'archive' || part.rows === 0) return 0;
  if (spec.restore === 'append') {
    // Verified before: the part's rows are `part.rows`.
    await tx.append(spec.table, part.columns, partText(car, part));
    return part.rows;
  }
  return tx.merge(spec.table, part.columns, partText(car, part), spec.fill ?? {});
}
