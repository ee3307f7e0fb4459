// Usage reports per namespace, by day, model and API key: JSON or CSV, for consumers (their own
// namespace, through /v1/usage) and platform operators (any namespace, through /admin and the CLI).
import { errors, formatCredits } from '../errors.js';
import { toCsv } from '../domain/csv.js';
import type { Db } from '../postgres/db.js';
import { usageByDayModelKey, type UsageRow } from '../postgres/usage.repository.js';

/** The longest period one report covers: keeps a report's cost bounded. */
const MAX_DAYS = 366;

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
  async report(namespaceId: string, range: { from?: string; to?: string }): Promise<{ from: string; to: string; data: UsageReportRow[] }> {
    const today = new Date().toISOString().slice(0, 10);
    const to = parseDay(range.to ?? today, 'to');
    const from = parseDay(range.from ?? new Date(to.getTime() - 29 * 86_400_000).toISOString().slice(0, 10), 'from');
    if (from > to) throw errors.invalid('from must not be after to', 'from');
    if ((to.getTime() - from.getTime()) / 86_400_000 >= MAX_DAYS) throw errors.invalid(`a report covers at most ${MAX_DAYS} days`, 'from');
    const rows = await usageByDayModelKey(this.db, namespaceId, from, new Date(to.getTime() + 86_400_000));
    return {
      from: from.toISOString().slice(0, 10),
      to: to.toISOString().slice(0, 10),
      data: rows.map(({ charged_micro, ...rest }) => ({ ...rest, credits_charged: formatCredits(charged_micro) })),
    };
  }

  toCsv(rows: readonly UsageReportRow[]): string {
    return toCsv(USAGE_CSV_COLUMNS, rows);
  }
}

function parseDay(s: string, param: string): Date {
  const d = /^\d{4}-\d{2}-\d{2}$/.test(s) ? new Date(`${s}T00:00:00Z`) : new Date(NaN);
  if (Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== s) throw errors.invalid(`${param} must be a date as YYYY-MM-DD`, param);
  return d;
}
