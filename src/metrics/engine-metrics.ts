// The process's Prometheus metrics: counters of the work this process asks of each engine, incremented by
// the engine client factories (postgres/db.ts, redis/client.ts, mongo/client.ts, rabbitmq/client.ts) on
// the clients they create, plus Node's default process metrics. One registry per process: a process runs
// one backbone in production; several backbones in one test process share the counters (tests read
// deltas). Labels are bounded (labels.ts): command kinds and names, never ids.
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import type pg from 'pg';
import type { Redis } from 'ioredis';
import type { MongoClient } from 'mongodb';
import { ConsumerStatus, type Connection, type ConsumerHandler } from 'rabbitmq-client';
import { clientLabel, mongoCommandLabel, pgStatementKind, PgTransactionTracker, redisCommandLabel } from './labels.js';

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

type QueryFn = (...args: unknown[]) => unknown;

function statementText(first: unknown): string | null {
  if (typeof first === 'string') return first;
  if (typeof first === 'object' && first !== null && 'text' in first && typeof first.text === 'string') return first.text;
  return null;
}

/** Counts every statement of every client the pool connects (pool.query included: it runs on a client). */
export function countPgPool(pool: pg.Pool): void {
  pool.on('connect', (client: pg.PoolClient) => {
    const tracker = new PgTransactionTracker();
    const target = client as unknown as { query: QueryFn };
    const query: QueryFn = target.query.bind(client);
    target.query = (...args: unknown[]) => {
      const text = statementText(args[0]);
      const kind = text === null ? 'other' : pgStatementKind(text);
      pgStatements.inc({ kind });
      const ended = tracker.observe(kind);
      if (ended) pgTransactions.inc({ kind: ended });
      return query(...args);
    };
  });
}

/** Counts every command the client sends, pipelines and MULTI blocks included (they go through sendCommand). */
export function countRedis(redis: Redis, name: string): void {
  const client = clientLabel(name);
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = (...args: Parameters<Redis['sendCommand']>) => {
    redisCommands.inc({ client, command: redisCommandLabel(args[0].name) });
    return send(...args);
  };
}

/** Counts commands by name; the client must have been created with `monitorCommands: true`. */
export function countMongo(client: MongoClient): void {
  client.on('commandStarted', (event) => mongoCommands.inc({ command: mongoCommandLabel(event.commandName) }));
}

/** Counts publishes of every publisher, and the settlement of every delivery of every consumer, the connection creates. */
export function countRabbit(rabbit: Connection): void {
  const createPublisher = rabbit.createPublisher.bind(rabbit);
  rabbit.createPublisher = (props) => {
    const publisher = createPublisher(props);
    const confirm = props?.confirm ? 'true' : 'false';
    const send = publisher.send.bind(publisher) as (envelope: unknown, body: unknown) => Promise<void>;
    publisher.send = ((envelope: unknown, body: unknown) =>
      send(envelope, body).then(
        () => {
          rabbitPublishes.inc({ confirm, outcome: 'ok' });
        },
        (err: unknown) => {
          rabbitPublishes.inc({ confirm, outcome: 'error' });
          throw err;
        },
      )) as typeof publisher.send;
    return publisher;
  };
  const createConsumer = rabbit.createConsumer.bind(rabbit);
  rabbit.createConsumer = (props, cb) => {
    const counted: ConsumerHandler = async (msg, reply) => {
      let status: ConsumerStatus | void;
      try {
        status = await cb(msg, reply);
      } catch (err) {
        rabbitDeliveries.inc({ outcome: 'error' });
        throw err;
      }
      rabbitDeliveries.inc({ outcome: status === ConsumerStatus.REQUEUE ? 'requeue' : status === ConsumerStatus.DROP ? 'drop' : 'ack' });
      return status;
    };
    return createConsumer(props, counted);
  };
}
