// Configuration: read from the environment once at boot, validated with one schema, every bad key
// reported in a single message. No secret has a default.
import { z } from 'zod';
import { parseRedisUrl } from './redis/redis-url.js';

export const ROLES = ['cloud', 'io', 'scheduler', 'gate', 'status', 'maintenance'] as const;
export type Role = (typeof ROLES)[number];

const int = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);

const privateKeyHex = z
  .string()
  .regex(/^(0x)?[0-9a-fA-F]{64}$/, 'must be a 32-byte secp256k1 private key in hex')
  .transform((s) => (s.startsWith('0x') ? s.slice(2) : s).toLowerCase());

export const configSchema = z.object({
  PORT: int(8080, 0).pipe(z.number().max(65535)),
  HOST: z.string().default('0.0.0.0'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATABASE_URL: z.string().url().default('postgres://postgres@127.0.0.1:5432/resultity'),
  PG_POOL_MAX: int(20, 1),
  // Unset: `serve` starts the repository's embedded FerretDB (see ferretdb/) and uses it.
  MONGODB_URL: z.string().regex(/^mongodb(\+srv)?:\/\//, 'must be a mongodb:// URL').optional(),
  // One server (redis://, rediss://) or a Redis Cluster: redis+cluster://[user:password@]host:port,host:port
  // (rediss+cluster:// for TLS), some of its nodes to discover the rest from (src/redis/redis-url.ts).
  REDIS_URL: z
    .string()
    .superRefine((url, ctx) => {
      try {
        parseRedisUrl(url);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    })
    .default('redis://127.0.0.1:6379'),
  RABBITMQ_URL: z.string().regex(/^amqps?:\/\//, 'must be an amqp:// URL').default('amqp://guest:guest@127.0.0.1:5672'),
  // Prefixes let several networks (or test runs) share one Redis and one RabbitMQ without seeing each other.
  REDIS_KEY_PREFIX: z.string().regex(/^[A-Za-z0-9_.:-]*$/).default('rt:'),
  RABBITMQ_PREFIX: z.string().regex(/^[A-Za-z0-9_.-]+$/).default('rt'),
  // classic: one broker node (the default); quorum: replicated queues for a RabbitMQ cluster (3.10 or later; src/rabbitmq/job-queue.ts).
  RABBITMQ_QUEUE_TYPE: z.enum(['classic', 'quorum']).default('classic'),
  ADMIN_TOKEN: z.string().min(32, 'must be at least 32 characters').optional(),
  NETWORK_SIGNING_KEY: privateKeyHex.optional(),

  // Credits
  OPERATOR_SHARE_BPS: int(8000).pipe(z.number().max(10000)),
  // Group commit of holds and settlements (src/common/group-commit.ts): at most this many per
  // transaction (1 turns it off: one transaction per operation), at most this many such transactions at
  // once per kind (each takes a pool connection), and how long a batch may wait for company (0: never).
  LEDGER_BATCH_MAX_ITEMS: int(64, 1),
  LEDGER_BATCH_IN_FLIGHT: int(2, 1),
  LEDGER_BATCH_LINGER_MS: int(0, 0).pipe(z.number().max(100)),
  // Jobs
  JOB_MAX_ATTEMPTS: int(3, 1),
  JOB_ATTEMPT_TIMEOUT_MS: int(60_000, 100),
  JOB_DEADLINE_MS: int(300_000, 1000),
  JOB_RETRY_BACKOFF_MS: int(200, 0),
  // How long a job waits for any online node serving its model before it fails.
  NO_NODE_GRACE_MS: int(30_000, 0),
  MAX_TOKENS_DEFAULT: int(1024, 1),
  BODY_LIMIT_BYTES: int(1_048_576, 1024),
  // Edges: a request (headers and body) must arrive whole within this time, or it is answered 408 and its
  // connection closed (a body sent a byte at a time holds no connection for long); 0 turns it off.
  HTTP_REQUEST_TIMEOUT_MS: int(30_000, 0),
  // Node sockets (io role): each client address may hold this many on one instance, and a socket may send
  // this many bytes in all before it has registered (a registration is a few KiB; registered nodes may
  // send frames up to 4 MiB).
  IO_CONNECTIONS_PER_ADDRESS: int(64, 1),
  IO_UNREGISTERED_MAX_BYTES: int(131_072, 1024),
  // Network
  HEARTBEAT_TTL_MS: int(30_000, 1000),
  // Slow start: slots a node that has completed nothing may fill (genesis config's; then the config's).
  NODE_START_SLOTS: int(2, 1).pipe(z.number().max(1024)),
  NODE_MESSAGE_MAX_SKEW_MS: int(60_000, 1000),
  // Threads that check node signatures off the event loop for the io role (src/domain/verify-pool.ts);
  // 0: on the event loop (libsecp256k1 in WebAssembly, ~0.3 ms a message).
  SIGNATURE_VERIFY_THREADS: int(1, 0).pipe(z.number().max(64)),
  // Cooldown rule: this many failed attempts in a row (none further apart than 10 minutes) bench a node.
  NODE_COOLDOWN_FAILURES: int(3, 1),
  NODE_COOLDOWN_SECONDS: int(300, 1),
  // Node quality (src/network/quality.service.ts): how often scores and blind-job verdicts are updated,
  // how often a blind job is sent per model with probes (0: never), how many failed blind jobs in a row
  // put a node in cooldown, the window scores are computed over, and the credits kept in the network's
  // blind-job namespace.
  QUALITY_INTERVAL_MS: int(30_000, 100),
  BLIND_JOB_INTERVAL_MS: int(300_000, 0),
  BLIND_COOLDOWN_FAILURES: int(2, 1),
  SCORE_WINDOW_HOURS: int(24, 1),
  BLIND_BUDGET_CREDITS: int(100, 1),
  // Rate limits (per API key, token bucket in Redis; per-key values override these)
  RATE_LIMIT_RPS: int(20, 1),
  RATE_LIMIT_BURST: int(40, 1),
  // Per account, over all its keys (so that minting keys does not multiply the per-key limit), and how
  // many live namespaces and active API keys one account may have.
  ACCOUNT_RATE_LIMIT_RPS: int(200, 1),
  ACCOUNT_RATE_LIMIT_BURST: int(400, 1),
  ACCOUNT_MAX_NAMESPACES: int(50, 1),
  ACCOUNT_MAX_API_KEYS: int(100, 1),
  // Contribution points: epoch length, and the slot in which one heartbeat counts a node as up
  RCP_EPOCH_SECONDS: int(86_400, 1),
  RCP_UPTIME_SLOT_SECONDS: int(60, 1),
  // Account API (gate role): session lifetime; log-in attempts per email and per client IP (token buckets
  // in Redis, refilled per minute); Sign-In with Ethereum.
  SESSION_TTL_HOURS: int(168, 1).pipe(z.number().max(24 * 366)),
  LOGIN_RATE_PER_MINUTE: int(5, 1),
  LOGIN_RATE_BURST: int(10, 1),
  LOGIN_IP_RATE_PER_MINUTE: int(30, 1),
  LOGIN_IP_RATE_BURST: int(60, 1),
  // The host[:port] users sign in from, which a SIWE message must name (as wallets show it); unset, Sign-In
  // with Ethereum is refused: the request's own Host header cannot stand in for it, as a relay sets it.
  SIWE_DOMAIN: z
    .string()
    .regex(/^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?$/, 'must be a host with an optional port, such as app.example.com')
    .optional(),
  SIWE_NONCE_TTL_SECONDS: int(300, 10),
  // Payloads
  PAYLOAD_RETENTION_HOURS: int(72, 1),
  // Space (retention plans, migrations/0024): the longest extended plan, in days, and its price per GiB-day
  // of payload stored, in micro-credits (metered daily by the maintenance role, charged through the ledger).
  SPACE_MAX_RETENTION_DAYS: int(365, 1),
  SPACE_PRICE_MICRO_PER_GIB_DAY: int(50_000, 0),
  // The zero plan writes nothing to MongoDB: an asynchronous job's output is held in Redis (with this TTL)
  // until its first read, for a client that polls GET /v1/jobs/{id} instead of waiting on the request.
  SPACE_ZERO_HOLD_SECONDS: int(300, 1).pipe(z.number().max(86_400)),
  // Payload encryption at rest (space/payload-keys.service.ts): master keys as `<version>:<32 bytes in
  // base64>`, comma-separated; the highest version wraps new namespace keys, the others only unwrap until
  // `resultity space rewrap-keys` has moved every namespace key to the highest. No default: required by
  // the roles that write or read payloads (cloud, io, maintenance).
  PAYLOAD_MASTER_KEYS: z
    .string()
    .transform((s, ctx) => {
      const keys = new Map<number, Buffer>();
      for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
        const m = /^(\d{1,6}):([A-Za-z0-9+/_-]+={0,2})$/.exec(part);
        const key = m ? Buffer.from(m[2]!, 'base64') : null;
        if (!m || !key || key.length !== 32 || Number(m[1]) < 1 || keys.has(Number(m[1]))) {
          ctx.addIssue({ code: 'custom', message: 'must be <version>:<32 bytes in base64>[,...] with distinct versions >= 1' });
          return z.NEVER;
        }
        keys.set(Number(m[1]), key);
      }
      if (keys.size === 0) {
        ctx.addIssue({ code: 'custom', message: 'names no key' });
        return z.NEVER;
      }
      return keys;
    })
    .optional(),
  // Job logs and node stats in MongoDB (issue 10 part 3): a job's log is kept at least this long (longer
  // when its namespace's plan keeps payloads longer), node stats this many days, one window per node of
  // NODE_STATS_WINDOW_MS; an operator's or the admin's stats read spans at most NODE_STATS_MAX_RANGE_DAYS.
  JOB_LOG_RETENTION_HOURS: int(720, 1),
  NODE_STATS_RETENTION_DAYS: int(30, 1),
  NODE_STATS_WINDOW_MS: int(60_000, 100),
  NODE_STATS_MAX_RANGE_DAYS: int(7, 1),
  // Their write-behind buffers (common/buffered-writer.ts): written every LOG_WRITE_FLUSH_MS or as soon as
  // LOG_WRITE_BATCH_MAX records wait; past LOG_WRITE_BUFFER_MAX waiting (MongoDB slow or down) records are
  // dropped and counted (resultity_log_records_dropped_total) rather than blocking or growing.
  LOG_WRITE_FLUSH_MS: int(1_000, 1).pipe(z.number().max(60_000)),
  LOG_WRITE_BATCH_MAX: int(500, 1),
  LOG_WRITE_BUFFER_MAX: int(20_000, 1),
  // Maintenance
  SWEEP_INTERVAL_MS: int(5_000, 100),
  // Expired payloads are dropped this often (reads never return them before: they filter on expireAt). A
  // sweep lists the collections and drops the expired days' whole (mongo/payload-buckets.ts): cheap, but
  // a day's bucket expires only once a day, so there is no point in sweeping every tick.
  PAYLOAD_SWEEP_INTERVAL_MS: int(600_000, 100),
  OUTBOX_REPUBLISH_AFTER_MS: int(10_000, 100),
  // Job history: raw job rows are kept this many days (then only their daily rollups), partitions are
  // made this many days ahead, and the history tasks (partitions, rollups, drops, ledger chain) run this often.
  JOBS_LIVE_WINDOW_DAYS: int(30, 1),
  JOB_PARTITIONS_AHEAD_DAYS: int(7, 1),
  HISTORY_INTERVAL_MS: int(300_000, 1_000),
  // Snapshots (src/snapshots/): where they are stored: a local directory (default) or IPFS through a Kubo
  // node's RPC API. A day's raw partitions are dropped only once its snapshot there is read back and verified.
  SNAPSHOT_STORE: z.enum(['local', 'kubo']).default('local'),
  SNAPSHOT_DIR: z.string().min(1).default('.data/snapshots'),
  KUBO_API_URL: z.string().url().default('http://127.0.0.1:5001'),
  // Webhooks (src/webhooks/): a target resolving to a private, loopback or link-local address is refused
  // unless this is `true` (the operator's choice, for receivers on its own network; the tests need it).
  WEBHOOK_ALLOW_PRIVATE_TARGETS: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
  // The waits before each retry of a delivery, in ms, comma-separated: the default spans about a day
  // (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); the message then fails and its endpoint is disabled.
  WEBHOOK_RETRY_SCHEDULE_MS: z
    .string()
    .regex(/^\d+(,\d+)*$/, 'must be milliseconds, comma-separated')
    .default('5000,300000,1800000,7200000,18000000,36000000,36000000')
    .transform((v) => v.split(',').map(Number)),
  WEBHOOK_TIMEOUT_MS: int(10_000, 100),
});

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface ConfigNeeds {
  /** The gate role serves the admin API: ADMIN_TOKEN is required. */
  adminToken?: boolean;
  /** Roles that sign jobs, greet nodes, publish network configs or sign snapshots need the network key. */
  networkKey?: boolean;
  /** Roles that write or read payloads encrypt them: PAYLOAD_MASTER_KEYS is required. */
  masterKey?: boolean;
}

/** Parses the environment; throws one ConfigError naming every bad or missing key. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, needs: ConfigNeeds = {}): Config {
  const raw = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = configSchema.safeParse(raw);
  const problems: string[] = parsed.success
    ? []
    : parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  if (parsed.success && parsed.data.LOG_WRITE_BUFFER_MAX < parsed.data.LOG_WRITE_BATCH_MAX) problems.push('LOG_WRITE_BUFFER_MAX: must be at least LOG_WRITE_BATCH_MAX');
  if (needs.adminToken && !raw.ADMIN_TOKEN) problems.push('ADMIN_TOKEN: required by the gate role (admin API); at least 32 characters; no default');
  if (needs.networkKey && !raw.NETWORK_SIGNING_KEY) {
    problems.push('NETWORK_SIGNING_KEY: required (32-byte hex secp256k1 key; `resultity node keygen` makes one); no default');
  }
  if (needs.masterKey && !raw.PAYLOAD_MASTER_KEYS) {
    problems.push('PAYLOAD_MASTER_KEYS: required by the cloud, io and maintenance roles (payloads are encrypted at rest): `1:` and 32 random bytes in base64 (`openssl rand -base64 32`); no default');
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  return parsed.data;
}

/** The per-account quotas the admin services enforce (gate/accounts-admin.service.ts, gate/api-keys-admin.service.ts). */
export function accountQuotasOf(config: Pick<Config, 'ACCOUNT_MAX_NAMESPACES' | 'ACCOUNT_MAX_API_KEYS'>): { namespaces: number; apiKeys: number } {
  return { namespaces: config.ACCOUNT_MAX_NAMESPACES, apiKeys: config.ACCOUNT_MAX_API_KEYS };
}

export function needsFor(roles: readonly Role[]): ConfigNeeds {
  return { adminToken: roles.includes('gate'), networkKey: roles.some((r) => r === 'io' || r === 'scheduler' || r === 'gate' || r === 'maintenance'), masterKey: roles.some((r) => r === 'cloud' || r === 'io' || r === 'maintenance') };
}

export function parseRoles(csv: string): Role[] {
  const roles = csv.split(',').map((r) => r.trim()).filter(Boolean);
  const unknown = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (unknown.length > 0 || roles.length === 0) throw new ConfigError([`--roles: unknown role(s) ${unknown.join(', ') || '(none)'}; known: ${ROLES.join(', ')}`]);
  return roles as Role[];
}
