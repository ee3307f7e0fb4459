// A whole backbone per test file, on the real engines, isolated from every other test: its own
// PostgreSQL database, MongoDB database, Redis key prefix and RabbitMQ exchange/queue prefix. Data of a
// failed run is kept for inspection unless KEEP_TEST_DATA=0; a passing run drops it.
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { Connection } from 'rabbitmq-client';
import { MongoClient } from 'mongodb';
import { pino, type LoggerOptions } from 'pino';
import { logContextMixin } from '../../src/common/log-context.js';
import OpenAI from 'openai';
import { configSchema, type Config, ROLES, type Role } from '../../src/config.js';
import { createBackbone, type Backbone } from '../../src/app.js';
import { addressOf, generatePrivateKey, signMessage } from '../../src/domain/signatures.js';
import { ledgerTotals } from '../../src/postgres/ledger.repository.js';
import { OperatorsService } from '../../src/gate/operators.service.js';
import { operatorsStore } from '../../src/postgres/operators.store.js';
import { startNodeAgent, type NodeAgent } from '../../src/node-agent/agent.js';
import { WebSocket } from 'ws';
import { SimulatedRuntime } from '../../src/node-agent/runtime.simulated.js';
import type { InferenceRuntime } from '../../src/node-agent/runtime.js';
import { PRIORITY_CLASSES } from '../../src/domain/priority.js';
import { InflightRepository } from '../../src/redis/inflight.repository.js';
import { RedisKeys, createRedis, deleteKeysByPrefix, type RedisClient } from '../../src/redis/client.js';
import type { Gpu, Network } from '../../src/domain/eligibility.js';

export const TEST_MODEL = 'test/sim-1';

/** Where the test MongoDB (FerretDB, started by scripts/test.sh) listens; a real MongoDB works too. */
export function testMongoBase(): string {
  const url = process.env.TEST_MONGODB_URL ?? process.env.MONGODB_URL;
  if (!url) {
    throw new Error('TEST_MONGODB_URL is not set: run the suite with `npm test` (it starts FerretDB), or point TEST_MONGODB_URL at a MongoDB server.');
  }
  return url;
}

export function withDatabase(url: string, db: string): string {
  const u = new URL(url.replace(/^mongodb:/, 'http:'));
  u.pathname = `/${db}`;
  return u.toString().replace(/^http:/, 'mongodb:');
}

export interface StackOptions {
  config?: Partial<Record<keyof Config, string | number>>;
  roles?: Role[];
  /** A MongoDB server of the test's own (helpers/private-ferretdb.ts) instead of the suite's. */
  mongoBase?: string;
  /** Where the backbone's log lines go (default: stdout), for tests that read them. */
  logDestination?: { write(line: string): void };
}

export interface Tenant {
  accountId: string;
  namespaceId: string;
  keyId: string;
  apiKey: string;
  client: OpenAI;
}

export class TestStack {
  readonly nodes: NodeAgent[] = [];
  /** A connection for the test's own looks into Redis (job()), opened on first use (a cluster client for a cluster's URL). */
  private inspector: RedisClient | null = null;
  private get redis(): RedisClient {
    return (this.inspector ??= createRedis(this.config.REDIS_URL, 'test-inspector'));
  }

  /** Set by check() when a test failed: close() then keeps this stack's data for inspection. */
  failed = false;
  private operatorId: string | null = null;

  private constructor(
    readonly id: string,
    readonly config: Config,
    readonly backbone: Backbone,
    readonly url: string,
    readonly mongoUrl: string,
  ) {}

