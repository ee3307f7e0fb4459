// Degraded-mode signals: how often the cloud role served a request without an engine it normally uses
// (resultity_degraded_total{action}), and each engine's state as /readyz last saw it
// (resultity_engine_up{engine}). Both label sets are the fixed lists below.
import { Counter, Gauge } from 'prom-client';
import { metricsRegistry } from './engine-metrics.js';

/**
 * rate_limit_local   a request's rate limit taken from this process's buckets (Redis unreachable)
 * presence_skipped   a job accepted without asking whether a node is online (Redis unreachable): it waits in RabbitMQ
 * inflight_skipped   a job read without its in-flight attempt (Redis unreachable): shown as its row says
 * refused_no_redis   a request refused with 503 because it needs Redis (a streamed completion)
 */
export const DEGRADED_ACTIONS = ['rate_limit_local', 'presence_skipped', 'inflight_skipped', 'refused_no_redis'] as const;
export type DegradedAction = (typeof DEGRADED_ACTIONS)[number];

export const ENGINES = ['postgres', 'redis', 'mongodb', 'rabbitmq'] as const;
export type Engine = (typeof ENGINES)[number];

const degraded = new Counter({
  name: 'resultity_degraded_total',
  help: 'Requests served (or refused) without an engine they normally use, by what was done instead',
  labelNames: ['action'] as const,
  registers: [metricsRegistry],
});

const engineUp = new Gauge({
  name: 'resultity_engine_up',
  help: 'Whether each storage engine answered this process at its last readiness probe (1) or not (0)',
  labelNames: ['engine'] as const,
  registers: [metricsRegistry],
});

export function countDegraded(action: DegradedAction): void {
  degraded.inc({ action });
}

export function setEngineUp(engine: Engine, up: boolean): void {
  engineUp.set({ engine }, up ? 1 : 0);
}
