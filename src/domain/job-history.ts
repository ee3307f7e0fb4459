// When a day of job history is closed, past the live window, or due a partition: the rules the
// maintenance role applies (src/maintenance/history.service.ts). Days are UTC, written YYYY-MM-DD.
import { DAY_MS, isoDay } from './day-range.js';

/**
 * How long past a day's end, on top of the longest job deadline, before the day counts as closed. It
 * covers the accept transaction still committing after its insert and the expiry sweep's own lag
 * (insertJobs refuses a job whose deadline passed, so no job can arrive later than that).
 */
export const DAY_CLOSE_MARGIN_MS = 5 * 60_000;

export function dayStart(day: string): Date {
  return new Date(`${day}T00:00:00Z`);
}

export function addDays(day: string, n: number): string {
  return isoDay(new Date(dayStart(day).getTime() + n * DAY_MS));
}

/** Days from `first` to `last` inclusive, oldest first. */
export function daysBetween(first: string, last: string): string[] {
  const days: string[] = [];
  for (let d = first; d <= last; d = addDays(d, 1)) days.push(d);
  return days;
}

/**
 * A day of jobs is closed once no job created that day can still change: its end plus the longest
 * deadline (and a margin) has passed. The rollup also requires every job of the day to be finished.
 */
export function isJobDayClosed(day: string, now: Date, maxDeadlineMs: number): boolean {
  return dayStart(addDays(day, 1)).getTime() + maxDeadlineMs + DAY_CLOSE_MARGIN_MS <= now.getTime();
}

/** True when the whole day lies more than `liveWindowDays` days in the past: its raw rows may go. */
export function isPastLiveWindow(day: string, now: Date, liveWindowDays: number): boolean {
  return dayStart(addDays(day, 1)).getTime() <= now.getTime() - liveWindowDays * DAY_MS;
}

/** The runs of consecutive days in [first, last] that are not in `except`, oldest first. */
export function spansWithout(first: string, last: string, except: ReadonlySet<string>): Array<{ first: string; last: string }> {
  const spans: Array<{ first: string; last: string }> = [];
  for (const day of daysBetween(first, last)) {
    if (except.has(day)) continue;
    const open = spans.at(-1);
    if (open && addDays(open.last, 1) === day) open.last = day;
    else spans.push({ first: day, last: day });
  }
  return spans;
}

/** The days that must have a partition: today and the `aheadDays` days after it. */
export function partitionDaysAhead(now: Date, aheadDays: number): string[] {
  const today = isoDay(now);
  return daysBetween(today, addDays(today, aheadDays));
}
