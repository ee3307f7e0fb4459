// The NAIVE FLOOR: the mandatory steps of one job on the same engines, one operation at a time, with
// plain clients and TCP_NODELAY on every socket, and none of the backbone's work in between (no HTTP, no
// auth, no scheduling, no node, no signatures, no MongoDB). Per job, in order:
//   1. a PostgreSQL transaction: INSERT the job row, UPDATE the client's balance row to hold the credits
//      (with a check that it covers them), COMMIT;
//   2. a RabbitMQ publish with publisher confirm (persistent message, durable queue);
//   3. the consumer's delivery (prefetch = concurrency);
//   4. a PostgreSQL transaction that settles: UPDATE the job, UPDATE the balance (capture, release), COMMIT;
//   5. three Redis commands, one at a time (the job's live state set, the node's slot returned, the state
//      deleted);
//   6. the ack, and the waiting client is woken in process.
// Each client has its own balance row, as each backbone client has its own namespace. Everything lives
// in a database, a queue and a key prefix of its own, dropped afterwards.
import { deleteKeysByPrefix } from '../src/redis/client.js';
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';
import { Connection, ConsumerStatus } from 'rabbitmq-client';
import { closedLoop, type LoadOptions, type LoadResult } from './load.js';

export interface FloorOptions {
  /** The PostgreSQL server (a database of the floor's own is created on it). */
  postgresUrl: string;
  redisUrl: string;
  rabbitUrl: string;
}

const HOLD = 1_000;
const CHARGE = 600;

/** The floor's database name for a run id (the CPU breakdown names its PostgreSQL backends by it). */
export const floorDatabase = (id: string) => `rt_floor_${id}`;

export async function runFloor(opts: FloorOptions, id: string, load: LoadOptions): Promise<LoadResult> {
  const dbName = floorDatabase(id);
  const admin = new pg.Client({ connectionString: withDb(opts.postgresUrl, 'postgres') });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${dbName}"`);
  // pg sets TCP_NODELAY on its sockets itself (lib/connection.js).
  const pool = new pg.Pool({ connectionString: withDb(opts.postgresUrl, dbName), max: Math.min(load.concurrency, 20), application_name: 'resultity-bench-floor' });
  pool.on('error', () => undefined);
  const redis = new Redis(opts.redisUrl, { noDelay: true, connectionName: 'resultity-bench-floor' });
  const rabbit = new Connection({ url: opts.rabbitUrl, noDelay: true, connectionName: 'resultity-bench-floor' });
  const queue = `rt_floor_${id}`;
  const prefix = `rt_floor_${id}:`;
  const waiting = new Map<string, { resolve: () => void; reject: (err: Error) => void }>();
  try {
    await pool.query(`CREATE TABLE balances (id int PRIMARY KEY, available bigint NOT NULL CHECK (available >= 0), held bigint NOT NULL CHECK (held >= 0))`);
    await pool.query(`CREATE TABLE jobs (id uuid PRIMARY KEY, client int NOT NULL, status text NOT NULL, hold bigint NOT NULL, charged bigint, created_at timestamptz NOT NULL DEFAULT now(), finished_at timestamptz)`);
    await pool.query(`INSERT INTO balances SELECT g, 1000000000000, 0 FROM generate_series(0, $1::int - 1) g`, [load.concurrency]);
    const publisher = rabbit.createPublisher({ confirm: true, queues: [{ queue, durable: true }] });
    const consumer = rabbit.createConsumer(
      { queue, queueOptions: { queue, durable: true }, qos: { prefetchCount: load.concurrency }, concurrency: load.concurrency },
      async (msg) => {
        const { jobId, client } = msg.body as { jobId: string; client: number };
        const w = waiting.get(jobId);
        try {
          await transaction(pool, async (c) => {
            await c.query(`UPDATE jobs SET status = 'completed', charged = $2, finished_at = now() WHERE id = $1 AND status = 'queued'`, [jobId, CHARGE]);
            await c.query(`UPDATE balances SET held = held - $2, available = available + ($2 - $3) WHERE id = $1`, [client, HOLD, CHARGE]);
          });
          await redis.set(`${prefix}job:${jobId}`, 'completed', 'EX', 60);
          await redis.incr(`${prefix}slots:${client}`);
          await redis.del(`${prefix}job:${jobId}`);
          waiting.delete(jobId);
          w?.resolve();
        } catch (err) {
          waiting.delete(jobId);
          w?.reject(err instanceof Error ? err : new Error(String(err)));
        }
        return ConsumerStatus.ACK;
      },
    );
    await new Promise<void>((resolve) => consumer.once('ready', () => resolve()));
    try {
      return await closedLoop(load, async (_i, client, signal) => {
        const jobId = randomUUID();
        const done = new Promise<void>((resolve, reject) => {
          const onAbort = () => {
            waiting.delete(jobId);
            reject(new Error('no settlement before the drain time ended'));
          };
          signal.addEventListener('abort', onAbort, { once: true });
          waiting.set(jobId, {
            resolve: () => {
              signal.removeEventListener('abort', onAbort);
              resolve();
            },
            reject: (err) => {
              signal.removeEventListener('abort', onAbort);
              reject(err);
            },
          });
        });
        try {
          await transaction(pool, async (c) => {
            await c.query(`INSERT INTO jobs (id, client, status, hold) VALUES ($1, $2, 'queued', $3)`, [jobId, client, HOLD]);
            const held = await c.query(`UPDATE balances SET available = available - $2, held = held + $2 WHERE id = $1 AND available >= $2`, [client, HOLD]);
            if (held.rowCount !== 1) throw new Error('insufficient credits');
          });
          await publisher.send({ routingKey: queue, durable: true }, { jobId, client });
        } catch (err) {
          waiting.delete(jobId);
          throw err;
        }
        await done;
      });
    } finally {
      await consumer.close();
      await publisher.close();
    }
  } finally {
    const ch = await rabbit.acquire().catch(() => null);
    await ch?.queueDelete({ queue }).catch(() => undefined);
    await ch?.close().catch(() => undefined);
    await rabbit.close();
    await deleteKeysByPrefix(redis, prefix);
    redis.disconnect();
    await pool.end();
    await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  }
}

async function transaction(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<void>): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await fn(c);
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}

function withDb(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

/** A short random id for the floor's database, queue and key prefix. */
export function floorRunId(): string {
  return `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}
