// Pre-flight checks of the engines, with the exact command to run when one is down (the commands of
// this project's reference machine; see the README).
import type { Config } from '../config.js';
import { reachPostgres } from '../postgres/preflight.js';
import { reachRedis } from '../redis/preflight.js';
import { reachRabbitMq } from '../rabbitmq/preflight.js';

const HINTS = {
  postgres: "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
  redis: 'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no',
  rabbitmq: 'rabbitmq-server -detached',
};
const TIMEOUT_MS = 3_000;

/** One line per engine that cannot be reached, with the command that starts it; empty when all are up. */
export async function checkEngines(config: Config): Promise<string[]> {
  const checks = [
    { name: 'PostgreSQL', url: config.DATABASE_URL, reach: reachPostgres, hint: HINTS.postgres },
    { name: 'Redis', url: config.REDIS_URL, reach: reachRedis, hint: HINTS.redis },
    { name: 'RabbitMQ', url: config.RABBITMQ_URL, reach: reachRabbitMq, hint: HINTS.rabbitmq },
  ];
  const problems = await Promise.all(
    checks.map(({ name, url, reach, hint }) =>
      reach(url, TIMEOUT_MS).then(
        () => null,
        (err: unknown) => `${name} at ${redact(url)} is not reachable (${(err as Error).message}). Start it: ${hint}`,
      ),
    ),
  );
  return problems.filter((p): p is string => p !== null);
}

/** A URL with its password hidden, for messages and logs. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    // A Redis Cluster's URL (several host:port) is no WHATWG URL: hide its password by hand.
    return /^[a-z+]+:\/\//.test(url) ? url.replace(/^([a-z+]+:\/\/[^:@/]*:)[^@/]*@/, '$1***@') : '(unparseable URL)';
  }
}
