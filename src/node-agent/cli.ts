// `resultity node keygen` and `resultity node run`: the operator-facing entry points of the node agent.
// The private key comes from --key or NODE_PRIVATE_KEY and is never printed or logged (only keygen prints
// the key it has just made, which is its purpose).
import { Command, InvalidArgumentError, Option } from 'commander';
import { pino, type Logger } from 'pino';
import { addressOf, generatePrivateKey } from '../domain/signatures.js';
import { MAX_GPU_MEMORY_MB, NETWORKS, type Network } from '../domain/eligibility.js';
import { startNodeAgent } from './agent.js';
import { OpenAICompatibleRuntime } from './runtime.openai.js';
import { CAPABILITIES, declaredCapabilitiesSchema, type Capability } from '../domain/capabilities.js';
import type { InferenceRuntime } from './runtime.js';
import { SimulatedRuntime } from './runtime.simulated.js';

interface RunOptions {
  gateway: string;
  key?: string;
  operator: string;
  enrolmentToken?: string;
  runtime: 'simulated' | 'openai';
  runtimeUrl?: string;
  runtimeCapabilities?: Capability[];
  runtimeApiKey?: string;
  models?: string[];
  modelVersions?: string[];
  capacity: number;
  network: Network;
  region?: string;
  gpu: string;
  gpuMemoryMb: number;
  latencyMs?: number;
  completionTokens?: number;
  networkAddress?: string;
  networkConfigFile?: string;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function registerNodeCommand(program: Command): void {
  const node = program.command('node').description('run a Resultity inference node (agent + runtime)');

  node
    .command('keygen')
    .description('make a new node key pair; the address is the node id')
    .option('--json', 'print {"privateKey","address"} as JSON')
    .action((options: { json?: boolean }) => {
      const privateKey = generatePrivateKey();
      const address = addressOf(privateKey);
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ privateKey, address })}\n`);
      } else {
        process.stdout.write(`private key: ${privateKey}\naddress:     ${address}\n`);
        process.stderr.write('Keep the private key secret; pass it to `node run` through NODE_PRIVATE_KEY.\n');
      }
    });

  node
    .command('run')
    .description('connect to a gateway and serve jobs until SIGINT/SIGTERM')
    .option('--gateway <url>', 'backbone base URL', 'http://127.0.0.1:8080')
    .addOption(new Option('--key <hex>', 'node private key (prefer the env variable: arguments show in ps)').env('NODE_PRIVATE_KEY'))
    .requiredOption('--operator <uuid>', 'operator account the node is bound to')
    .addOption(
      new Option('--enrolment-token <token>', "the operator's enrolment token for this node (unless the operator enrolled its address)").env('NODE_ENROLMENT_TOKEN'),
    )
    .addOption(new Option('--runtime <kind>', 'inference runtime').choices(['simulated', 'openai']).default('simulated'))
    .option('--runtime-url <url>', 'OpenAI-compatible API base, e.g. http://127.0.0.1:8000/v1 (openai runtime)')
    .addOption(new Option('--runtime-api-key <key>', 'API key for the runtime server (openai runtime)').env('RUNTIME_API_KEY'))
    .addOption(
      new Option('--runtime-capabilities <list>', `what the openai runtime's server can do beyond chat, declared to the network: ${CAPABILITIES.join(',')} (the simulated runtime declares all)`)
        .env('NODE_RUNTIME_CAPABILITIES')
        .argParser(parseCapabilities),
    )
    .option('--models <list>', 'comma-separated models to serve, each as name or name@version (required for simulated; openai: the runtime\'s list)', parseList)
    .addOption(new Option('--model-versions <list>', 'versions of models the runtime lists, as name@version,... (others run version 1)').env('NODE_MODEL_VERSIONS').argParser(parseList))
    .option('--capacity <n>', 'maximum concurrent jobs', parseInteger(1, 1024), 1)
    // Declared, not detected: jobs go to nodes by what they declare (network, region, GPU memory).
    .addOption(new Option('--network <network>', 'the network whose jobs this node takes').choices(NETWORKS).env('NODE_NETWORK').default('mainnet'))
    .addOption(new Option('--region <slug>', 'where the node runs, e.g. eu-west (jobs asking for a region go only to nodes of that region)').env('NODE_REGION'))
    .addOption(new Option('--gpu <class>', 'GPU class, e.g. rtx-4090 or a100-80gb (none without a GPU)').env('NODE_GPU').default('none'))
    .addOption(new Option('--gpu-memory-mb <n>', 'GPU memory in MiB (0 without a GPU)').env('NODE_GPU_MEMORY_MB').argParser(parseInteger(0, MAX_GPU_MEMORY_MB)).default(0))
    .option('--latency-ms <n>', 'simulated generation time per job', parseInteger(0, 3_600_000))
    .option('--completion-tokens <n>', 'simulated completion length', parseInteger(0, 1_000_000))
    .option('--network-address <0x..>', 'network key address; jobs not signed by it are refused')
    .addOption(
      new Option('--network-config-file <path>', 'where the last good network config is kept across restarts (default: memory only)').env('NODE_NETWORK_CONFIG_FILE'),
    )
    .action(async (_options: unknown, command: Command) => {
      const options = command.opts<RunOptions>();
      try {
        await runNode(options);
      } catch (err) {
        command.error(`node run: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
}

async function runNode(options: RunOptions): Promise<void> {
  if (!options.key) throw new Error('a node private key is required: --key or NODE_PRIVATE_KEY');
  const level = process.env.LOG_LEVEL ?? 'info';
  const logger = pino({ name: 'resultity-node', level: LOG_LEVELS.includes(level) ? level : 'info' });
  const { names, versions } = modelsAndVersions(options.models, options.modelVersions);
  const runtime = makeRuntime({ ...options, models: names });
  const agent = await startNodeAgent({
    gatewayUrl: options.gateway,
    privateKey: options.key,
    operator: options.operator,
    ...(options.enrolmentToken ? { enrolmentToken: options.enrolmentToken } : {}),
    runtime,
    models: names,
    modelVersions: versions,
    capacity: options.capacity,
    network: options.network,
    region: options.region ?? null,
    gpu: { name: options.gpu, memoryMb: options.gpuMemoryMb },
    networkAddress: options.networkAddress,
    networkConfigFile: options.networkConfigFile,
    logger,
  });
  logger.info({ nodeId: agent.nodeId, gateway: options.gateway, runtime: runtime.name }, 'node running');
  await untilSignalled(logger, () => agent.stop(), () => agent.kill());
}

function parseCapabilities(value: string): Capability[] {
  const parsed = declaredCapabilitiesSchema.safeParse(value.split(',').map((c) => c.trim()).filter(Boolean));
  if (!parsed.success) throw new InvalidArgumentError(`expected a comma-separated list of ${CAPABILITIES.join(', ')}, each once`);
  return parsed.data;
}

function makeRuntime(options: RunOptions): InferenceRuntime {
  switch (options.runtime) {
    case 'simulated':
      if (!options.models || options.models.length === 0) throw new Error('--models is required with the simulated runtime');
      return new SimulatedRuntime({ models: options.models, latencyMs: options.latencyMs, completionTokens: options.completionTokens });
    case 'openai':
      if (!options.runtimeUrl) throw new Error('--runtime-url is required with the openai runtime');
      return new OpenAICompatibleRuntime({ baseUrl: options.runtimeUrl, apiKey: options.runtimeApiKey, capabilities: options.runtimeCapabilities ?? [] });
  }
}

/** Resolves after the first SIGINT/SIGTERM has stopped the agent gracefully; a second signal kills it. */
function untilSignalled(logger: Logger, stop: () => Promise<void>, kill: () => void): Promise<void> {
  return new Promise<void>((resolve) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (signals > 1) {
        logger.warn({ signal }, 'second signal: stopping at once');
        kill();
        done();
        return;
      }
      logger.info({ signal }, 'stopping gracefully (send the signal again to stop at once)');
      stop().then(done, (err: unknown) => {
        logger.error({ err }, 'graceful stop failed');
        kill();
        done();
      });
    };
    const done = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/**
 * Splits `name@version` entries (of --models and --model-versions) into the model names to serve and the
 * version of each; a name without a version runs version 1. Syntax is checked when the agent starts.
 */
function modelsAndVersions(models: string[] | undefined, versionList: string[] | undefined): { names?: string[]; versions: Record<string, string> } {
  const versions: Record<string, string> = {};
  const split = (entry: string) => {
    const at = entry.indexOf('@');
    if (at < 0) return entry;
    const name = entry.slice(0, at);
    versions[name] = entry.slice(at + 1);
    return name;
  };
  for (const entry of versionList ?? []) {
    if (!entry.includes('@')) throw new Error(`--model-versions: expected name@version, got ${entry}`);
    split(entry);
  }
  return { names: models?.map(split), versions };
}

function parseList(value: string): string[] {
  const items = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new InvalidArgumentError('expected a comma-separated list');
  return items;
}

function parseInteger(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    }
    return n;
  };
}
