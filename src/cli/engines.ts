// Pre-flight checks of the engines, with the exact command to run when one is down (the commands of
// this project's reference machine; see the README).
import pg from 'pg';
import { Redis } from 'ioredis';
import { Connection } from 'rabbitmq-client';
import type { Config } from '../config.js';

const HINTS = {
  postgres: "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
  redis: 'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no',
  rabbitmq: 'rabbitmq-server -detached',
};

export async function checkEngines(config: Config): Promise<string[]> {
  const problems: string[] = [];
  const admin = new URL(config.DATABASE_URL);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (err) {
    problems.push(`PostgreSQL at ${redact(config.DATABASE_URL)} is not reachable (${(err as Error).message}). Start it: ${HINTS.postgres}`);
  } finally {
    await client.end().catch(() => undefined);
  }

  const redis = new Redis(config.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 3_000 });
  redis.on('error', () => undefined); // the failed connect() below reports it
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    problems.push(`Redis at ${redact(config.REDIS_URL)} is not reachable (${(err as Error).message}). Start it: ${HINTS.redis}`);
  } finally {
    redis.disconnect();
  }

  const rabbit = new Connection({ url: config.RABBITMQ_URL, retryLow: 100, retryHigh: 200, connectionTimeout: 3_000 });
  rabbit.on('error', () => undefined);
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no connection within 4 s')), 4_000);
      rabbit.once('connection', () => {
        clearTimeout(t);
        resolve();
      });
    });
  } catch (err) {
    problems.push(`RabbitMQ at ${redact(config.RABBITMQ_URL)} is not reachable (${(err as Error).message}). Start it: ${HINTS.rabbitmq}`);
  } finally {
    await rabbit.close();
  }
  return problems;
}

/** A URL with its password hidden, for messages and logs. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}
