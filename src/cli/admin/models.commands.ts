// `resultity admin` models: prices and requirements, tokenizers, usage bounds (gate/models-admin.service.ts).
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ACTOR, out, positiveInt, withAdmin, type Json } from './cli-support.js';

export function registerModelCommands(admin: Command): void {
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
        const m = await withAdmin(({ models: s }) =>
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

  admin
    .command('tokenizer-put <tokenizerJson>')
    .option('--config <file>', "the model's tokenizer_config.json")
    .option('--json', 'JSON output')
    .description("register a tokenizer (a Hugging Face tokenizer.json file) under the SHA-256 of its text, for model-usage-bound")
    .action(async (file: string, opts: Json & { config?: string }) => {
      const tokenizer = readFileSync(file, 'utf8');
      const config = opts.config ? (JSON.parse(readFileSync(opts.config, 'utf8')) as Record<string, unknown>) : {};
      const t = await withAdmin(({ models: s }) => s.putTokenizer(tokenizer, config));
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
      const m = await withAdmin(({ models: s }) => s.setUsageBound(name, { tokenizerSha256, maxTokensPerByte: opts.maxTokensPerByte }, ACTOR));
      out(opts, m, `${m.name}: tokenizer ${m.tokenizer_sha256 ?? 'none'}, at most ${m.max_tokens_per_byte} tokens per byte without one`);
    });
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
