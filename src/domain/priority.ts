// Priority classes. Every job has one; it decides which RabbitMQ queue carries the job, how large a
// share of free node slots the job's class gets while several classes wait, and the surcharge on its
// price. Weights are shares, not ranks: while all four classes have work waiting, urgent jobs get 8 of
// every 15 dispatches and bulk jobs still get 2, so urgent work overtakes bulk work without starving it.
export const PRIORITY_CLASSES = ['urgent', 'standard', 'bulk', 'test'] as const;
export type PriorityClass = (typeof PRIORITY_CLASSES)[number];

export const PRIORITY_WEIGHTS: Readonly<Record<PriorityClass, number>> = { urgent: 8, standard: 4, bulk: 2, test: 1 };

export function isPriorityClass(v: unknown): v is PriorityClass {
  return typeof v === 'string' && (PRIORITY_CLASSES as readonly string[]).includes(v);
}

/**
 * OpenAI's `service_tier` request field, mapped onto the network's classes: 'priority' buys urgent
 * handling and 'flex' accepts slower, cheaper bulk handling. 'scale' (reserved capacity) has no
 * counterpart here and is refused by the caller.
 */
const SERVICE_TIERS: Readonly<Record<string, PriorityClass>> = { auto: 'standard', default: 'standard', priority: 'urgent', flex: 'bulk' };

export function priorityFromServiceTier(tier: string): PriorityClass | null {
  return SERVICE_TIERS[tier] ?? null;
}

/** The `service_tier` a response reports for a class ('test' has no OpenAI name: it reports 'default'). */
export function serviceTierOf(p: PriorityClass): 'priority' | 'default' | 'flex' {
  switch (p) {
    case 'urgent':
      return 'priority';
    case 'bulk':
      return 'flex';
    case 'standard':
    case 'test':
      return 'default';
  }
}

/**
 * A surcharge per class, in basis points of the charge (10000 = +100%). Negative values are discounts
 * (bulk is usually cheaper); -10000 would make the class free and is not allowed.
 */
export type PrioritySurcharges = Partial<Record<PriorityClass, number>>;

export const SURCHARGE_BPS_MIN = -9_999;
export const SURCHARGE_BPS_MAX = 100_000;
