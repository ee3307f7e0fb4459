// What the benchmark ran on: hardware, Node, and each engine's version and durability settings, asked
// of the running servers themselves.
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import type pg from 'pg';
import type { Db as MongoDb } from 'mongodb';
import { Redis } from 'ioredis';

export interface Machine {
  cpu: string;
  cores: number;
  ramGiB: number;
  kernel: string;
  node: string;
  postgres: string;
  postgresSettings: string;
  redis: string;
  rabbitmq: string;
  mongo: string;
}

export type Host = Pick<Machine, 'cpu' | 'cores' | 'ramGiB' | 'kernel' | 'node'>;

/** The hardware, kernel and Node.js this process runs on. */
export function describeHost(): Host {
  const cpuinfo = safe(() => readFileSync('/proc/cpuinfo', 'utf8'), '');
  const cpu = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  return {
    cpu,
    cores: os.availableParallelism(),
    ramGiB: os.totalmem() / 2 ** 30,
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
  };
}

export async function describeMachine(db: pg.Pool, mongo: MongoDb, redisUrl: string, amqp: { host: string; port: number }): Promise<Machine> {
  return {
    ...describeHost(),
    postgres: await postgresVersion(db),
    postgresSettings: await postgresSettings(db),
    redis: await redisVersion(redisUrl),
    rabbitmq: await rabbitVersion(amqp.host, amqp.port).catch((err: unknown) => `unknown (${String(err)})`),
    mongo: await mongoVersion(mongo),
  };
}

export async function postgresVersion(db: pg.Pool): Promise<string> {
  const r = await db.query<{ v: string }>(`SELECT current_setting('server_version') AS v`);
  return `PostgreSQL ${r.rows[0]?.v ?? 'unknown'}`;
}

export async function postgresSettings(db: pg.Pool): Promise<string> {
  const names = ['fsync', 'synchronous_commit', 'wal_sync_method', 'shared_buffers', 'max_connections'];
  const r = await db.query<{ name: string; setting: string; unit: string | null }>(`SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1)`, [names]);
  const byName = new Map(r.rows.map((row) => [row.name, row]));
  return names
    .map((n) => {
      const row = byName.get(n);
      if (!row) return `${n}=?`;
      if (n === 'shared_buffers' && row.unit === '8kB') return `${n}=${Math.round((Number(row.setting) * 8) / 1024)}MB`;
      return `${n}=${row.setting}${row.unit ?? ''}`;
    })
    .join(', ');
}

export async function redisVersion(url: string): Promise<string> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const server = await redis.info('server');
    const persistence = await redis.info('persistence');
    const field = (text: string, name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(text)?.[1]?.trim() ?? '?';
    const save = (await redis.config('GET', 'save')) as string[];
    return `Redis ${field(server, 'redis_version')} (appendonly ${field(persistence, 'aof_enabled') === '1' ? 'on' : 'off'}, save "${save[1] ?? ''}")`;
  } finally {
    redis.disconnect();
  }
}

/** The broker's own version, from the server-properties table of AMQP's connection.start (no login needed). */
function rabbitVersion(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new Error('no answer')), 3000);
    const finish = (result: string | Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    socket.on('connect', () => socket.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1])));
    socket.on('error', (err) => finish(err));
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 7) return;
      const size = buf.readUInt32BE(3);
      if (buf.length < 7 + size) return;
      const frame = buf.subarray(7, 7 + size);
      const product = longString(frame, 'product') ?? 'AMQP broker';
      const version = longString(frame, 'version') ?? 'unknown';
      finish(`${product} ${version}`);
    });
  });
}

/** A long-string field of an AMQP field table, found by its short-string name. */
function longString(frame: Buffer, name: string): string | null {
  const needle = Buffer.concat([Buffer.from([name.length]), Buffer.from(name, 'latin1'), Buffer.from('S', 'latin1')]);
  const at = frame.indexOf(needle);
  if (at < 0 || at + needle.length + 4 > frame.length) return null;
  const len = frame.readUInt32BE(at + needle.length);
  const start = at + needle.length + 4;
  return frame.subarray(start, start + len).toString('utf8');
}

async function mongoVersion(mongo: MongoDb): Promise<string> {
  const info = (await mongo.admin().command({ buildInfo: 1 })) as { version?: string; ferretdbVersion?: string };
  // buildInfo does not name FerretDB's backend: scripts/bench.sh says which one it started.
  const backend = process.env.BENCH_FERRETDB_BACKEND ? `, ${process.env.BENCH_FERRETDB_BACKEND}` : '';
  if (info.ferretdbVersion) {
    // An embedded build (ferretdb/) reports "unknown": the module version is in ferretdb/go.mod.
    const version = /^v?\d/.test(info.ferretdbVersion) ? info.ferretdbVersion : (process.env.BENCH_FERRETDB_VERSION ?? info.ferretdbVersion);
    return `FerretDB ${version} (MongoDB wire-compatible ${info.version ?? '?'}${backend})`;
  }
  return `MongoDB ${info.version ?? 'unknown'}`;
}

function safe<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    return fallback;
  }
}