  static async start(opts: StackOptions = {}): Promise<TestStack> {
    const id = `rt_test_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
    const env = {
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
      DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${id}`,
      REDIS_KEY_PREFIX: `${id}:`,
      // Snapshots of this stack's history go to a directory of its own.
      SNAPSHOT_DIR: path.join(tmpdir(), id, 'snapshots'),
      RABBITMQ_PREFIX: id,
      ADMIN_TOKEN: randomBytes(24).toString('hex'),
      NETWORK_SIGNING_KEY: generatePrivateKey(),
      // Payloads are sealed at rest as in production (space/payload-keys.service.ts).
      PAYLOAD_MASTER_KEYS: `1:${randomBytes(32).toString('base64')}`,
      JOB_ATTEMPT_TIMEOUT_MS: '5000',
      JOB_DEADLINE_MS: '30000',
      JOB_RETRY_BACKOFF_MS: '20',
      NO_NODE_GRACE_MS: '1500',
      SWEEP_INTERVAL_MS: '500',
      PAYLOAD_SWEEP_INTERVAL_MS: '500',
      // Test files run two at a time beside FerretDB's own pool: stay well inside max_connections.
      PG_POOL_MAX: '8',
      // Tenants here are accounts of one key each, driven harder than any account limit would allow;
      // the tests of the account-wide limit set their own.
      ACCOUNT_RATE_LIMIT_RPS: '1000000',
      ACCOUNT_RATE_LIMIT_BURST: '1000000',
      // Nodes fill what they declare from their first job: the files about other things than slow start
      // size their nodes for what they test (trust.test.ts sets the production default back).
      NODE_START_SLOTS: '1024',
      ...Object.fromEntries(Object.entries(opts.config ?? {}).map(([k, v]) => [k, String(v)])),
    };
    const config = configSchema.parse(env);
    const mongoUrl = withDatabase(opts.mongoBase ?? testMongoBase(), id);
    // The production logger's mixin (common/logger.ts): request and job ids on every line of a request.
    const logOptions: LoggerOptions<never> = { level: config.LOG_LEVEL, mixin: logContextMixin };
    const logger = opts.logDestination ? pino(logOptions, opts.logDestination) : pino(logOptions);
    const backbone = await createBackbone({ config, roles: opts.roles ?? [...ROLES], logger, mongoUrl });
    const url = await backbone.listen();
    return new TestStack(id, config, backbone, url, mongoUrl);
  }

  /**
   * The environment for running `resultity admin ...` against this stack's engines: their URLs and this
   * stack's prefixes and payload master keys, nothing else of the test process's (no admin token, no
   * network key unless given).
   */
  cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      DATABASE_URL: this.config.DATABASE_URL,
      REDIS_URL: this.config.REDIS_URL,
      RABBITMQ_URL: this.config.RABBITMQ_URL,
      REDIS_KEY_PREFIX: this.config.REDIS_KEY_PREFIX,
      RABBITMQ_PREFIX: this.config.RABBITMQ_PREFIX,
      SNAPSHOT_DIR: this.config.SNAPSHOT_DIR,
      LOG_LEVEL: 'warn',
      // The stack's payload master keys, as the environment states them: a process of its own reads and
      // writes the same sealed payloads.
      ...(this.config.PAYLOAD_MASTER_KEYS
        ? { PAYLOAD_MASTER_KEYS: [...this.config.PAYLOAD_MASTER_KEYS].map(([version, key]) => `${version}:${key.toString('base64')}`).join(',') }
        : {}),
      ...extra,
    };
  }

  get db(): pg.Pool {
    return this.backbone.db;
  }

  /** A consumer account, namespace, credits and an API key, with an openai client bound to it. */
  async tenant(credits: number, key: { rateLimitRps?: number; rateLimitBurst?: number; network?: Network } = {}): Promise<Tenant> {
    const admin = this.backbone.admin;
    const account = await admin.accounts.createAccount(`tenant ${randomBytes(3).toString('hex')}`);
    const ns = await admin.accounts.createNamespace(account.id, 'ns', key.network);
    if (credits > 0) await admin.credits.topUp(ns.id, credits);
    const { key: row, secret } = await admin.apiKeys.issueApiKey(ns.id, { rateLimitRps: key.rateLimitRps ?? 1000, rateLimitBurst: key.rateLimitBurst ?? 1000 });
    return {
      accountId: account.id,
      namespaceId: ns.id,
      keyId: row.id,
      apiKey: secret,
      client: new OpenAI({ baseURL: `${this.url}/v1`, apiKey: secret, maxRetries: 0, timeout: 60_000 }),
    };
  }

  /** Registers TEST_MODEL (or another) with prices in micro-credits per token. */
  async model(name = TEST_MODEL, inputPrice = 10, outputPrice = 20): Promise<void> {
    await this.backbone.admin.models.putModel({ name, inputPricePerMtok: inputPrice, outputPricePerMtok: outputPrice, contextTokens: 8192 });
  }

  async operator(): Promise<string> {
    this.operatorId ??= (await this.backbone.admin.accounts.createAccount('operator')).id;
    return this.operatorId;
  }

  /**
   * Enrols a node (its private key's address, or an address) to an operator (default: the stack's), as
   * the operator would: a node registers only with its operator's consent. Returns the key given, so that
   * `privateKey: await stack.enrolled()` reads as what it is.
   */
  async enrolled(privateKeyOrAddress = generatePrivateKey(), operator?: string): Promise<string> {
    const address = privateKeyOrAddress.length === 42 ? privateKeyOrAddress : addressOf(privateKeyOrAddress);
    await new OperatorsService({ store: operatorsStore(this.db) }).enrolNode(operator ?? (await this.operator()), address);
    return privateKeyOrAddress;
  }

  /**
   * Starts a SIMULATED node (see runtime.simulated.ts) connected to this stack's gateway. Eligibility
   * declarations default to the agent's: mainnet, no region, no GPU, every model at version 1.
   */
  async node(
    opts: {
      latencyMs?: number;
      completionTokens?: number;
      capacity?: number;
      models?: string[];
      privateKey?: string;
      network?: Network;
      region?: string;
      gpu?: Gpu;
      modelVersions?: Record<string, string>;
    } = {},
  ): Promise<NodeAgent> {
    const agent = await startNodeAgent({
      gatewayUrl: this.url,
      privateKey: await this.enrolled(opts.privateKey),
      operator: await this.operator(),
      runtime: new SimulatedRuntime({ models: opts.models ?? [TEST_MODEL], latencyMs: opts.latencyMs ?? 0, completionTokens: opts.completionTokens ?? 16 }),
      capacity: opts.capacity ?? 4,
      network: opts.network,
      region: opts.region,
      gpu: opts.gpu,
      modelVersions: opts.modelVersions,
      logger: pino({ level: 'silent' }),
      reconnect: false,
    });
    this.nodes.push(agent);
    return agent;
  }

  /** Starts a node with a runtime of the test's own (a wrapper that misbehaves in one way, say). */
  async runtimeNode(runtime: InferenceRuntime, capacity = 2): Promise<NodeAgent> {
    const agent = await startNodeAgent({
      gatewayUrl: this.url,
      privateKey: await this.enrolled(),
      operator: await this.operator(),
      runtime,
      capacity,
      logger: pino({ level: 'silent' }),
      reconnect: false,
    });
    this.nodes.push(agent);
    return agent;
  }

  /** Starts a node whose runtime fails every job (an error the node reports, signed, as a job_error). */
  async brokenNode(models: string[] = [TEST_MODEL], capacity = 2): Promise<NodeAgent> {
    const agent = await startNodeAgent({
      gatewayUrl: this.url,
      privateKey: await this.enrolled(),
      operator: await this.operator(),
      runtime: { name: 'broken', models: async () => models, complete: async () => Promise.reject(new Error('runtime crashed')) },
      capacity,
      logger: pino({ level: 'silent' }),
      reconnect: false,
    });
    this.nodes.push(agent);
    return agent;
  }

  /** Throws unless the ledger sums to zero and every cached balance equals its entries. */
  async assertLedgerBalanced(): Promise<void> {
    const t = await ledgerTotals(this.db);
    if (t.entriesTotal !== 0 || t.balancesTotal !== 0 || t.mismatchedAccounts !== 0) {
      throw new Error(`ledger does not balance: ${JSON.stringify(t)}`);
    }
  }

  async balance(namespaceId: string): Promise<{ available: number; held: number }> {
    const b = await this.backbone.admin.credits.balance(namespaceId);
    return { available: b.available_micro, held: b.held_micro };
  }

  /**
   * A job as a reader sees it: its row, where a queued job whose attempt is in flight (the attempt lives
   * in Redis until it ends: src/redis/inflight.repository.ts) is 'running' with that attempt and node.
   */
  async job(id: string) {
    const r = await this.db.query<{ status: string; attempt: number; node_id: string | null; hold_micro: number; charged_micro: number | null }>(
      `SELECT status, attempt, node_id, hold_micro, charged_micro FROM jobs WHERE id = $1`,
      [id],
    );
    const row = r.rows[0];
    if (!row || row.status !== 'queued') return row ?? null;
    const inflight = await new InflightRepository(this.redis, new RedisKeys(this.config.REDIS_KEY_PREFIX)).current(id);
    if (!inflight || inflight.done || inflight.attempt <= row.attempt) return row;
    return { ...row, status: 'running', attempt: inflight.attempt, node_id: inflight.nodeId };
  }

  /** Polls until `check` returns a value other than undefined, or fails after `timeoutMs`. */
  async until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await check();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /**
   * A node's presence hash in Redis (instance, capacity, reported, models, seen, network, region, gpu,
   * gpu_mem, pools: see src/redis/readiness.lua.ts) plus `reserved`, the
   * number of jobs holding a slot on it; {} when it has no presence.
   */
  async presence(nodeId: string): Promise<Record<string, string>> {
    const redis = createRedis(this.config.REDIS_URL, 'test-presence');
    try {
      const key = new RedisKeys(this.config.REDIS_KEY_PREFIX).node(nodeId);
      const hash = await redis.hgetall(key);
      return Object.keys(hash).length === 0 ? hash : { ...hash, reserved: String(await redis.zcard(`${key}:slots`)) };
    } finally {
      redis.disconnect();
    }
  }

  /**
   * Opens a bare socket to the io gateway that speaks the node protocol only as the test tells it to (see
   * RawNode); its key is enrolled to `operator` (default: the stack's; null: not enrolled).
   */
  async rawNode(privateKey = generatePrivateKey(), operator?: string | null): Promise<RawNode> {
    if (operator !== null) await this.enrolled(privateKey, operator);
    return RawNode.connect(this.url, privateKey);
  }

  /**
   * Runs a test body, then requires the ledger to balance (DESIGN invariant 3, after every test). A
   * failure marks the stack, so that close() keeps its data for inspection.
   */
  async check(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
      await this.assertLedgerBalanced();
    } catch (err) {
      this.failed = true;
      throw err;
    }
  }

  /** Stops everything; drops this stack's data unless a test failed (see check) and KEEP_TEST_DATA is not 0. */
  async close(opts: { keepData?: boolean } = { keepData: this.failed }): Promise<void> {
    for (const n of this.nodes) n.kill();
    this.inspector?.disconnect();
    const models = (await this.db.query<{ name: string }>(`SELECT name FROM models`)).rows.map((r) => r.name);
    await this.backbone.close();
    if (opts.keepData && process.env.KEEP_TEST_DATA !== '0') {
      process.stderr.write(`test data kept for inspection: postgres db, mongo db, redis prefix and rabbitmq prefix ${this.id}\n`);
      return;
    }
    await dropTestData(this.id, this.mongoUrl, models);
  }
}

