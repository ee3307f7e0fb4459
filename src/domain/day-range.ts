// Report periods: whole UTC days, `from` to `to` inclusive, given as YYYY-MM-DD.
import { errors } from '../errors.js';

/** The longest period one report covers: keeps a report's cost bounded. */
export const MAX_REPORT_DAYS = 366;
export const DAY_MS = 86_400_000;

export interface DayRange {
  from: Date;
  to: Date;
  /** The instant after the last day: query with created_at < end. */
  end: Date;
}

/** Resolves a report period; by default the 30 days up to today (UTC). Throws invalid_request on bad input. */
export function dayRange(range: { from?: string; to?: string }, now = new Date()): DayRange {
  const to = parseDay(range.to ?? now.toISOString().slice(0, 10), 'to');
  const from = range.from === undefined ? new Date(to.getTime() - 29 * DAY_MS) : parseDay(range.from, 'from');
  if (from > to) throw errors.invalid('from must not be after to', 'from');
  if ((to.getTime() - from.getTime()) / DAY_MS >= MAX_REPORT_DAYS) throw errors.invalid(`a report covers at most ${MAX_REPORT_DAYS} days`, 'from');
  return { from, to, end: new Date(to.getTime() + DAY_MS) };
}

export function isoDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

function parseDay(s: string, param: string): Date {
  const d = /^\d{4}-\d{2}-\d{2}$/.test(s) ? new Date(`${s}T00:00:00Z`) : new Date(NaN);
  if (Number.isNaN(d.getTime()) || isoDay(d) !== s) throw errors.invalid(`${param} must be a date as YYYY-MM-DD`, param);
  return d;
}
