// In-memory UsageStore (space/usage.service.ts) for the service's fast tests: raw jobs' usage by day,
// the rollups of rolled-up days (whose raw rows may still be there or already dropped), storage charges.
import type { MeteringRow } from '../../src/postgres/space.repository.js';
import type { UsageRow } from '../../src/postgres/usage.repository.js';
import type { UsageStore, UsageTx } from '../../src/space/usage.service.js';

export class FakeUsageStore implements UsageStore {
  /** Usage as the raw jobs give it (one row per day, model and key), by namespace. */
  readonly raw: Array<{ namespaceId: string; row: UsageRow }> = [];
  /** Usage as the rollups give it, for rolled-up days. */
  readonly rollups: Array<{ namespaceId: string; row: UsageRow }> = [];
  readonly rolledUpDays = new Set<string>();
  readonly meterings: Array<{ namespaceId: string; row: MeteringRow }> = [];
  /** Each read, in order. */
  readonly calls: Array<{ op: string; args: unknown[] }> = [];

  snapshot<T>(fn: (tx: UsageTx) => Promise<T>): Promise<T> {
    const read = (op: string, args: unknown[]) => this.calls.push({ op, args });
    return fn({
        listMeteringsBetween: (namespaceId, from, to) => {
          read('listMeteringsBetween', [from, to]);
          return Promise.resolve(this.meterings.filter((m) => m.namespaceId === namespaceId && m.row.day >= from && m.row.day <= to).map((m) => m.row));
        },
        listRollupDays: (from, to) => {
          read('listRollupDays', [from, to]);
          return Promise.resolve([...this.rolledUpDays].filter((d) => d >= from && d <= to).sort().map((day) => ({ day })));
        },
        usageFromRollups: (namespaceId, fromDay, toDay) => {
          read('usageFromRollups', [fromDay, toDay]);
          return Promise.resolve(this.rollups.filter((r) => r.namespaceId === namespaceId && r.row.day >= fromDay && r.row.day <= toDay).map((r) => ({ ...r.row })));
        },
        usageFromJobs: (namespaceId, from, to) => {
          read('usageFromJobs', [from.toISOString(), to.toISOString()]);
          return Promise.resolve(this.raw.filter((r) => r.namespaceId === namespaceId && dayMs(r.row.day) >= from.getTime() && dayMs(r.row.day) < to.getTime()).map((r) => ({ ...r.row })));
        },
    });
  }
}

const dayMs = (day: string) => Date.parse(`${day}T00:00:00Z`);
