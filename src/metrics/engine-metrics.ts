// The process's Prometheus metrics: counters of the work this process asks of each engine, incremented by
// the engine folders' own instrumentation (postgres/instrument.ts, redis/instrument.ts, mongo/instrument.ts,
// rabbitmq/instrument.ts) on the clients their factories create, plus Node's default process metrics
// (event-loop lag among them: resultity_process_nodejs_eventloop_lag_*). This base layer imports no engine
// client: it declares the series, the engine folders feed them. One registry per process: a process runs
// one backbone in production; several backbones in one test process share the counters (tests read
// deltas). Labels are bounded (labels.ts): command kinds and names, never ids.
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

export const metricsRegistry = new Registry();
collectDefaultMetrics({ register: metricsRegistry, prefix: 'resultity_process_' });

const registers = [metricsRegistry];

export const pgStatements = new Counter({
  name: 'resultity_pg_statements_total',
  help: 'Statements sent to PostgreSQL by the pools of this process (each a round trip), by first keyword',
  labelNames: ['kind'] as const,
  registers,
});
export const pgTransactions = new Counter({
  name: 'resultity_pg_transactions_total',
  help: 'PostgreSQL transactions ended by the pools of this process: explicit (COMMIT), implicit (a statement outside BEGIN..COMMIT), rollback',
  labelNames: ['kind'] as const,
  registers,
});
export const redisCommands = new Counter({
  name: 'resultity_redis_commands_total',
  help: 'Commands sent to Redis by the clients of this process (pipelined and MULTI commands each count), by client and command',
  labelNames: ['client', 'command'] as const,
  registers,
});
export const mongoCommands = new Counter({
  name: 'resultity_mongo_commands_total',
  help: 'Commands sent to MongoDB by this process (driver command monitoring), by command name',
  labelNames: ['command'] as const,
  registers,
});
export const rabbitPublishes = new Counter({
  name: 'resultity_rabbitmq_publishes_total',
  help: 'Messages published to RabbitMQ by this process, by confirm mode and outcome (a publish retried inside the client counts once)',
  labelNames: ['confirm', 'outcome'] as const,
  registers,
});
export const rabbitDeliveries = new Counter({
  name: 'resultity_rabbitmq_deliveries_total',
  help: 'Messages consumed from RabbitMQ by this process, by how they were settled: ack, requeue, drop (nack to dead-letter) or error (handler threw: requeued)',
  labelNames: ['outcome'] as const,
  registers,
});
export const httpResponses = new Counter({
  name: 'resultity_http_responses_total',
  help: 'HTTP responses by route pattern, method and status class',
  labelNames: ['route', 'method', 'status'] as const,
  registers,
});

/** How long requests took, from their arrival to the end of the reply (Fastify's elapsed time), by route pattern. */
export const httpRequestSeconds = new Histogram({
  name: 'resultity_http_request_seconds',
  help: 'HTTP request durations by route pattern and method',
  labelNames: ['route', 'method'] as const,
  buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  registers,
});

/** Jobs per grouped ledger statement (common/group-commit.ts via jobs/settlement.service.ts): holds at accept, settlements at the end. */
export const ledgerBatchItems = new Histogram({
  name: 'resultity_ledger_batch_items',
  help: 'Jobs per grouped ledger statement, by operation (hold, settle)',
  labelNames: ['operation'] as const,
  buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
  registers,
});

/** The engines, as the `engine` label of the engine series. */
export const ENGINE_LABELS = ['postgres', 'redis', 'mongodb', 'rabbitmq'] as const;
export type EngineLabel = (typeof ENGINE_LABELS)[number];

/**
 * What went wrong: `connection` (the engine unreachable, a connection lost or refused) or `operation` (a
 * statement, command or publish the engine answered with an error: a constraint, a script error...).
 */
export const ENGINE_ERROR_KINDS = ['connection', 'operation'] as const;
export type EngineErrorKind = (typeof ENGINE_ERROR_KINDS)[number];

export const engineErrors = new Counter({
  name: 'resultity_engine_errors_total',
  help: 'Errors this process met talking to each storage engine, by engine and kind (connection, operation)',
  labelNames: ['engine', 'kind'] as const,
  registers,
});
// Every series exists from the start (at 0), so that a rate() over it is defined before the first error.
for (const engine of ENGINE_LABELS) for (const kind of ENGINE_ERROR_KINDS) engineErrors.inc({ engine, kind }, 0);

export function countEngineError(engine: EngineLabel, kind: EngineErrorKind): void {
  engineErrors.inc({ engine, kind });
}
