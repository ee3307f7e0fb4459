// Usage reports per namespace, by day, model and API key: JSON or CSV, for consumers (their own
// namespace, through /v1/usage) and platform operators (any namespace, through /admin and the CLI).
// Rolled-up days are read from their rollups (their raw rows may be gone), the other days from the raw
// jobs; each day from exactly one of the two, all in one snapshot, so no day counts twice or not at all
// while a rollup or a drop commits.
import { formatCredits } from '../errors.js';
import { toCsv } from '../domain/csv.js';
import { dayRange, isoDay } from '../domain/day-range.js';
import { addDays, dayStart, spansWithout } from '../domain/job-history.js';
import { withTransaction, type Db } from '../postgres/db.js';
import { listRollupDays } from '../postgres/job-history.repository.js';
import { listMeteringsBetween, type MeteringRow } from '../postgres/space.repository.js';
import { usageFromJobs, usageFromRollups, type UsageRow } from '../postgres/usage.repository.js';

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

export class UsageService {
  constructor(private readonly db: Db) {}

  /** Usage for days `from` to `to` inclusive (YYYY-MM-DD, UTC; default: the 30 days up to today), oldest day first. */
  async report(namespaceId: string, range: { from?: string; to?: string }): Promise<{ from: string; to: string; data: UsageReportRow[]; storage: StorageReportRow[] }> {
    const r = dayRange(range);
    const from = isoDay(r.from);
    const to = isoDay(r.to);
    let storage: MeteringRow[] = [];
    const rows = await withTransaction(this.db, async (tx) => {
      storage = await listMeteringsBetween(tx, namespaceId, from, to);
      const rolledUp = new Set((await listRollupDays(tx, from, to)).map((d) => d.day));
      const all = rolledUp.size > 0 ? await usageFromRollups(tx, namespaceId, from, to) : [];
      for (const span of spansWithout(from, to, rolledUp)) {
        all.push(...(await usageFromJobs(tx, namespaceId, dayStart(span.first), dayStart(addDays(span.last, 1)))));
      }
      return all;
    }, { isolation: 'snapshot', readOnly: true });
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
