// Usage reports per namespace, by day, model and API key: JSON or CSV, for consumers (their own
// namespace, through /v1/usage) and platform operators (any namespace, through /admin and the CLI).
import { formatCredits } from '../errors.js';
import { toCsv } from '../domain/csv.js';
import { dayRange, isoDay } from '../domain/day-range.js';
import type { Db } from '../postgres/db.js';
import { usageByDayModelKey, type UsageRow } from '../postgres/usage.repository.js';

export interface UsageReportRow extends Omit<UsageRow, 'charged_micro'> {
  credits_charged: string;
}

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

  /**
   * Usage for days `from` to `to` inclusive (YYYY-MM-DD, UTC; default: the last 30 days up to today).
   */
  /** Usage for days `from` to `to` inclusive (YYYY-MM-DD, UTC; default: the 30 days up to today). */
  async report(namespaceId: string, range: { from?: string; to?: string }): Promise<{ from: string; to: string; data: UsageReportRow[] }> {
    const r = dayRange(range);
    const rows = await usageByDayModelKey(this.db, namespaceId, r.from, r.end);
    return {
      from: isoDay(r.from),
      to: isoDay(r.to),
      data: rows.map(({ charged_micro, ...rest }) => ({ ...rest, credits_charged: formatCredits(charged_micro) })),
    };
  }

  toCsv(rows: readonly UsageReportRow[]): string {
    return toCsv(USAGE_CSV_COLUMNS, rows);
  }
}
