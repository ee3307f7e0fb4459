// The snapshots' index in PostgreSQL (migrations/0019): the `snapshots` rows and the sealed epochs, the
// contribution points the epochs' Merkle trees are built from, and what decides that a day is ready to be
// snapshotted. (Copying parts out and in: snapshot-copy.ts.)
import type { Queryable } from './db.js';

/** What a snapshot covers (src/snapshots/snapshot.format.ts names the same kinds). */
export type SnapshotRowKind = 'day' | 'state';

/** The newest migration applied: the schema the parts' columns come from. */
export async function schemaVersion(q: Queryable): Promise<string> {
  const r = await q.query<{ name: string }>(`SELECT name FROM pgmigrations ORDER BY id DESC LIMIT 1`);
  return r.rows[0]?.name ?? 'none';
}

export interface SnapshotRow {
  cid: string;
  seq: number;
  previous_cid: string | null;
  kind: SnapshotRowKind;
  day: string | null;
  bytes: number;
  part_rows: Record<string, number>;
  store: string;
  created_at: Date;
  verified_at: Date | null;
}

const COLUMNS = `cid, seq, previous_cid, kind, to_char(day, 'YYYY-MM-DD') AS day, bytes, part_rows, store, created_at, verified_at`;

export async function latestSnapshot(q: Queryable): Promise<SnapshotRow | null> {
  const r = await q.query<SnapshotRow>(`SELECT ${COLUMNS} FROM snapshots ORDER BY seq DESC LIMIT 1`);
  return r.rows[0] ?? null;
}

export async function listSnapshots(q: Queryable, limit: number): Promise<SnapshotRow[]> {
  const r = await q.query<SnapshotRow>(`SELECT ${COLUMNS} FROM snapshots ORDER BY seq DESC LIMIT $1`, [limit]);
  return r.rows;
}

/** A snapshot by root CID, or a day snapshot by its day (YYYY-MM-DD). */
export async function findSnapshot(q: Queryable, ref: string): Promise<SnapshotRow | null> {
  const byDay = /^\d{4}-\d{2}-\d{2}$/.test(ref);
  const r = await q.query<SnapshotRow>(`SELECT ${COLUMNS} FROM snapshots WHERE ${byDay ? `kind = 'day' AND day = $1::date` : 'cid = $1'}`, [ref]);
  return r.rows[0] ?? null;
}

export async function insertSnapshot(q: Queryable, s: Omit<SnapshotRow, 'created_at' | 'verified_at'> & { created_at?: Date }): Promise<void> {
  await q.query(
    `INSERT INTO snapshots (cid, seq, previous_cid, kind, day, bytes, part_rows, store, created_at)
     VALUES ($1, $2, $3, $4, $5::date, $6, $7, $8, coalesce($9, now()))`,
    [s.cid, s.seq, s.previous_cid, s.kind, s.day, s.bytes, JSON.stringify(s.part_rows), s.store, s.created_at ?? null],
  );
}

export async function markSnapshotVerified(q: Queryable, cid: string): Promise<void> {
  await q.query(`UPDATE snapshots SET verified_at = now() WHERE cid = $1`, [cid]);
}

export interface SealedEpochRow {
  epoch: number;
  merkle_root: string;
  nodes: number;
  points: number;
  snapshot_cid: string;
}

export async function insertSealedEpochs(q: Queryable, rows: readonly SealedEpochRow[]): Promise<void> {
  if (rows.length === 0) return;
  await q.query(
    `INSERT INTO snapshot_epochs (epoch, merkle_root, nodes, points, snapshot_cid)
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::bigint[], $5::text[])`,
    [rows.map((r) => r.epoch), rows.map((r) => r.merkle_root), rows.map((r) => r.nodes), rows.map((r) => r.points), rows.map((r) => r.snapshot_cid)],
  );
}

export async function findSealedEpochs(q: Queryable, epochs: readonly number[] | null, limit: number): Promise<SealedEpochRow[]> {
  const r = await q.query<SealedEpochRow>(
    `SELECT epoch, merkle_root, nodes, points, snapshot_cid FROM snapshot_epochs
      WHERE $1::bigint[] IS NULL OR epoch = ANY($1::bigint[]) ORDER BY epoch DESC LIMIT $2`,
    [epochs, limit],
  );
  return r.rows;
}

