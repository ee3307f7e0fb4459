// The pre-flight check of `resultity serve` and the test command (cli/engines.ts): does an AMQP
// connection open within the time given?
import { Connection } from 'rabbitmq-client';

/** Resolves when a connection to RabbitMQ at `url` opens; rejects otherwise. */
export async function reachRabbitMq(url: string, timeoutMs: number): Promise<void> {
  const rabbit = new Connection({ url, retryLow: 100, retryHigh: 200, connectionTimeout: timeoutMs });
  rabbit.on('error', () => undefined);
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no connection within ${timeoutMs + 1_000} ms`)), timeoutMs + 1_000);
      rabbit.once('connection', () => {
        clearTimeout(t);
        resolve();
      });
    });
  } finally {
    await rabbit.close();
  }
}
