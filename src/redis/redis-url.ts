// Where Redis is: REDIS_URL names one server or a cluster's seed nodes. Parsed here, without the client,
// so that the configuration (src/config.ts) refuses a malformed one at boot with the reason.
/** Where Redis is, parsed from a REDIS_URL (see parseRedisUrl). */
export type RedisTarget =
  | { kind: 'server'; url: string }
  | { kind: 'cluster'; nodes: Array<{ host: string; port: number }>; username?: string; password?: string; tls: boolean };

const CLUSTER_URL = /^(rediss?)\+cluster:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)\/?$/;
const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/**
 * `redis[s]://...`: one server, as ioredis reads it. `redis[s]+cluster://[user[:password]@]host:port[,host:port...]`:
 * a Redis Cluster, found from those seed nodes (the rest are discovered); the user, password and TLS
 * (`rediss+`) apply to every node. Throws with the reason on anything else.
 */
export function parseRedisUrl(url: string): RedisTarget {
  if (/^rediss?:\/\//.test(url)) return { kind: 'server', url };
  const m = CLUSTER_URL.exec(url);
  if (!m) throw new Error('must be redis://host:port, rediss://..., or redis+cluster://[user:password@]host:port[,host:port...] (rediss+cluster:// for TLS)');
  const nodes = m[4]!.split(',').map((hp) => {
    const n = HOST_PORT.exec(hp.trim());
    if (!n || Number(n[2]) < 1 || Number(n[2]) > 65535) throw new Error(`cluster node "${hp}" must be host:port`);
    return { host: n[1]!.replace(/^\[(.*)\]$/, '$1'), port: Number(n[2]) };
  });
  const decode = (s: string | undefined) => (s ? decodeURIComponent(s) : undefined);
  return { kind: 'cluster', nodes, username: decode(m[2]), password: decode(m[3]), tls: m[1] === 'rediss' };
}
