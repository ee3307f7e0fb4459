// Composition root: connects the engines, builds the services, and mounts the routes of the selected
// roles on one Fastify instance. Every role is stateless; what N instances share goes through the engines.
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import websocket from '@fastify/websocket';
import type { Logger } from 'pino';
import type { Config, Role } from './config.js';
import { addressOf } from './domain/signatures.js';
import { createPool, isPostgresUnreachable, pingDatabase, type Db } from './postgres/db.js';
import { maintenanceStore } from './postgres/maintenance.store.js';
import { historyStore } from './postgres/history.store.js';
import { buildAdminServices, type AdminServices } from './admin-services.js';
import { accountStore } from './postgres/account.store.js';
import type { Network } from './domain/eligibility.js';
import { StatusRepository } from './redis/status.repository.js';
import { QueueDepth } from './rabbitmq/queue-depth.js';
import { migrate } from './postgres/migrate.js';
import { connectMongo, type Mongo } from './mongo/client.js';
import { PayloadsRepository } from './mongo/payloads.repository.js';
import { RetentionService } from './space/retention.service.js';
import { PayloadKeys } from './space/payload-keys.service.js';
import { SpaceJobs } from './space/space-jobs.service.js';
import { ZeroHolds } from './redis/zero-holds.repository.js';
import { jobLogsStore } from './postgres/job-logs.store.js';
import { payloadKeysStore } from './postgres/payload-keys.store.js';
import { retentionStore } from './postgres/retention.store.js';
import { spaceJobsStore } from './postgres/space-jobs.store.js';
import { retentionRoutes } from './space/retention.http.js';
import { JobLogsRepository } from './mongo/job-logs.repository.js';
import { NodeStatsRepository } from './mongo/node-stats.repository.js';
import { JobLogsService } from './space/job-logs.service.js';
import { nodeStatsRoutes } from './space/job-logs.http.js';
import { createRedis, RedisKeys } from './redis/client.js';
import { PresenceRepository } from './redis/presence.repository.js';
import { InflightRepository } from './redis/inflight.repository.js';
import { CatalogChanges } from './postgres/catalog-changes.js';
import { Catalog, retentionHoursFor } from './catalog/catalog.service.js';
import { catalogStore } from './postgres/catalog.store.js';
import { inferenceStore } from './postgres/inference.store.js';
import { authStore } from './postgres/auth.store.js';
import { streamRelayStore } from './postgres/stream-relay.store.js';
import { UsageRules } from './catalog/usage-rules.js';
import { PublishMarks } from './jobs/publish-marks.js';
import { RateLimitRepository } from './redis/rate-limit.repository.js';
import { ReplayGuard } from './redis/replay-guard.repository.js';
import { UptimeRepository } from './redis/uptime.repository.js';
import { rcpClockFrom } from './domain/rcp.js';
import { JobEvents } from './redis/job-events.js';
import { JobStreams, StreamWakeups } from './redis/job-streams.js';
import { connectRabbit, waitForRabbit } from './rabbitmq/client.js';
import { JobQueue } from './rabbitmq/job-queue.js';
import { SettlementService } from './jobs/settlement.service.js';
import { settlementStore } from './postgres/settlement.store.js';
import { jobsStore } from './postgres/jobs.store.js';
import { JobLifecycle } from './jobs/lifecycle.service.js';
import { AuthService } from './cloud/auth.service.js';
import { InferenceService } from './cloud/inference.service.js';
import { cloudRoutes } from './cloud/routes.js';
import { StreamRelay } from './cloud/stream-relay.service.js';
import { httpClientErrorHandler, httpErrorHandler, sendAppError } from './http/errors.http.js';
import { AppError } from './errors.js';
import { Gateway, MAX_MESSAGE_BYTES } from './io/gateway.js';
import { ResultsService } from './io/results.service.js';
import { Scheduler } from './scheduler/scheduler.service.js';
import { adminRoutes } from './gate/admin.routes.js';
import { AccountService } from './gate/account.service.js';
import { accountRoutes } from './gate/account.routes.js';
import { SiweNonces } from './redis/siwe-nonces.repository.js';
import { QuarantineService } from './gate/quarantine.service.js';
import { Maintenance } from './maintenance/maintenance.service.js';
import { QualityService } from './network/quality.service.js';
import { qualityStore } from './postgres/quality.store.js';
import { networkConfigStore } from './postgres/network-config.store.js';
import { quarantineStore } from './postgres/quarantine.store.js';
import { operatorConsoleStore } from './postgres/operator-console.store.js';
import { namespaceConsoleStore } from './postgres/namespace-console.store.js';
import { webhookDeliveryStore, webhooksStore } from './postgres/webhooks.store.js';
import { statusStore } from './postgres/status.store.js';
import { ScoresMirror } from './redis/scores.mirror.js';
import { UsageSamples } from './redis/usage-samples.repository.js';
import { HistoryMaintenance } from './maintenance/history.service.js';
import { SnapshotService } from './snapshots/snapshot.service.js';
import { storeFromConfig } from './snapshots/snapshot-store.js';
import { StatusService } from './status/status.service.js';
import { foreignSignedConfig, NetworkConfigService } from './network/network-config.service.js';
import { SYSTEM_ACTOR } from './postgres/admin-changes.repository.js';
import { NodeConfigDigests } from './redis/node-config-digests.repository.js';
import { statusRoutes } from './status/status.routes.js';
import { openVerifyPool, type VerifyPoolHandle } from './domain/verify-pool.js';
import { metricsRoutes } from './metrics/metrics.http.js';
import { exportFleetMetrics } from './metrics/fleet.js';
import { NamespaceConsoleService } from './gate/namespace-console.service.js';
import { OperatorConsoleService } from './gate/operator-console.service.js';
import { NodePresenceView } from './redis/node-presence.view.js';
import { webRoutes } from './web/web.routes.js';
import { redactUrl } from './domain/redact.js';
import { registerOpenApi, type RouteEntry } from './openapi/openapi.plugin.js';
import { WebhooksService } from './webhooks/webhooks.service.js';
import { WebhookDelivery } from './webhooks/webhook-delivery.service.js';
import { isRedisUnreachable, logRedisState, redisReady } from './redis/redis-health.js';
import { probeEngines } from './common/readiness.js';
import { withRequestContext } from './common/log-context.js';

