// Retention plans (Space, issue 10): what a namespace's plan means for its payloads, and what extended
// retention costs. Pure rules; the plan is kept on the namespace row (migrations/0024).
export type RetentionPlan = 'zero' | 'standard' | 'extended';
export const RETENTION_PLANS: readonly RetentionPlan[] = ['zero', 'standard', 'extended'];

export interface NamespaceRetention {
  retention_plan: RetentionPlan;
  /** Extended only: how many days its payloads are kept. */
  retention_days: number | null;
}

/**
 * The retention class (whole hours) a namespace's new payloads are written under; null for `zero`: nothing
 * is written to MongoDB. The class names the payloads' buckets, so that a later change of plan never
 * shortens what was promised to data already written.
 */
export function retentionHoursOf(ns: NamespaceRetention, standardHours: number): number | null {
  switch (ns.retention_plan) {
    case 'zero':
      return null;
    case 'standard':
      return standardHours;
    case 'extended':
      return (ns.retention_days ?? 1) * 24;
  }
}

/** Whether a class is billed: any class longer than the standard one is extended retention. */
export function isBilledClass(retentionHours: number, standardHours: number): boolean {
  return retentionHours > standardHours;
}

const GIB = 1024 ** 3;

/**
 * One day's storage charge for `bytes` held, in micro-credits: bytes as GiB times the price of a GiB-day,
 * rounded up (a namespace that stores anything pays at least one micro-credit for the day).
 */
export function storageChargeMicro(bytes: number, microPerGibDay: number): number {
  if (bytes <= 0) return 0;
  return Math.ceil((bytes / GIB) * microPerGibDay);
}

/** A plan as an owner or the admin asks for it, checked; the message says what is wrong. */
export function checkPlan(plan: string, days: number | null | undefined, maxDays: number): { ok: true; value: NamespaceRetention } | { ok: false; message: string } {
  if (!(RETENTION_PLANS as readonly string[]).includes(plan)) return { ok: false, message: `plan must be one of ${RETENTION_PLANS.join(', ')}` };
  if (plan !== 'extended') return days == null ? { ok: true, value: { retention_plan: plan as RetentionPlan, retention_days: null } } : { ok: false, message: 'days applies to the extended plan only' };
  if (days == null || !Number.isInteger(days) || days < 1 || days > maxDays) return { ok: false, message: `days must be a whole number from 1 to ${maxDays}` };
  return { ok: true, value: { retention_plan: 'extended', retention_days: days } };
}