/** Points per node in each of the epochs, node order: the leaves of the epochs' Merkle trees. */
export async function epochPoints(q: Queryable, epochs: readonly number[]): Promise<Array<{ epoch: number; node_id: string; points: number }>> {
  const r = await q.query<{ epoch: number; node_id: string; points: number }>(
    `SELECT epoch, node_id, sum(points)::bigint AS points FROM rcp_records WHERE epoch = ANY($1::bigint[])
      GROUP BY epoch, node_id ORDER BY epoch, node_id`,
    [epochs],
  );
  return r.rows;
}

/** Epochs in [first, last] that have contribution records and are not sealed yet. */
export async function unsealedEpochsWithRecords(q: Queryable, first: number, last: number): Promise<number[]> {
  const r = await q.query<{ epoch: number }>(
    `SELECT DISTINCT epoch FROM rcp_records r WHERE epoch BETWEEN $1 AND $2
        AND NOT EXISTS (SELECT 1 FROM snapshot_epochs s WHERE s.epoch = r.epoch) ORDER BY epoch`,
    [first, last],
  );
  return r.rows.map((x) => x.epoch);
}

export interface HistoryExtent {
  /** The oldest day any history starts on (rollups, ledger, partitions); null when there is none. */
  first_day: string | null;
  last_rolled_up: string | null;
  first_ledger_day: string | null;
  last_ledger_day: string | null;
}

export async function historyExtent(q: Queryable): Promise<HistoryExtent> {
  const r = await q.query<HistoryExtent>(
    `SELECT to_char(least((SELECT min(day) FROM job_rollup_days), (SELECT min(created_at AT TIME ZONE 'UTC')::date FROM ledger_transactions)), 'YYYY-MM-DD') AS first_day,
            (SELECT to_char(max(day), 'YYYY-MM-DD') FROM job_rollup_days) AS last_rolled_up,
            (SELECT to_char(min(created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') FROM ledger_transactions) AS first_ledger_day,
            (SELECT to_char(max(day), 'YYYY-MM-DD') FROM ledger_days) AS last_ledger_day`,
  );
  return r.rows[0]!;
}

/** The oldest day in [from, to] without a day snapshot, or null. */
export async function firstDayWithoutSnapshot(q: Queryable, from: string, to: string): Promise<string | null> {
  const r = await q.query<{ day: string }>(
    `SELECT to_char(d, 'YYYY-MM-DD') AS day FROM generate_series($1::date, $2::date, interval '1 day') d
      WHERE NOT EXISTS (SELECT 1 FROM snapshots s WHERE s.kind = 'day' AND s.day = d::date) ORDER BY d LIMIT 1`,
    [from, to],
  );
  return r.rows[0]?.day ?? null;
}

export async function isRolledUp(q: Queryable, day: string): Promise<boolean> {
  const r = await q.query(`SELECT 1 FROM job_rollup_days WHERE day = $1::date`, [day]);
  return (r.rowCount ?? 0) > 0;
}

export async function hasJobPartition(q: Queryable, day: string): Promise<boolean> {
  const r = await q.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [`jobs_${day.replaceAll('-', '')}`]);
  return r.rows[0]!.ok;
}

/** Raw job rows of the day still in its partition. */
export async function countJobsOnDay(q: Queryable, day: string): Promise<number> {
  const r = await q.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM jobs WHERE created_at >= $1::date::timestamp AT TIME ZONE 'UTC' AND created_at < ($1::date + 1)::timestamp AT TIME ZONE 'UTC'`,
    [day],
  );
  return r.rows[0]!.n;
}

/** The day's link in the ledger's hash chain (hex hashes), or null when the day is not chained. */
export async function ledgerDayLink(q: Queryable, day: string): Promise<{ day: string; prev_hash: string; hash: string } | null> {
  const r = await q.query<{ day: string; prev_hash: string; hash: string }>(
    `SELECT to_char(day, 'YYYY-MM-DD') AS day, encode(prev_hash, 'hex') AS prev_hash, encode(hash, 'hex') AS hash FROM ledger_days WHERE day = $1::date`,
    [day],
  );
  return r.rows[0] ?? null;
}
