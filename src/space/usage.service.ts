// Usage reports per namespace, by day, model and API key: JSON or CSV, for consumers (their own
// namespace, through /v1/usage) and platform operators (any namespace, through /admin and the CLI).
// Rolled-up days are read from their rollups (their raw rows may be gone), the other days from the raw
// jobs; each day from exactly one of the two, all in one snapshot, so no day counts twice or not at all
// while a rollup or a drop commits.
import { formatCredits } from '../errors.js';
import { toCsv } from '../domain/csv.js';
import { dayRange, isoDay } from '../domain/day-range.js';
import { addDays, dayStart, spansWithout } from '../domain/job-history.js';
import type { MeteringRow } from '../postgres/space.repository.js';
import type { UsageRow } from '../postgres/usage.repository.js';

export interface UsageReportRow extends Omit<UsageRow, 'charged_micro'> {
  credits_charged: string;
}

/** A day's storage charge (Space: extended retention and pins, metered from what MongoDB held). */
export interface StorageReportRow {
  day: string;
  stored_bytes: number;
  credits_charged: string;
  /** The namespace could not pay: nothing was charged and its plan fell back to standard. */
  fell_back: boolean;
}

/** How a storage charge reads in the CSV form: a row of its own, under this model name, with no key. */
export const STORAGE_CSV_MODEL = 'space:storage';

export const USAGE_CSV_COLUMNS = [
  'day',
  'model',
  'api_key_id',
  'key_prefix',
  'requests',
  'completed',
  'failed',
  'expired',
  'prompt_tokens',
  'completion_tokens',
  'credits_charged',
] as const satisfies ReadonlyArray<keyof UsageReportRow>;

/**
 * What the service needs from PostgreSQL: the port its fast tests fake (test/fakes/usage.store.ts); on the
 * engine it is postgres/usage.store.ts.
 */
export interface UsageStore {
  /** `fn`'s reads in one read-only snapshot: a rollup or a drop committing meanwhile is seen whole or not at all. */
  snapshot<T>(fn: (tx: UsageTx) => Promise<T>): Promise<T>;
}

export interface UsageTx {
  /** Storage charges of days `from` to `to` (YYYY-MM-DD, inclusive). */
  listMeteringsBetween(namespaceId: string, from: string, to: string): Promise<MeteringRow[]>;
  /** Days from `from` to `to` that are rolled up (for every namespace at once). */
  listRollupDays(from: string, to: string): Promise<Array<{ day: string }>>;
  /** Usage of rolled-up days from `fromDay` to `toDay`, from the rollups. */
  usageFromRollups(namespaceId: string, fromDay: string, toDay: string): Promise<UsageRow[]>;
  /** Usage from the raw jobs created in [from, to). */
  usageFromJobs(namespaceId: string, from: Date, to: Date): Promise<UsageRow[]>;
}

export class UsageService {
  constructor(private readonly store: UsageStore) {}

  /** Usage for days `from` to `to` inclusive (YYYY-MM-DD, UTC; default: the 30 days up to today), oldest day first. */
  async report(namespaceId: string, range: { from?: string; to?: string }): Promise<{ from: string; to: string; data: UsageReportRow[]; storage: StorageReportRow[] }> {
    const r = dayRange(range);
    const from = isoDay(r.from);
    const to = isoDay(r.to);
    let storage: MeteringRow[] = [];
    const rows = await this.store.snapshot(async (tx) => {
      storage = await tx.listMeteringsBetween(namespaceId, from, to);
      const rolledUp = new Set((await tx.listRollupDays(from, to)).map((d) => d.day));
      const all = rolledUp.size > 0 ? await tx.usageFromRollups(namespaceId, from, to) : [];
      for (const span of spansWithout(from, to, rolledUp)) {
        all.push(...(await tx.usageFromJobs(namespaceId, dayStart(span.first), dayStart(addDays(span.last, 1)))));
      }
      return all;
    });
    rows.sort((a, b) => a.day.localeCompare(b.day) || a.model.localeCompare(b.model) || a.key_prefix.localeCompare(b.key_prefix) || a.api_key_id.localeCompare(b.api_key_id));
    return {
      from,
      to,
      data: rows.map(({ charged_micro, ...rest }) => ({ ...rest, credits_charged: formatCredits(charged_micro) })),
      storage: storage.map((m) => ({ day: m.day, stored_bytes: m.stored_bytes, credits_charged: formatCredits(m.charged_micro), fell_back: m.fell_back })),
    };
  }

  /** The CSV form: a row per day, model and key, then a row per day of storage charged (model STORAGE_CSV_MODEL). */
  toCsv(rows: readonly UsageReportRow[], storage: readonly StorageReportRow[] = []): string {
    const storageRows: UsageReportRow[] = storage.map((m) => ({
      day: m.day,
      model: STORAGE_CSV_MODEL,
      api_key_id: '',
      key_prefix: '',
      requests: 0,
      completed: 0,
      failed: 0,
      expired: 0,
      prompt_tokens: 0,
      completion_tokens: 0,
      credits_charged: m.credits_charged,
    }));
    return toCsv(USAGE_CSV_COLUMNS, [...rows, ...storageRows]);
  }
}
