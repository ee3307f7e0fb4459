// `resultity admin config-*`: the signed network config (network/network-config.service.ts).
import type { Command } from 'commander';
import { NETWORKS, type Network } from '../../domain/eligibility.js';
import type { PublishedConfig, PublishInput } from '../../network/network-config.service.js';
import { ACTOR, list, out, positiveInt, withAdmin, type Json } from './cli-support.js';

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
export function registerNetworkConfigCommands(admin: Command): void {
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
