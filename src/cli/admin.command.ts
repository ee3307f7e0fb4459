// `resultity admin ...`: the admin service from the command line, talking to the engines directly (no
// running backbone needed). Every command takes --json for scripts; secrets are printed only where
// their creation is the point (a new API key, once).
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { pino } from 'pino';
import { loadConfig } from '../config.js';
import { buildAdminServices, type AdminServices } from '../admin-services.js';
import { formatCredits } from '../errors.js';
import { registerSpaceCommand } from './space.command.js';
import { createPool } from '../postgres/db.js';
import { migrate } from '../postgres/migrate.js';
import { createRedis, RedisKeys } from '../redis/client.js';
import { connectRabbit, waitForRabbit } from '../rabbitmq/client.js';
import { JobQueue } from '../rabbitmq/job-queue.js';
import type { SubcloudView } from '../network/eligibility.service.js';
import { NETWORKS, type Network } from '../domain/eligibility.js';
import type { PublishedConfig, PublishInput } from '../network/network-config.service.js';
import { registerWebhookCommands } from './webhooks.command.js';

type Json = { json?: boolean };

/** How the admin change log names changes made from this command line: the local user. */
const ACTOR = `cli:${safeUserName()}`;

function safeUserName(): string {
  try {
    return userInfo().username || 'unknown';
  } catch {
    return 'unknown'; // no passwd entry (some containers)
  }
}

/** Connects the engines, builds the admin services (the same wiring as the server's: admin-services.ts), runs `fn`, disconnects. */
async function withAdmin<T>(fn: (services: AdminServices) => Promise<T>): Promise<T> {
  const config = loadConfig(process.env);
  const logger = pino({ level: config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL });
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

function out(opts: Json, value: unknown, text: string): void {
  process.stdout.write(opts.json ? `${JSON.stringify(value)}\n` : `${text}\n`);
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`not a whole number: ${v}`);
  return n;
}