export async function dropTestData(id: string, mongoUrl: string, models: string[]): Promise<void> {
  const mongo = new MongoClient(mongoUrl);
  await mongo.connect();
  await mongo.db(id).dropDatabase();
  await mongo.close();

  const redis = new Redis('redis://127.0.0.1:6379');
  await deleteKeysByPrefix(redis, `${id}:`);
  redis.disconnect();

  const rabbit = new Connection({ url: 'amqp://guest:guest@127.0.0.1:5672', retryLow: 100, retryHigh: 200 });
  const ch = await rabbit.acquire();
  for (const q of [...models.flatMap((m) => PRIORITY_CLASSES.map((p) => `${id}.jobs.${m}.${p}`)), `${id}.quarantine`]) await ch.queueDelete({ queue: q }).catch(() => undefined);
  for (const e of [`${id}.jobs`, `${id}.quarantine`]) await ch.exchangeDelete({ exchange: e }).catch(() => undefined);
  await ch.close();
  await rabbit.close();

  const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${id}" WITH (FORCE)`);
  await admin.end();
}

export type RawFrame = { type: string } & Record<string, unknown>;

/** What a raw node declares unless a test says otherwise. */
const RAW_TRAITS = { network: 'mainnet', region: null, gpu: { name: 'none', memoryMb: 0 }, models: [] as unknown[] };

