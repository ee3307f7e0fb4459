// In-memory SnapshotRecords (snapshots/snapshot.service.ts) for the snapshot service's fast tests: the
// snapshot rows, the history's extent and the facts about days (rolled up, partition present, raw rows),
// sealed epochs and their points. An export itself is not faked (it is COPY out of PostgreSQL).
import type { HistoryExtent, SealedEpochRow, SnapshotRow } from '../../src/postgres/snapshots.repository.js';
import type { SnapshotRecords } from '../../src/snapshots/snapshot.service.js';
import { FakeDatabase } from './fake-database.js';

const NO_HISTORY: HistoryExtent = { first_day: null, last_rolled_up: null, first_ledger_day: null, last_ledger_day: null };

export class FakeSnapshotRecords implements SnapshotRecords {
  readonly db = new FakeDatabase({
    extent: NO_HISTORY,
    snapshots: [] as SnapshotRow[],
    rolledUp: new Set<string>(),
    partitions: new Map<string, number>(),
    sealed: [] as SealedEpochRow[],
    points: [] as Array<{ epoch: number; node_id: string; points: number }>,
  });

  addSnapshot(day: string, cid: string, jobs: number): SnapshotRow {
    const row: SnapshotRow = { cid, seq: this.db.state.snapshots.length + 1, previous_cid: null, kind: 'day', day, bytes: 1, part_rows: { jobs }, store: 'fake', created_at: new Date(), verified_at: null };
    this.db.state.snapshots.push(row);
    return row;
  }

  historyExtent = () => Promise.resolve(this.db.state.extent);

  firstDayWithoutSnapshot = (from: string, to: string) => {
    const have = new Set(this.db.state.snapshots.map((s) => s.day));
    for (let d = new Date(`${from}T00:00:00Z`); d.toISOString().slice(0, 10) <= to; d = new Date(d.getTime() + 86_400_000)) {
      const day = d.toISOString().slice(0, 10);
      if (!have.has(day)) return Promise.resolve(day);
    }
    return Promise.resolve(null);
  };

  isRolledUp = (day: string) => Promise.resolve(this.db.state.rolledUp.has(day));
  hasJobPartition = (day: string) => Promise.resolve(this.db.state.partitions.has(day));
  find = (ref: string) => Promise.resolve(this.db.state.snapshots.find((s) => s.cid === ref || s.day === ref) ?? null);
  countJobsOnDay = (day: string) => Promise.resolve(this.db.state.partitions.get(day) ?? 0);

  markVerified = (cid: string) => {
    this.db.call('markVerified');
    const s = this.db.state.snapshots.find((x) => x.cid === cid);
    if (s) s.verified_at = new Date();
    return Promise.resolve();
  };

  list = (limit: number) => Promise.resolve([...this.db.state.snapshots].reverse().slice(0, limit));
  latest = () => Promise.resolve(this.db.state.snapshots.at(-1) ?? null);

  sealedEpochs = (epochs: readonly number[] | null, limit: number) =>
    Promise.resolve(
      this.db.state.sealed
        .filter((s) => epochs === null || epochs.includes(s.epoch))
        .sort((a, b) => b.epoch - a.epoch)
        .slice(0, limit),
    );

  epochPoints = (epochs: readonly number[]) => Promise.resolve(this.db.state.points.filter((p) => epochs.includes(p.epoch)));
}