/** How long /readyz waits for each engine before reading it as down. */
const READINESS_PROBE_TIMEOUT_MS = 2_000;

export interface Backbone {
  app: FastifyInstance;
  instanceId: string;
  /** The admin services (admin-services.ts): accounts, API keys, credits, models, node flags... */
  admin: AdminServices;
  /** The cloud role's job acceptance and waits (tests drive it directly). */
  jobs: InferenceService;
  quality: QualityService;
  networkConfig: NetworkConfigService;
  /** Space's retention plans and their daily metering (tests drive the metering directly). */
  retention: RetentionService;
  /** Space's pins and job deletion (crypto-shredding). */
  spaceJobs: SpaceJobs;
  /** The payload keys (null without PAYLOAD_MASTER_KEYS): rotation, shredding. */
  payloadKeys: PayloadKeys | null;
  /** Job logs and node stats, written behind (tests flush them and read their write counters). */
  jobLogs: JobLogsRepository;
  nodeStats: NodeStatsRepository;
  db: Db;
  mongo: Mongo;
  /** Every route the server has (collected as they were added), for the OpenAPI document's test. */
  routes: readonly RouteEntry[];
  /** Starts listening; resolves with the base URL. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

export interface BackboneOptions {
  config: Config;
  roles: readonly Role[];
  logger: Logger;
  /** The MongoDB URL to use (config.MONGODB_URL, or the embedded FerretDB that `serve` started). */
  mongoUrl: string;
  /** Run migrations at start (default true). */
  migrate?: boolean;
  /** The built web app served under /app (default: web/dist of this checkout). */
  webRoot?: string;
  /**
   * When the network config in force was signed by another key than NETWORK_SIGNING_KEY: publish the next
   * version under this key (the demo, whose key is made per run) instead of refusing to start (default).
   */
  republishForeignConfig?: boolean;
}

