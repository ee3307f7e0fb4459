// What every `resultity admin ...` command shares: connecting to the engines (and building the admin
// services, the same wiring as the server's: src/admin-services.ts), printing a result as text or as
// --json, the actor the admin change log names, and the option parsers.
import { userInfo } from 'node:os';
import { pino } from 'pino';
import { loadConfig, type Config } from '../../config.js';
import { buildAdminServices, type AdminServices } from '../../admin-services.js';
import { createPool, type Db } from '../../postgres/db.js';
import { migrate } from '../../postgres/migrate.js';
import { createRedis, RedisKeys } from '../../redis/client.js';
import { connectRabbit, waitForRabbit } from '../../rabbitmq/client.js';
import { JobQueue } from '../../rabbitmq/job-queue.js';
import { NETWORKS, type Network } from '../../domain/eligibility.js';

export type Json = { json?: boolean };

/** How the admin change log names changes made from this command line: the local user. */
export const ACTOR = `cli:${safeUserName()}`;

function safeUserName(): string {
  try {
    return userInfo().username || 'unknown';
  } catch {
    return 'unknown'; // no passwd entry (some containers)
  }
}

/** The result as one line of JSON with --json, else as `text`. */
export function out(opts: Json, value: unknown, text: string): void {
  process.stdout.write(opts.json ? `${JSON.stringify(value)}\n` : `${text}\n`);
}

function cliLogger(config: Config) {
  return pino({ level: config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL });
}

/** Migrates and connects PostgreSQL alone, runs `fn`, disconnects: for commands that need nothing else. */
export async function withDatabase<T>(fn: (db: Db, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig(process.env);
  await migrate(config.DATABASE_URL, cliLogger(config));
  const db = createPool(config.DATABASE_URL, 2);
  try {
    return await fn(db, config);
  } finally {
    await db.end();
  }
}

/** Connects the engines, builds the admin services (the same wiring as the server's: admin-services.ts), runs `fn`, disconnects. */
export async function withAdmin<T>(fn: (services: AdminServices) => Promise<T>): Promise<T> {
  const config = loadConfig(process.env);
  const logger = cliLogger(config);
  await migrate(config.DATABASE_URL, logger);
  const db = createPool(config.DATABASE_URL, 2);
  const redis = createRedis(config.REDIS_URL, 'admin-cli');
  const rabbit = connectRabbit(config.RABBITMQ_URL, logger);
  try {
    await waitForRabbit(rabbit, 10_000);
    const queue = new JobQueue(rabbit, config.RABBITMQ_PREFIX, config.RABBITMQ_QUEUE_TYPE);
    const result = await fn(buildAdminServices({ config, logger, db, redis, keys: new RedisKeys(config.REDIS_KEY_PREFIX), queue }));
    await queue.close();
    return result;
  } finally {
    await rabbit.close();
    redis.disconnect();
    await db.end();
  }
}

export function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`not a whole number: ${v}`);
  return n;
}

export function network(v: string): Network {
  if (!(NETWORKS as readonly string[]).includes(v)) throw new Error(`expected ${NETWORKS.join(' or ')}, got ${v}`);
  return v as Network;
}

export function boolean(v: string): boolean {
  if (v !== 'true' && v !== 'false') throw new Error(`expected true or false, got ${v}`);
  return v === 'true';
}

export function list(v: string): string[] {
  return v.split(',').map((x) => x.trim()).filter(Boolean);
}