/** `urgent=5000,bulk=-2000` → { urgent: 5000, bulk: -2000 }; the admin service checks classes and ranges. */
function surchargeList(v: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pair of v.split(',').filter(Boolean)) {
    const m = /^([a-z]+)=(-?\d+)$/.exec(pair.trim());
    if (!m) throw new Error(`not class=basis-points: ${pair}`);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

export function registerAdminCommand(program: Command): void {
  const admin = program.command('admin').description('platform administration (talks to PostgreSQL, Redis and RabbitMQ directly)');
  registerWebhookCommands(admin);

  admin
    .command('account-create <name>')
    .option('--json', 'JSON output')
    .description('create an account (consumer and/or node operator)')
    .action(async (name: string, opts: Json) => {
      const a = await withAdmin(({ admin: s }) => s.createAccount(name));
      out(opts, a, `account ${a.id} (${a.name})`);
    });

  admin
    .command('namespace-create <accountId> <name>')
    .option('--network <network>', `the network its jobs run on: ${NETWORKS.join(' or ')}`, network, 'mainnet')
    .option('--json', 'JSON output')
    .description('create a namespace in an account')
    .action(async (accountId: string, name: string, opts: Json & { network: Network }) => {
      const ns = await withAdmin(({ admin: s }) => s.createNamespace(accountId, name, opts.network));
      out(opts, ns, `namespace ${ns.id} (${ns.name}, ${ns.network})`);
    });

  admin
    .command('namespace-bind <namespaceId> <subcloud>')
    .option('--json', 'JSON output')
    .description("run a namespace's jobs on a subcloud's members only ('none' unbinds); applies to jobs accepted from now on")
    .action(async (namespaceId: string, subcloud: string, opts: Json) => {
      const ns = await withAdmin(({ eligibility: e }) => e.bindNamespace(namespaceId, subcloud === 'none' ? null : subcloud, ACTOR));
      out(opts, ns, `namespace ${ns.id}: ${ns.subcloud ? `bound to subcloud ${ns.subcloud}` : 'not bound to a subcloud'}`);
    });

  admin
    .command('key-issue <namespaceId>')
    .option('--name <name>', 'a label for the key')
    .option('--rps <n>', 'requests per second allowed (default: RATE_LIMIT_RPS)', positiveInt)
    .option('--burst <n>', 'burst size (default: RATE_LIMIT_BURST)', positiveInt)
    .option('--monthly-cap <credits>', 'credits the key may spend per calendar month (UTC)', Number)
    .option('--expires-at <iso-date>', 'when the key stops working, e.g. 2027-01-01T00:00:00Z', (v: string) => new Date(v))
    .option('--json', 'JSON output')
    .description('issue an API key for a namespace; the key is shown once')
    .action(async (namespaceId: string, opts: Json & { name?: string; rps?: number; burst?: number; monthlyCap?: number; expiresAt?: Date }) => {
      const { key, secret } = await withAdmin(({ admin: s }) =>
        s.issueApiKey(namespaceId, { name: opts.name, rateLimitRps: opts.rps, rateLimitBurst: opts.burst, monthlyCapCredits: opts.monthlyCap, expiresAt: opts.expiresAt }),
      );
      out(opts, { ...key, key: secret }, `key ${key.id}\n${secret}\n(shown once: store it now)`);
    });

  admin
    .command('key-list <namespaceId>')
    .option('--json', 'JSON output')
    .description("a namespace's keys: prefix, limits, expiry, last use (never the secret)")
    .action(async (namespaceId: string, opts: Json) => {
      const keys = await withAdmin(({ admin: s }) => s.listApiKeys(namespaceId));
      const text = keys.map((k) => `${k.id} ${k.key_prefix}... ${k.revoked_at ? 'revoked' : 'active'} last used ${k.last_used_at?.toISOString() ?? 'never'}`).join('\n');
      out(opts, keys, text || '(no keys)');
    });

  admin
    .command('key-rotate <keyId>')
    .option('--json', 'JSON output')
    .description('replace a key by a new one with the same settings (the old one stops at once); the new key is shown once')
    .action(async (keyId: string, opts: Json) => {
      const { key, secret } = await withAdmin(({ admin: s }) => s.rotateApiKey(keyId));
      out(opts, { ...key, key: secret }, `key ${key.id} replaces ${keyId}\n${secret}\n(shown once: store it now)`);
    });

  admin
    .command('key-revoke <keyId>')
    .option('--json', 'JSON output')
    .description('revoke an API key (effective at once on every instance)')
    .action(async (keyId: string, opts: Json) => {
      await withAdmin(({ admin: s }) => s.revokeApiKey(keyId));
      out(opts, { revoked: keyId }, `revoked ${keyId}`);
    });

  admin
    .command('credits-topup <namespaceId> <credits>')
    .option('--memo <text>', 'note kept with the ledger transaction')
    .option('--json', 'JSON output')
    .description('add credits to a namespace')
    .action(async (namespaceId: string, credits: string, opts: Json & { memo?: string }) => {
      const b = await withAdmin(({ admin: s }) => s.topUp(namespaceId, Number(credits), opts.memo));
      out(opts, b, `available ${formatCredits(b.available_micro)} credits, held ${formatCredits(b.held_micro)}`);
    });

  admin
    .command('balance <namespaceId>')
    .option('--json', 'JSON output')
    .description("a namespace's available and held credits")
    .action(async (namespaceId: string, opts: Json) => {
      const b = await withAdmin(({ admin: s }) => s.balance(namespaceId));
      out(opts, b, `available ${formatCredits(b.available_micro)} credits, held ${formatCredits(b.held_micro)}`);
    });

  admin
    .command('model-put <name>')
    .requiredOption('--input-price <n>', 'credits per million input tokens (whole number)', positiveInt)
    .requiredOption('--output-price <n>', 'credits per million output tokens (whole number)', positiveInt)
    .option('--min-charge <credits>', 'least a completed request costs', Number)
    .option('--context <n>', 'context window in tokens', positiveInt)
    .option('--version <v>', 'the version nodes must run to be given the model (kept when omitted; default 1)')
    .option('--content-hash <sha256>', "sha256 of the weights, hex ('none' clears it)")
    .option('--min-gpu-memory-mb <n>', 'least GPU memory (MiB) a node needs to be given the model', positiveInt)
    .option('--surcharge <class=bps,...>', 'surcharge per priority class in basis points, e.g. urgent=5000,bulk=-2000', surchargeList)
    .option('--json', 'JSON output')
    .description('register a model or change its prices and requirements')
    .action(
      async (
        name: string,
        opts: Json & { inputPrice: number; outputPrice: number; minCharge?: number; context?: number; version?: string; contentHash?: string; minGpuMemoryMb?: number; surcharge?: Record<string, number> },
      ) => {
        const m = await withAdmin(({ admin: s }) =>
          s.putModel({
            name,
            inputPricePerMtok: opts.inputPrice,
            outputPricePerMtok: opts.outputPrice,
            minCharge: opts.minCharge,
            contextTokens: opts.context,
            version: opts.version,
            contentHash: opts.contentHash === 'none' ? null : opts.contentHash,
            minGpuMemoryMb: opts.minGpuMemoryMb,
            prioritySurchargeBps: opts.surcharge,
          }, ACTOR),
        );
        out(
          opts,
          m,
          `model ${m.name}@${m.version}: ${m.input_price_micro} / ${m.output_price_micro} credits per million input / output tokens, GPU memory >= ${m.min_gpu_memory_mb} MiB`,
        );
      },
    );

  registerSubcloudCommands(admin);
  registerNetworkConfigCommands(admin);
  registerSpaceCommand(program);

  admin
    .command('usage <namespaceId>')
    .option('--from <day>', 'first day, YYYY-MM-DD (UTC); default 29 days before --to')
    .option('--to <day>', 'last day, YYYY-MM-DD (UTC); default today')
    .option('--csv', 'CSV output')
    .option('--json', 'JSON output')
    .description("a namespace's usage by day, model and API key")
    .action(async (namespaceId: string, opts: Json & { from?: string; to?: string; csv?: boolean }) => {
      await withAdmin(async ({ admin, usage }) => {
        await admin.balance(namespaceId); // an unknown namespace is an error, not an empty report
        const report = await usage.report(namespaceId, { from: opts.from, to: opts.to });
        if (opts.csv) process.stdout.write(usage.toCsv(report.data, report.storage));
        else out(opts, report, report.data.map((r) => `${r.day} ${r.model} ${r.key_prefix}... ${r.requests} requests, ${r.credits_charged} credits`).join('\n') || '(no usage)');
      });
    });

  const bool = (v: string) => {
    if (v !== 'true' && v !== 'false') throw new Error(`expected true or false, got ${v}`);
    return v === 'true';
  };
  admin
    .command('node-flags <nodeId>')
    .option('--paused <bool>', 'true or false', bool)
    .option('--frozen <bool>', 'true or false', bool)
    .option('--shadow-banned <bool>', 'true or false (the node is not told)', bool)
    .option('--cooldown <seconds>', 'no new jobs for this long (0 ends a cooldown)', positiveInt)
    .option('--reason <text>', 'kept with the flags')
    .option('--json', 'JSON output')
    .description("set a node's flags (effective on every instance at once); the others stay as they were")
    .action(async (nodeId: string, opts: Json & { paused?: boolean; frozen?: boolean; shadowBanned?: boolean; cooldown?: number; reason?: string }) => {
      const f = await withAdmin(({ admin: s }) =>
        s.setNodeFlags(nodeId, { paused: opts.paused, frozen: opts.frozen, shadowBanned: opts.shadowBanned, cooldownSeconds: opts.cooldown }, opts.reason, ACTOR),
      );
      out(opts, f, `${nodeId}: paused ${f.paused}, frozen ${f.frozen}, shadow-banned ${f.shadowBanned}, cooldown until ${f.cooldownUntil ? new Date(f.cooldownUntil).toISOString() : '-'}`);
    });

  admin
    .command('node-reinstate <nodeId>')
    .option('--json', 'JSON output')
    .description('clear every flag of a node')
    .action(async (nodeId: string, opts: Json) => {
      const f = await withAdmin(({ admin: s }) => s.reinstateNode(nodeId, ACTOR));
      out(opts, f, `${nodeId}: reinstated`);
    });

  admin
    .command('node-enrol <accountId> <nodeAddress>')
    .option('--json', 'JSON output')
    .description("enrol a node's address to an operator account (the operator's consent to the node's binding)")
    .action(async (accountId: string, node: string, opts: Json) => {
      const e = await withAdmin(({ operators }) => operators.enrolNode(accountId, node));
      out(opts, e, `${e.node_id}: enrolled to operator ${e.operator_account_id}`);
    });

  admin
    .command('node-enrolment-token <accountId> <nodeAddress>')
    .option('--ttl-hours <hours>', 'how long the token is valid', '24')
    .option('--json', 'JSON output')
    .description('an enrolment token for one node address (needs NETWORK_SIGNING_KEY): the node registers with it, bound to this operator')
    .action(async (accountId: string, node: string, opts: Json & { ttlHours: string }) => {
      const t = await withAdmin(({ operators }) => operators.enrolmentToken(accountId, node, Number(opts.ttlHours)));
      out(opts, t, `${t.token}\n(node ${t.node_id}, valid until ${t.expires_at}; give it to the node: resultity node run --enrolment-token ...)`);
    });

  admin
    .command('tokenizer-put <tokenizerJson>')
    .option('--config <file>', "the model's tokenizer_config.json")
    .option('--json', 'JSON output')
    .description("register a tokenizer (a Hugging Face tokenizer.json file) under the SHA-256 of its text, for model-usage-bound")
    .action(async (file: string, opts: Json & { config?: string }) => {
      const tokenizer = readFileSync(file, 'utf8');
      const config = opts.config ? (JSON.parse(readFileSync(opts.config, 'utf8')) as Record<string, unknown>) : {};
      const t = await withAdmin(({ admin: s }) => s.putTokenizer(tokenizer, config));
      out(opts, t, `tokenizer ${t.sha256}`);
    });

  admin
    .command('model-usage-bound <name>')
    .option('--tokenizer-sha256 <hash>', "a registered tokenizer that counts the model's output ('none' to clear)")
    .option('--max-tokens-per-byte <ratio>', 'without a tokenizer: the most tokens a node may claim per byte of output', Number)
    .option('--json', 'JSON output')
    .description("how a model's claimed usage is bounded: counted by its tokenizer, or bytes times a ratio")
    .action(async (name: string, opts: Json & { tokenizerSha256?: string; maxTokensPerByte?: number }) => {
      const tokenizerSha256 = opts.tokenizerSha256 === undefined ? undefined : opts.tokenizerSha256 === 'none' ? null : opts.tokenizerSha256;
      const m = await withAdmin(({ admin: s }) => s.setUsageBound(name, { tokenizerSha256, maxTokensPerByte: opts.maxTokensPerByte }, ACTOR));
      out(opts, m, `${m.name}: tokenizer ${m.tokenizer_sha256 ?? 'none'}, at most ${m.max_tokens_per_byte} tokens per byte without one`);
    });

  admin
    .command('operator-earnings <accountId>')
    .option('--from <day>', 'first day, YYYY-MM-DD (UTC)')
    .option('--to <day>', 'last day, YYYY-MM-DD (UTC)')
    .option('--json', 'JSON output')
    .description("an operator's earnings, pending withdrawals, and earnings by node and day")
    .action(async (accountId: string, opts: Json & { from?: string; to?: string }) => {
      const e = await withAdmin(({ operators }) => operators.earnings(accountId, { from: opts.from, to: opts.to }));
      out(opts, e, `earned ${e.earned} credits, pending withdrawal ${e.pending_withdrawal}\n${e.by_node_and_day.map((r) => `${r.day} ${r.node_id ?? '(job history rolled up)'} ${r.jobs} jobs ${r.earned}`).join('\n')}`);
    });

  admin
    .command('withdrawal-request <accountId> <credits> <destination>')
    .option('--json', 'JSON output')
    .description("record an operator's withdrawal request (a ledger hold on their earnings)")
    .action(async (accountId: string, credits: string, destination: string, opts: Json) => {
      const w = await withAdmin(({ operators }) => operators.requestWithdrawal(accountId, Number(credits), destination));
      out(opts, w, `withdrawal ${w.id} requested: ${formatCredits(w.amount_micro)} credits to ${w.destination}`);
    });

  admin
    .command('withdrawals-export')
    .option('--json', 'JSON output')
    .description('every withdrawal requested since the last export, as CSV for settlement (marks them exported)')
    .action(async (opts: Json) => {
      const batch = await withAdmin(({ operators }) => operators.exportWithdrawals());
      process.stdout.write(opts.json ? `${JSON.stringify(batch.rows)}\n` : batch.csv);
    });

  admin
    .command('ledger-total')
    .option('--json', 'JSON output')
    .description('sum over all ledger accounts (zero when the ledger balances)')
    .action(async (opts: Json) => {
      const t = await withAdmin(({ admin: s }) => s.ledgerTotals());
      out(opts, t, `entries total ${t.entriesTotal}, balances total ${t.balancesTotal}, mismatched accounts ${t.mismatchedAccounts}`);
      if (t.entriesTotal !== 0 || t.balancesTotal !== 0 || t.mismatchedAccounts !== 0) process.exitCode = 3;
    });

  admin
    .command('ledger-verify')
    .option('--json', 'JSON output')
    .description("recompute the ledger's daily hash chain and check it against the entries; names the first day that breaks (exit 3)")
    .action(async (opts: Json) => {
      const v = await withAdmin(({ ledgerChain }) => ledgerChain.verify());
      const range = v.first_day === null ? 'no chained days yet' : `${v.days_verified} day(s) verified from ${v.first_day}, head ${v.head_hash}`;
      out(opts, v, v.broken ? `BROKEN at ${v.broken.day}: ${v.broken.reason}\n${range}` : `ok: ${range}`);
      if (!v.ok) process.exitCode = 3;
    });
}

function network(v: string): Network {
  if (!(NETWORKS as readonly string[]).includes(v)) throw new Error(`expected ${NETWORKS.join(' or ')}, got ${v}`);
  return v as Network;
}

function boolean(v: string): boolean {
  if (v !== 'true' && v !== 'false') throw new Error(`expected true or false, got ${v}`);
  return v === 'true';
}

function list(v: string): string[] {
  return v.split(',').map((x) => x.trim()).filter(Boolean);
}

function describeSubcloud(s: SubcloudView): string {
  const models = s.allowed_models.length > 0 ? s.allowed_models.join(',') : 'all models';
  return `subcloud ${s.name} (${s.network}${s.isolate ? ', isolated' : ''}): ${models}, GPU memory >= ${s.min_gpu_memory_mb} MiB, ${s.members.length} members, ${s.namespaces} namespaces`;
}

type SubcloudOptions = Json & { allowedModels?: string[]; minGpuMemoryMb?: number; isolate?: boolean };

/** `subcloud-*`: node groups with their own policy (see network/eligibility.service.ts). */
function registerSubcloudCommands(admin: Command): void {
  const policyOptions = (c: Command) =>
    c
      .option('--allowed-models <list>', "comma-separated models its members serve for it ('' for all)", list)
      .option('--min-gpu-memory-mb <n>', 'least GPU memory (MiB) a member needs to take its jobs', positiveInt)
      .option('--isolate <bool>', 'true: its members serve only its jobs', boolean)
      .option('--json', 'JSON output');

  policyOptions(admin.command('subcloud-create <name>').requiredOption('--network <network>', NETWORKS.join(' or '), network))
    .description('create a subcloud (its network is fixed from then on)')
    .action(async (name: string, opts: SubcloudOptions & { network: Network }) => {
      const s = await withAdmin(({ eligibility: e }) => e.create(name, opts.network, { allowedModels: opts.allowedModels, minGpuMemoryMb: opts.minGpuMemoryMb, isolate: opts.isolate }, ACTOR));
      out(opts, s, describeSubcloud(s));
    });

  policyOptions(admin.command('subcloud-update <name>'))
    .description("change a subcloud's policy (the options given); effective at the next reservation")
    .action(async (name: string, opts: SubcloudOptions) => {
      const s = await withAdmin(({ eligibility: e }) => e.update(name, { allowedModels: opts.allowedModels, minGpuMemoryMb: opts.minGpuMemoryMb, isolate: opts.isolate }, ACTOR));
      out(opts, s, describeSubcloud(s));
    });

  admin
    .command('subcloud-delete <name>')
    .option('--json', 'JSON output')
    .description('delete a subcloud and its memberships (no namespace may be bound to it)')
    .action(async (name: string, opts: Json) => {
      await withAdmin(({ eligibility: e }) => e.delete(name, ACTOR));
      out(opts, { deleted: name }, `deleted subcloud ${name}`);
    });

  admin
    .command('subcloud-list')
    .option('--json', 'JSON output')
    .description('every subcloud with its policy and members')
    .action(async (opts: Json) => {
      const all = await withAdmin(({ eligibility: e }) => e.list());
      out(opts, all, all.map((s) => `${describeSubcloud(s)}\n  members: ${s.members.join(' ') || '-'}`).join('\n') || '(no subclouds)');
    });

  for (const [verb, description] of [
    ['add', 'make a node a member of a subcloud'],
    ['remove', 'remove a node from a subcloud'],
  ] as const) {
    admin
      .command(`subcloud-member-${verb} <name> <nodeId>`)
      .option('--json', 'JSON output')
      .description(description)
      .action(async (name: string, nodeId: string, opts: Json) => {
        const s = await withAdmin(({ eligibility: e }) => (verb === 'add' ? e.addMember(name, nodeId, ACTOR) : e.removeMember(name, nodeId, ACTOR)));
        out(opts, s, describeSubcloud(s));
      });
  }
}

function describeConfig(c: PublishedConfig): string {
  const { jobs, heartbeat, participation } = c.document;
  return [
    `network config v${c.version} ${c.digest} (published ${c.publishedAt.toISOString()} by ${c.publishedBy})`,
    `  models: ${c.document.models.map((m) => `${m.name}@${m.version}`).join(', ') || '-'}`,
    `  runtimes: ${c.document.runtimes.map((r) => `${r.name}>=${r.minVersion}`).join(', ') || '-'}`,
    `  jobs: max_tokens default ${jobs.defaultMaxTokens}, max ${jobs.maxTokens}; execution timeout ${jobs.executionTimeoutMs} ms; ${jobs.maxAttempts} attempts`,
    `  heartbeat: every ${heartbeat.intervalMs} ms, TTL ${heartbeat.ttlMs} ms`,
    `  participation: ${participation.networks.join(', ')}; agent >= ${participation.minAgentVersion ?? 'any'}`,
  ].join('\n');
}

function runtimeList(v: string): Array<{ name: string; minVersion: string }> {
  return list(v).map((entry) => {
    const m = /^([^=]+)=(.+)$/.exec(entry);
    if (!m) throw new Error(`expected name=min-version, got ${entry}`);
    return { name: m[1]!, minVersion: m[2]! };
  });
}

type PublishOptions = Json & {
  defaultMaxTokens?: number;
  maxTokens?: number;
  executionTimeoutMs?: number;
  maxAttempts?: number;
  heartbeatIntervalMs?: number;
  heartbeatTtlMs?: number;
  runtimes?: Array<{ name: string; minVersion: string }>;
  networks?: string[];
  minAgentVersion?: string;
  startSlots?: number;
  capacityCaps?: Array<{ gpu: string; model: string | null; maxSlots: number }>;
};

/** `rtx-4090:big/70b=1,a100=8` → caps per GPU class and model (a class alone: any model); '' for none. */
function capacityCapList(v: string): Array<{ gpu: string; model: string | null; maxSlots: number }> {
  return v
    .split(',')
    .filter(Boolean)
    .map((item) => {
      const m = /^([^:=]+)(?::([^=]+))?=(\d+)$/.exec(item.trim());
      if (!m) throw new Error(`not gpu[:model]=slots: ${item}`);
      return { gpu: m[1]!, model: m[2] ?? null, maxSlots: Number(m[3]) };
    });
}

/** `config-*`: the signed network config (see network/network-config.service.ts). */
function registerNetworkConfigCommands(admin: Command): void {
  admin
    .command('config-publish')
    .option('--default-max-tokens <n>', 'max_tokens of a request that names none', positiveInt)
    .option('--max-tokens <n>', 'the most max_tokens a request may ask for', positiveInt)
    .option('--execution-timeout-ms <n>', 'how long one attempt may run', positiveInt)
    .option('--max-attempts <n>', 'the retry limit, counted as attempts (first included)', positiveInt)
    .option('--heartbeat-interval-ms <n>', 'how often nodes send heartbeats', positiveInt)
    .option('--heartbeat-ttl-ms <n>', 'how long a node stays in rotation after its last heartbeat', positiveInt)
    .option('--runtimes <name=version,...>', "runtime minimum versions, e.g. vllm=0.6.0,ollama=0.3 ('' for none)", runtimeList)
    .option('--networks <list>', `networks whose nodes are accepted: ${NETWORKS.join(',')}`, list)
    .option('--min-agent-version <v>', "least node agent version, e.g. 0.1.0 ('none' for any)")
    .option('--start-slots <n>', 'slow start: slots a node that has completed nothing may fill', positiveInt)
    .option('--capacity-caps <gpu[:model]=slots,...>', "capacity caps per GPU class (and model), e.g. rtx-4090:meta/llama-70b=1,rtx-4090=4 ('' for none)", capacityCapList)
    .option('--json', 'JSON output')
    .description("publish the next network config version: the models table as it is now, and the settings given (others keep the current version's); signed with NETWORK_SIGNING_KEY")
    .action(async (opts: PublishOptions) => {
      const input: PublishInput = {
        jobs: { defaultMaxTokens: opts.defaultMaxTokens, maxTokens: opts.maxTokens, executionTimeoutMs: opts.executionTimeoutMs, maxAttempts: opts.maxAttempts },
        heartbeat: { intervalMs: opts.heartbeatIntervalMs, ttlMs: opts.heartbeatTtlMs },
        ...(opts.runtimes ? { runtimes: opts.runtimes } : {}),
        participation: {
          networks: opts.networks as Network[] | undefined,
          minAgentVersion: opts.minAgentVersion === undefined ? undefined : opts.minAgentVersion === 'none' ? null : opts.minAgentVersion,
        },
        capacity: { startSlots: opts.startSlots, caps: opts.capacityCaps },
      };
      if (!process.env.NETWORK_SIGNING_KEY) throw new Error('config-publish signs with the network key: set NETWORK_SIGNING_KEY');
      const c = await withAdmin(({ networkConfig: n }) => n.publish(input, ACTOR));
      out(opts, c, describeConfig(c));
    });

  admin
    .command('config-list')
    .option('--limit <n>', 'how many versions, newest first', positiveInt, 20)
    .option('--json', 'JSON output')
    .description('network config versions, newest first')
    .action(async (opts: Json & { limit: number }) => {
      const all = await withAdmin(({ networkConfig: n }) => n.list(opts.limit));
      out(opts, all, all.map(describeConfig).join('\n') || '(no versions)');
    });

  admin
    .command('config-show <version>')
    .option('--json', 'JSON output')
    .description('one network config version, with its document and signature')
    .action(async (version: string, opts: Json) => {
      const c = await withAdmin(({ networkConfig: n }) => n.get(positiveInt(version)));
      out(opts, c, `${describeConfig(c)}\n  signature: ${c.signature}`);
    });
}