/** `fields` with model names given as plain strings turned into {name, version: '1'}. */
function withModelVersions(fields: Record<string, unknown>): Record<string, unknown> {
  if (!Array.isArray(fields.models)) return fields;
  return { ...fields, models: fields.models.map((m: unknown) => (typeof m === 'string' ? { name: m, version: '1' } : m)) };
}

/**
 * A node WebSocket driven by hand, frame by frame, for protocol tests: it signs what it is told to sign
 * (or not), and keeps every gateway frame, parsed but otherwise untouched, until a test takes it.
 */
export class RawNode {
  readonly nodeId: string;
  /** From the gateway's first frame. */
  challenge = '';
  network = '';
  private readonly inbox: RawFrame[] = [];
  private wake: Array<() => void> = [];
  private closedWith: { code: number; reason: string } | null = null;

  private constructor(
    readonly socket: WebSocket,
    readonly privateKey: string,
  ) {
    this.nodeId = addressOf(privateKey);
    socket.on('message', (data: Buffer) => {
      this.inbox.push(JSON.parse(data.toString('utf8')) as RawFrame);
      this.notify();
    });
    socket.on('close', (code: number, reason: Buffer) => {
      this.closedWith = { code, reason: reason.toString() };
      this.notify();
    });
    socket.on('error', () => undefined); // 'close' follows
  }

