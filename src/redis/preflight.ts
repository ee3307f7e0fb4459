// The pre-flight check of `resultity serve` and the test command (cli/engines.ts): one connection, one
// PING, no retries. For a cluster, every seed node named in the URL must answer, say the cluster is up,
// and run Redis 7 or later (sharded pub/sub, pubsub.ts).
import { Redis, type RedisOptions } from 'ioredis';
import { parseRedisUrl } from './redis-url.js';

/** Resolves when Redis at `url` answers PING (each seed node of a cluster); rejects with the reason otherwise. */
export async function reachRedis(url: string, timeoutMs: number): Promise<void> {
  const target = parseRedisUrl(url);
  const once: RedisOptions = { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: timeoutMs };
  if (target.kind === 'server') return void (await withConnection(new Redis(target.url, once), (r) => r.ping()));
  const auth = { username: target.username, password: target.password, ...(target.tls ? { tls: {} } : {}) };
  await Promise.all(
    target.nodes.map(({ host, port }) =>
      withConnection(new Redis({ ...once, ...auth, host, port }), async (r) => {
        const where = `cluster node ${host}:${port}`;
        const info = await r.info('server').catch((err: Error) => Promise.reject(new Error(`${where}: ${err.message}`)));
        const major = Number(/redis_version:(\d+)/.exec(info)?.[1] ?? 0);
        if (major < 7) throw new Error(`${where} runs Redis ${/redis_version:(\S+)/.exec(info)?.[1] ?? '?'}; a cluster needs Redis 7 or later (sharded pub/sub)`);
        const state = /cluster_state:(\w+)/.exec(String(await r.cluster('INFO')))?.[1];
        if (state !== 'ok') throw new Error(`${where} reports cluster_state:${state ?? '?'}`);
      }),
    ),
  );
}

async function withConnection<T>(redis: Redis, use: (r: Redis) => Promise<T>): Promise<T> {
  redis.on('error', () => undefined); // the failed connect() reports it
  try {
    await redis.connect();
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}
