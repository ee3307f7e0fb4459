// The RabbitMQ port, on rabbitmq-client: one connection per process that reconnects by itself, and
// publishers and consumers that redeclare their topology after every reconnect (a broker restart).
import { Connection } from 'rabbitmq-client';
import type { Logger } from 'pino';
import { instrumentRabbit } from './instrument.js';

export function connectRabbit(url: string, logger: Logger): Connection {
  // acquireTimeout bounds how long a publish waits for a channel while the broker is away; past it the
  // accept path gives up and leaves the job to the outbox instead of holding the HTTP request.
  // noDelay: TCP_NODELAY (rabbitmq-client leaves Nagle on by default): a publish and its confirm are small
  // frames, and Nagle against the broker's delayed ACKs adds up to ~40 ms to each.
  const rabbit = new Connection({ url, connectionName: 'resultity', retryLow: 200, retryHigh: 5_000, acquireTimeout: 5_000, noDelay: true });
  // Publishes and delivery settlements counted for GET /metrics.
  instrumentRabbit(rabbit);
  rabbit.on('error', (err) => logger.warn({ err }, 'rabbitmq connection error'));
  rabbit.on('connection', () => logger.debug('rabbitmq connected'));
  return rabbit;
}

/** Resolves once the connection is up, or rejects with the broker's error after `timeoutMs`. */
export async function waitForRabbit(rabbit: Connection, timeoutMs: number): Promise<void> {
  if (rabbit.ready) return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`RabbitMQ not reachable after ${timeoutMs} ms`)), timeoutMs);
    rabbit.once('connection', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