  static async connect(baseUrl: string, privateKey: string): Promise<RawNode> {
    const node = new RawNode(new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/io/ws`), privateKey);
    const first = await node.next('challenge');
    node.challenge = String(first.challenge);
    node.network = String(first.network);
    return node;
  }

  get closed(): { code: number; reason: string } | null {
    return this.closedWith;
  }

  /** Sends any JSON value as a text frame. */
  send(frame: unknown): void {
    this.socket.send(JSON.stringify(frame));
  }

  /**
   * A `register` message for this socket's challenge, signed by this node's key; `fields` override before
   * signing. Declares mainnet, no region, no GPU; `models` may be given as plain names (version 1).
   */
  register(operator: string, fields: Record<string, unknown> = {}): RawFrame {
    return signMessage(this.privateKey, {
      type: 'register',
      nodeId: this.nodeId,
      operator,
      challenge: this.challenge,
      ts: Date.now(),
      agentVersion: 'raw-test/1',
      runtime: 'raw',
      ...RAW_TRAITS,
      capacity: 1,
      running: 0,
      ...withModelVersions(fields),
    });
  }

  /** A signed heartbeat with a fresh nonce; `fields` override before signing (`models` as in register). */
  heartbeat(fields: Record<string, unknown> = {}): RawFrame {
    return signMessage(this.privateKey, {
      type: 'heartbeat',
      nodeId: this.nodeId,
      ts: Date.now(),
      nonce: randomBytes(12).toString('hex'),
      ...RAW_TRAITS,
      capacity: 1,
      running: 0,
      ...withModelVersions(fields),
    });
  }

  /** Registers and waits for `registered`; throws with the gateway's error otherwise. */
  async registerAs(operator: string, fields: Record<string, unknown> = {}): Promise<void> {
    this.send(this.register(operator, fields));
    const answer = await this.next((f) => f.type === 'registered' || f.type === 'error');
    if (answer.type !== 'registered') throw new Error(`registration refused: ${JSON.stringify(answer)}`);
  }

  /** Takes the first kept frame of that type (or matching the predicate), waiting up to `timeoutMs` for one. */
  async next(match: string | ((f: RawFrame) => boolean), timeoutMs = 10_000): Promise<RawFrame> {
    const pred = typeof match === 'string' ? (f: RawFrame) => f.type === match : match;
    const end = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex(pred);
      if (i >= 0) return this.inbox.splice(i, 1)[0]!;
      if (this.closedWith) throw new Error(`socket closed (${this.closedWith.code} ${this.closedWith.reason}) before the frame came; kept: ${JSON.stringify(this.inbox)}`);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${timeoutMs} ms; kept: ${JSON.stringify(this.inbox)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Frames received and not taken yet. */
  pending(): RawFrame[] {
    return [...this.inbox];
  }

  /** Waits until the gateway closes the socket; resolves with the close code and reason. */
  async waitClosed(timeoutMs = 10_000): Promise<{ code: number; reason: string }> {
    const end = Date.now() + timeoutMs;
    while (!this.closedWith) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`socket still open after ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.closedWith;
  }

  /** Closes the socket (if open) and waits for it to be closed. */
  async close(): Promise<void> {
    if (this.closedWith) return;
    this.socket.close(1000, 'test done');
    await this.waitClosed(3_000).catch(() => this.socket.terminate());
  }

  private notify(): void {
    for (const w of this.wake.splice(0)) w();
  }
}