export async function createBackbone(opts: BackboneOptions): Promise<Backbone> {
  const { config, roles, logger } = opts;
  const has = (r: Role) => roles.includes(r);
  const networkKey = config.NETWORK_SIGNING_KEY;
  if (!networkKey && (has('io') || has('scheduler') || has('gate'))) throw new Error('NETWORK_SIGNING_KEY is required by the io, scheduler and gate roles');
  const instanceId = randomUUID();

  if (opts.migrate !== false) await migrate(config.DATABASE_URL, logger);
  const db = createPool(config.DATABASE_URL, config.PG_POOL_MAX);
  // Checked before anything else opens: a backbone whose key did not sign the config in force would
  // serve nodes a config they refuse.
  const foreignConfig = networkKey ? await foreignSignedConfig(networkConfigStore(db), networkKey) : null;
  if (foreignConfig && !opts.republishForeignConfig) {
    await db.end();
    throw new Error(
      `the network config in force (version ${foreignConfig.version}) is signed by ${foreignConfig.signer ?? 'an unreadable signature'}, ` +
        `not by NETWORK_SIGNING_KEY (${addressOf(networkKey!)}): nodes pinned to either address would refuse what this backbone serves. ` +
        `Start with the key that signed it, or, to move the network to this key, publish a version signed by it ` +
        `(NETWORK_SIGNING_KEY=<new key> resultity admin config-publish) and re-pin the nodes.`,
    );
  }
  const mongo = await connectMongo(opts.mongoUrl);
  // Payloads are sealed per namespace (space/payload-keys.service.ts). `serve` refuses to start the roles
  // that write or read them without PAYLOAD_MASTER_KEYS (config.ts); a backbone built without one (a
  // bench, a test that does not care) stores them in clear, and says so.
  const payloadKeys = config.PAYLOAD_MASTER_KEYS ? new PayloadKeys({ store: payloadKeysStore(db), masterKeys: config.PAYLOAD_MASTER_KEYS, logger }) : null;
  if (!payloadKeys) logger.warn('PAYLOAD_MASTER_KEYS unset: payloads are stored in MongoDB unencrypted and cannot be crypto-shredded');
  const payloads = new PayloadsRepository(mongo.db, payloadKeys);
  await payloads.ensureIndexes(logger);
  const retention = new RetentionService({
    store: retentionStore(db),
    payloads,
    standardHours: config.PAYLOAD_RETENTION_HOURS,
    maxDays: config.SPACE_MAX_RETENTION_DAYS,
    priceMicroPerGibDay: config.SPACE_PRICE_MICRO_PER_GIB_DAY,
    logger,
  });
  const redis = createRedis(config.REDIS_URL, 'main');
  const redisSub = createRedis(config.REDIS_URL, 'sub', { subscriber: true });
  logRedisState(redis, 'main', logger);
  logRedisState(redisSub, 'sub', logger);
  const keys = new RedisKeys(config.REDIS_KEY_PREFIX);
  const zeroHolds = new ZeroHolds(redis, keys, config.SPACE_ZERO_HOLD_SECONDS, payloadKeys);
  const spaceJobs = new SpaceJobs({ store: spaceJobsStore(db), payloads, encrypted: payloadKeys !== null, zeroHolds, logger });
  const rabbit = connectRabbit(config.RABBITMQ_URL, logger);
  await waitForRabbit(rabbit, 10_000);

  // The network config in force: every role reads its parameters from it (the environment's until a
  // version exists); the gate role makes the genesis version when there is none.
  // Catalogue rows (models, namespaces, API keys) in memory, dropped on every instance when they change.
  const catalog = new Catalog(catalogStore(db));
  const queue = new JobQueue(rabbit, config.RABBITMQ_PREFIX, config.RABBITMQ_QUEUE_TYPE);
  await queue.verifyTopology();
  const admin = buildAdminServices({ config, logger, db, redis, keys, queue, catalog });
  const { eligibility, flagsMirror, nodeFlags, networkConfig, operators, usage, ledgerChain } = admin;
  if (has('gate')) await networkConfig.ensureGenesis();
  if (foreignConfig) {
    logger.warn({ version: foreignConfig.version, signer: foreignConfig.signer, key: addressOf(networkKey!) }, 'network config in force signed by another key: publishing the next version under NETWORK_SIGNING_KEY');
    await networkConfig.publish({}, SYSTEM_ACTOR);
  }
  await networkConfig.start();
  // Presence follows the config's heartbeat TTL; a reservation is dropped as leaked only once it is older
  // than any attempt of any version could run (twice the longest execution timeout ever configured).
  const presence = new PresenceRepository(
    redis,
    keys,
    () => networkConfig.heartbeat().ttlMs,
    () => 2 * networkConfig.longestExecutionTimeoutMs(),
    () => eligibility.sync(),
  );
  const inflight = new InflightRepository(redis, keys);
  const events = new JobEvents(redis, redisSub, keys);
  await events.start(has('io') ? instanceId : null);
  // The payload keys hear the same announcements: a namespace's deletion drops the key they seal with.
  const catalogChanges = new CatalogChanges(
    config.DATABASE_URL,
    (change) => {
      catalog.onChange(change);
      payloadKeys?.onCatalogChange(change);
    },
    logger,
  );
  const usageRules = new UsageRules(db, catalog);
  await catalogChanges.start();
  // Job logs and node stats: written behind in batches by every role that sees an event (never waited
  // for), read after the fact by Space's routes. Through a client of their own, so that their traffic
  // never queues beside the payloads' (results are written on a job's way out), and their failed writes
  // while MongoDB is down never change what the payloads' client knows of the server.
  const logMongo = await connectMongo(opts.mongoUrl, 'resultity-logs');
  const logWrites = { flushMs: config.LOG_WRITE_FLUSH_MS, batchMax: config.LOG_WRITE_BATCH_MAX, bufferMax: config.LOG_WRITE_BUFFER_MAX, logger };
  const jobLogs = new JobLogsRepository(logMongo.db, { ...logWrites, retentionHours: config.JOB_LOG_RETENTION_HOURS, planHoursOf: retentionHoursFor(catalog, config.PAYLOAD_RETENTION_HOURS) });
  const nodeStats = new NodeStatsRepository(logMongo.db, { ...logWrites, windowMs: config.NODE_STATS_WINDOW_MS, retentionDays: config.NODE_STATS_RETENTION_DAYS, maxNodes: 100_000, instanceId });
  await Promise.all([jobLogs.ensureIndexes(), nodeStats.ensureIndexes()]);
  nodeStats.start();
  // Outbox marks for published jobs still running this long after their publish (most finish first).
  const marks = new PublishMarks(db, Math.min(2_000, Math.floor(config.OUTBOX_REPUBLISH_AFTER_MS / 2)), logger);
  events.onAnyFinished((jobId) => marks.finished(jobId));
  marks.start();
  const rcpClock = rcpClockFrom(config);
  const uptime = new UptimeRepository(redis, keys, 3 * config.RCP_EPOCH_SECONDS + 3_600);
  const settlement = new SettlementService(settlementStore(db), config.OPERATOR_SHARE_BPS, rcpClock, {
    maxItems: config.LEDGER_BATCH_MAX_ITEMS,
    maxInFlight: config.LEDGER_BATCH_IN_FLIGHT,
    lingerMs: config.LEDGER_BATCH_LINGER_MS,
  });
  const snapshots = new SnapshotService({ db, store: storeFromConfig(config), networkKey: networkKey ?? null, rcpClock, jobDeadlineMs: config.JOB_DEADLINE_MS, logger });
  // A stream outlives its last chunk by a whole attempt timeout and a minute: time enough for the
  // attempt's result to be checked against it and for a slow client's relay to drain it.
  const streams = new JobStreams(redis, keys, () => networkConfig.longestExecutionTimeoutMs() + 60_000);
  const usageSamples = new UsageSamples(redis, keys);
  // The job rows as the lifecycle, the results service and the scheduler read and fence them (one adapter).
  const jobRows = jobsStore(db);
  const lifecycle = new JobLifecycle({ store: jobRows, settlement, payloads, presence, inflight, events, queue, marks, nodeFlags, streams, usageRules, usageSamples, logger, jobLog: jobLogs, nodeStats });
  const jobs = new InferenceService({ config, store: inferenceStore(db), catalog, settlement, payloads, zeroHolds, presence, inflight, events, lifecycle, networkConfig, logger, redisReady: () => redisReady(redis), jobLog: jobLogs });
  const jobLogReads = new JobLogsService({ store: jobLogsStore(db), jobLogs, nodeStats });
  // The network's own tenant for blind jobs, made and funded through the same admin rules as any other.
  const systemTenants = {
    createAccount: (name: string) => admin.accounts.createAccount(name),
    createNamespace: (accountId: string, name: string, network: Network) => admin.accounts.createNamespace(accountId, name, network),
    issueApiKey: (namespaceId: string, opts: { name: string }) => admin.apiKeys.issueApiKey(namespaceId, opts),
    topUp: (namespaceId: string, credits: number, memo: string) => admin.credits.topUp(namespaceId, credits, memo),
  };
  const quality = new QualityService({ config, store: qualityStore(db), payloads, jobs, admin: systemTenants, flags: nodeFlags, scores: new ScoresMirror(redis, keys), usageSamples, logger });
  // Relays wait on their own subscriber connection, only where clients are served.
  const redisStreamSub = has('cloud') ? createRedis(config.REDIS_URL, 'stream-sub', { subscriber: true }) : null;
  if (redisStreamSub) logRedisState(redisStreamSub, 'stream-sub', logger);

  // Typed with Fastify's base logger so that route modules can take a plain FastifyInstance.
  const app: FastifyInstance = Fastify<Server, IncomingMessage, ServerResponse, FastifyBaseLogger>({
    // Request lines are logged with their credentials redacted (query-string keys and tokens).
    loggerInstance: logger.child({}, { serializers: { req: requestLogView } }),
    bodyLimit: config.BODY_LIMIT_BYTES,
    // Every route (public, account, admin, io) shares the server: a request must arrive whole within
    // HTTP_REQUEST_TIMEOUT_MS (answered 408 otherwise), its headers too; Node checks this often.
    requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
    http: httpTimeouts(config.HTTP_REQUEST_TIMEOUT_MS),
    clientErrorHandler: httpClientErrorHandler,
  });
  // Every log line of a request, from any module, carries its request id (and job id: cloud/routes.ts).
  app.addHook('onRequest', (request, _reply, done) => withRequestContext(request.id, done));
  // An engine whose connection is lost (Redis, PostgreSQL restarting) answers 503 with Retry-After, not 500.
  app.setErrorHandler(httpErrorHandler((err) => isRedisUnreachable(err) || isPostgresUnreachable(err)));
  app.setNotFoundHandler((request, reply) =>
    sendAppError(reply, new AppError('unknown_route', `Unknown request URL: ${request.method} ${request.url}.`)),
  );
  await app.register(websocket, { options: { maxPayload: MAX_MESSAGE_BYTES } });
  // Before any route: the OpenAPI document is collected from the routes as they are added.
  const routes = await registerOpenApi(app, '0.1.0');

  // Prometheus metrics of this process (src/metrics): engine operations, HTTP responses, process stats.
  metricsRoutes(app);
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const readiness = await probeEngines(
      {
        postgres: () => pingDatabase(db),
        redis: redisReady(redis) && (() => redis.ping()),
        mongodb: () => mongo.db.command({ ping: 1 }),
        rabbitmq: rabbit.ready && (() => Promise.resolve()),
      },
      READINESS_PROBE_TIMEOUT_MS,
    );
    return reply.code(readiness.status === 'not_ready' ? 503 : 200).send(readiness);
  });

  // The status role's process also exports the fleet's gauges (queue depths, nodes and free slots by model).
  let stopFleetMetrics: (() => void) | null = null;
  if (has('status')) {
    const status = new StatusService({ store: statusStore(db), nodes: new StatusRepository(redis, keys), depth: new QueueDepth(rabbit), queue, logger });
    statusRoutes(app, status);
    stopFleetMetrics = exportFleetMetrics(() => status.fleetReading());
  }
  if (has('cloud')) {
    const auth = new AuthService({
      store: authStore(db),
      catalog,
      rateLimits: new RateLimitRepository(redis, keys),
      defaultRps: config.RATE_LIMIT_RPS,
      defaultBurst: config.RATE_LIMIT_BURST,
      accountRps: config.ACCOUNT_RATE_LIMIT_RPS,
      accountBurst: config.ACCOUNT_RATE_LIMIT_BURST,
      redisReady: () => redisReady(redis),
    });
    const relay = new StreamRelay({ store: streamRelayStore(db), streams, wakeups: new StreamWakeups(redisStreamSub!, keys), events, payloads, logger });
    cloudRoutes(app, { db, payloads, spaceJobs, jobLogs: jobLogReads, usage, auth, jobs, relay, redisReady: () => redisReady(redis), maxTokensDefault: () => networkConfig.jobs().defaultMaxTokens, syncGraceMs: 2 * config.SWEEP_INTERVAL_MS + 1_000, maxDeadlineMs: config.JOB_DEADLINE_MS, defaultRateLimit: { rps: config.RATE_LIMIT_RPS, burst: config.RATE_LIMIT_BURST } });
  }
  let gateway: Gateway | null = null;
  let verifyPool: VerifyPoolHandle | null = null;
  if (has('io')) {
    verifyPool = openVerifyPool(config.SIGNATURE_VERIFY_THREADS);
    const results = new ResultsService({ store: jobRows, settlement, payloads, inflight, lifecycle, streams, usageRules, retentionHoursFor: retentionHoursFor(catalog, config.PAYLOAD_RETENTION_HOURS), zeroHolds, logger, jobLog: jobLogs, nodeStats });
    gateway = new Gateway({
      config,
      db,
      presence,
      replay: new ReplayGuard(redis, keys, config.NODE_MESSAGE_MAX_SKEW_MS),
      uptime,
      rcpClock,
      events,
      results,
      streams,
      networkAddress: addressOf(networkKey!),
      networkConfig,
      nodeConfigDigests: new NodeConfigDigests(redis, keys),
      instanceId,
      logger,
      jobLog: jobLogs,
      nodeStats,
    });
    const gw = gateway;
    app.register(async (r) => gw.routes(r));
  }
  if (has('gate')) {
    if (!config.ADMIN_TOKEN) throw new Error('ADMIN_TOKEN is required by the gate role');
    const quarantine = new QuarantineService({
      store: quarantineStore(db),
      payloads,
      resubmit: async (principal, model, request, { region, priority }) =>
        (await jobs.accept(principal, [model], request, { priority, ...(region === null ? {} : { region }) })).job,
    });
    adminRoutes(app, { ...admin, quarantine, quality, snapshots }, config.ADMIN_TOKEN);
    const accounts = new AccountService({
      store: accountStore(db),
      namespaces: admin.accounts,
      apiKeys: admin.apiKeys,
      rateLimits: new RateLimitRepository(redis, keys),
      nonces: new SiweNonces(redis, keys, config.SIWE_NONCE_TTL_SECONDS),
      sessionTtlHours: config.SESSION_TTL_HOURS,
      keyRateLimit: { rps: config.RATE_LIMIT_RPS, burst: config.RATE_LIMIT_BURST },
      loginLimits: {
        perMinute: config.LOGIN_RATE_PER_MINUTE,
        burst: config.LOGIN_RATE_BURST,
        ipPerMinute: config.LOGIN_IP_RATE_PER_MINUTE,
        ipBurst: config.LOGIN_IP_RATE_BURST,
      },
      siweDomain: config.SIWE_DOMAIN ?? null,
      siweNonceTtlSeconds: config.SIWE_NONCE_TTL_SECONDS,
    });
    if (!config.SIWE_DOMAIN) logger.info('SIWE_DOMAIN is not set: Sign-In with Ethereum is disabled on the account API');
    accountRoutes(app, accounts, {
      namespaces: new NamespaceConsoleService({ store: namespaceConsoleStore(db), credits: admin.credits }),
      operator: new OperatorConsoleService({ store: operatorConsoleStore(db), presence: new NodePresenceView(redis, keys), operators, rcpEpochSeconds: config.RCP_EPOCH_SECONDS }),
      usage,
      snapshots,
      webhooks: new WebhooksService({ store: webhooksStore(db), allowPrivateTargets: config.WEBHOOK_ALLOW_PRIVATE_TARGETS }),
    });
    retentionRoutes(app, { db, retention, spaceJobs, accounts, adminToken: config.ADMIN_TOKEN });
    nodeStatsRoutes(app, { service: jobLogReads, accounts, adminToken: config.ADMIN_TOKEN, maxRangeDays: config.NODE_STATS_MAX_RANGE_DAYS });
  }
  // The explorer (public, from /status) and the consoles (through /account), built from web/.
  if (has('status') || has('gate')) webRoutes(app, opts.webRoot ?? fileURLToPath(new URL('../../web/dist/', import.meta.url)));
  const scheduler = has('scheduler') ? new Scheduler({ config, store: jobRows, lifecycle, payloads, presence, inflight, events, queue, networkKey: networkKey!, logger, jobLog: jobLogs }) : null;
  const maintenance = has('maintenance') ? new Maintenance({ config, store: maintenanceStore(db), payloads, logStores: [jobLogs, nodeStats], retention, lifecycle, flags: flagsMirror, eligibility, uptime, rcpClock, logger }) : null;
  const history = has('maintenance') ? new HistoryMaintenance({ config, store: historyStore(db), ledgerChain, snapshots, logger }) : null;
  const webhookDelivery = has('maintenance')
    ? new WebhookDelivery({
        store: webhookDeliveryStore(db),
        allowPrivateTargets: config.WEBHOOK_ALLOW_PRIVATE_TARGETS,
        retryScheduleMs: config.WEBHOOK_RETRY_SCHEDULE_MS,
        timeoutMs: config.WEBHOOK_TIMEOUT_MS,
        intervalMs: Math.min(config.SWEEP_INTERVAL_MS, 1_000),
        logger,
      })
    : null;

  let closed = false;
  return {
    app,
    instanceId,
    admin,
    jobs,
    retention,
    spaceJobs,
    payloadKeys,
    jobLogs,
    nodeStats,
    quality,
    networkConfig,
    db,
    mongo,
    routes,
    async listen() {
      const url = await app.listen({ port: config.PORT, host: config.HOST });
      await scheduler?.start();
      maintenance?.start();
      if (has('maintenance')) quality.start();
      history?.start();
      webhookDelivery?.start();
      logger.info({ url, roles, instanceId }, 'backbone listening');
      return url;
    },
    async close() {
      stopFleetMetrics?.();
      if (closed) return;
      closed = true;
      gateway?.closeAll();
      await scheduler?.stop();
      await maintenance?.stop();
      await quality.stop();
      await history?.stop();
      await webhookDelivery?.stop();
      networkConfig.stop();
      await app.close();
      await verifyPool?.close();
      // Grouped holds and settlements still running (a node's result arriving during shutdown) end before the pool does.
      await settlement.drained();
      await payloads.drained();
      await payloadKeys?.drained();
      // What the logs buffered (the last events of jobs finished during shutdown) is written before MongoDB closes.
      await Promise.all([jobLogs.close(), nodeStats.close()]);
      await marks.stop();
      await catalogChanges.close();
      await queue.close();
      await rabbit.close();
      redisSub.disconnect();
      redisStreamSub?.disconnect();
      redis.disconnect();
      await mongo.client.close();
      await logMongo.client.close();
      await db.end();
    },
  };
}

/** What a request's log line says of it: Fastify's fields, the URL with its credentials redacted. */
function requestLogView(req: { method: string; url: string; host?: string; ip?: string; socket?: { remotePort?: number } }) {
  return { method: req.method, url: redactUrl(req.url), host: req.host, remoteAddress: req.ip, remotePort: req.socket?.remotePort };
}

/**
 * Node's HTTP timeouts for a request timeout (0: off): headers within it too (Node's default of 60 s
 * otherwise), checked a few times per timeout (Node checks every 30 s by default, which would let a
 * slow request live for up to twice the timeout).
 */
function httpTimeouts(requestTimeoutMs: number) {
  if (requestTimeoutMs === 0) return {};
  return {
    requestTimeout: requestTimeoutMs,
    headersTimeout: Math.min(requestTimeoutMs, 60_000),
    connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(requestTimeoutMs / 4))),
  };
}
