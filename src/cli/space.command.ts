// `resultity space ...`: Space for the platform operator (talks to PostgreSQL and MongoDB directly) and for a
// namespace's owner (`space export --api`, through the public API with the namespace's key): retention
// plans, pins, exports with a progress bar, and the rotation of the payload master key.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { pino, type Logger } from 'pino';
import { loadConfig, type Config } from '../config.js';
import { createPool, type Db } from '../postgres/db.js';
import { migrate } from '../postgres/migrate.js';
import { findNamespace } from '../postgres/accounts.repository.js';
import { countCompletedJobs } from '../postgres/job-search.repository.js';
import { connectMongo, type Mongo } from '../mongo/client.js';
import { PayloadsRepository } from '../mongo/payloads.repository.js';
import { RetentionService } from '../space/retention.service.js';
import { SpaceJobs } from '../space/space-jobs.service.js';
import { PayloadKeys } from '../space/payload-keys.service.js';
import { payloadKeysStore } from '../postgres/payload-keys.store.js';
import { retentionStore } from '../postgres/retention.store.js';
import { spaceJobsStore } from '../postgres/space-jobs.store.js';
import { exportLines, exportSchema } from '../space/job-search.http.js';

interface Space {
  config: Config;
  db: Db;
  logger: Logger;
  retention: RetentionService;
  jobs: SpaceJobs;
  payloads: PayloadsRepository;
  keys: PayloadKeys | null;
}

/** The Space services on the engines the environment names; MongoDB (MONGODB_URL) only when `mongo` is asked for. */
async function withSpace<T>(mongoNeeded: boolean, fn: (s: Space) => Promise<T>): Promise<T> {
  const config = loadConfig(process.env);
  const logger = pino({ level: config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL });
  if (mongoNeeded && !config.MONGODB_URL) throw new Error('MONGODB_URL is required by this command (the MongoDB or FerretDB the backbone uses)');
  await migrate(config.DATABASE_URL, logger);
  const db = createPool(config.DATABASE_URL, 2);
  let mongo: Mongo | null = null;
  try {
    mongo = mongoNeeded ? await connectMongo(config.MONGODB_URL!) : null;
    const keys = config.PAYLOAD_MASTER_KEYS ? new PayloadKeys({ store: payloadKeysStore(db), masterKeys: config.PAYLOAD_MASTER_KEYS, logger }) : null;
    // Plan commands never touch MongoDB: their repository is one no command here calls without it.
    const payloads = new PayloadsRepository(mongo?.db ?? (null as never), keys);
    const retention = new RetentionService({ store: retentionStore(db), payloads, standardHours: config.PAYLOAD_RETENTION_HOURS, maxDays: config.SPACE_MAX_RETENTION_DAYS, priceMicroPerGibDay: config.SPACE_PRICE_MICRO_PER_GIB_DAY, logger });
    const jobs = new SpaceJobs({ store: spaceJobsStore(db), payloads, encrypted: keys !== null, logger });
    return await fn({ config, db, logger, retention, jobs, payloads, keys });
  } finally {
    await mongo?.client.close();
    await db.end();
  }
}

const print = (json: boolean | undefined, value: unknown, text: string) => process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${text}\n`);

/** A progress bar on stderr (stdout may be the export itself); `total` 0 when unknown. */
function progressBar(label: string, total: number): cliProgress.SingleBar {
  const bar = new cliProgress.SingleBar({ stream: process.stderr, format: ` ${label} [{bar}] {value}/{total} jobs`, hideCursor: true, noTTYOutput: false }, cliProgress.Presets.shades_classic);
  bar.start(total, 0);
  return bar;
}

/** Writes lines to `out`, counting each on the bar, waiting on the stream's backpressure (constant memory). */
async function pump(lines: AsyncIterable<string>, out: Writable, bar: cliProgress.SingleBar, isRecord: (line: string) => boolean): Promise<number> {
  let n = 0;
  for await (const line of lines) {
    if (!out.write(line)) await once(out, 'drain');
    if (isRecord(line)) {
      n++;
      if (n > bar.getTotal()) bar.setTotal(n);
      bar.increment();
    }
  }
  return n;
}

async function finish(out: Writable): Promise<void> {
  if (out === process.stdout) return;
  out.end();
  await once(out, 'finish');
}

type ExportOpts = { format?: string; since?: string; until?: string; out?: string; api?: string };

export function registerSpaceCommand(program: Command): void {
  const space = program.command('space').description('Space: retention plans, pins, exports, payload key rotation');

  space
    .command('plan-show <namespaceId>')
    .option('--json', 'JSON output')
    .description("a namespace's retention plan, its events and daily meterings")
    .action(async (namespaceId: string, opts: { json?: boolean }) => {
      await withSpace(false, async (s) => {
        const v = await s.retention.view(namespaceId);
        print(opts.json, v, `${v.retention_plan}${v.retention_days ? ` (${v.retention_days} days)` : ''}: payloads kept ${v.retention_hours} h; ${v.meterings.length} metered day(s), ${v.events.length} event(s)`);
      });
    });

  space
    .command('plan-set <namespaceId> <plan>')
    .option('--days <n>', 'days kept, for the extended plan', (v) => Number(v))
    .option('--json', 'JSON output')
    .description('sets a retention plan (zero, standard, extended --days n) for payloads written from now on')
    .action(async (namespaceId: string, plan: string, opts: { days?: number; json?: boolean }) => {
      await withSpace(false, async (s) => {
        const v = await s.retention.setPlan(namespaceId, plan, opts.days ?? null, 'admin');
        print(opts.json, v, `${v.retention_plan}${v.retention_days ? ` (${v.retention_days} days)` : ''}: payloads written from now on are kept ${v.retention_hours} h`);
      });
    });

  space
    .command('pin <namespaceId> <jobId>')
    .option('--json', 'JSON output')
    .description('keeps a finished job past its plan (metered per GiB-day)')
    .action(async (namespaceId: string, jobId: string, opts: { json?: boolean }) => {
      await withSpace(true, async (s) => {
        const v = await s.jobs.pin(namespaceId, jobId);
        print(opts.json, v, `pinned ${jobId} (${v.bytes} bytes)`);
      });
    });

  space
    .command('unpin <namespaceId> <jobId>')
    .option('--json', 'JSON output')
    .description("releases a pin (the job's original documents keep their plan's days)")
    .action(async (namespaceId: string, jobId: string, opts: { json?: boolean }) => {
      await withSpace(true, async (s) => print(opts.json, await s.jobs.unpin(namespaceId, jobId), `unpinned ${jobId}`));
    });

  space
    .command('pins <namespaceId>')
    .option('--json', 'JSON output')
    .description("a namespace's pinned jobs")
    .action(async (namespaceId: string, opts: { json?: boolean }) => {
      await withSpace(false, async (s) => {
        const pins = await s.jobs.list(namespaceId);
        print(opts.json, pins, pins.map((p) => `${p.job_id} ${p.bytes} bytes, pinned ${p.pinned_at.toISOString()}`).join('\n') || '(no pins)');
      });
    });

  space
    .command('export [namespaceId]')
    .option('--format <f>', 'ndjson or csv', 'ndjson')
    .option('--since <time>', 'jobs created from (ISO 8601 or Unix seconds)')
    .option('--until <time>', 'jobs created before (ISO 8601 or Unix seconds)')
    .option('--out <file>', 'write here (default: standard output)')
    .option('--api <url>', "as the namespace's owner: through this backbone's public API, with the key in RESULTITY_API_KEY")
    .description("streams a namespace's retained jobs with their payloads, with a progress bar on standard error")
    .action(async (namespaceId: string | undefined, opts: ExportOpts) => {
      const query = exportSchema.parse({ format: opts.format, ...(opts.since ? { since: opts.since } : {}), ...(opts.until ? { until: opts.until } : {}) });
      const out: Writable = opts.out ? createWriteStream(opts.out) : process.stdout;
      const isRecord = (line: string) => query.format === 'ndjson' || !line.startsWith('job_id,');
      if (opts.api) {
        const n = await exportThroughApi(opts, out, isRecord);
        process.stderr.write(`exported ${n} job result(s)\n`);
        return;
      }
      if (!namespaceId) throw new Error('a namespace id is required (or --api with RESULTITY_API_KEY)');
      await withSpace(true, async (s) => {
        if (!(await findNamespace(s.db, namespaceId))) throw new Error(`namespace ${namespaceId} not found`);
        const bar = progressBar('export', await countCompletedJobs(s.db, namespaceId, query));
        try {
          const n = await pump(exportLines(s.payloads, namespaceId, query), out, bar, isRecord);
          await finish(out);
          bar.stop();
          process.stderr.write(`exported ${n} job result(s)\n`);
        } catch (err) {
          bar.stop();
          throw err;
        }
      });
    });

  space
    .command('rewrap-keys')
    .description('re-wraps every namespace key under the highest PAYLOAD_MASTER_KEYS version (rotation; payloads are not re-encrypted)')
    .action(async () => {
      await withSpace(false, async (s) => {
        if (!s.keys) throw new Error('PAYLOAD_MASTER_KEYS is required: the new version and every version still wrapping a key');
        const n = await s.keys.rewrapAll((done) => process.stderr.write(`re-wrapped ${done}\n`));
        process.stdout.write(`re-wrapped ${n} namespace key(s) under master key version ${Math.max(...s.config.PAYLOAD_MASTER_KEYS!.keys())}\n`);
      });
    });
}

/** The owner's export: GET /v1/jobs/export with the namespace's key, its total from GET /v1/jobs is unknown, so the bar counts. */
async function exportThroughApi(opts: ExportOpts, out: Writable, isRecord: (line: string) => boolean): Promise<number> {
  const key = process.env.RESULTITY_API_KEY;
  if (!key) throw new Error('RESULTITY_API_KEY is required with --api');
  const url = new URL('/v1/jobs/export', opts.api);
  url.searchParams.set('format', opts.format ?? 'ndjson');
  if (opts.since) url.searchParams.set('since', opts.since);
  if (opts.until) url.searchParams.set('until', opts.until);
  const res = await fetch(url, { headers: { authorization: `Bearer ${key}` } });
  if (!res.ok || !res.body) throw new Error(`export refused: HTTP ${res.status} ${await res.text()}`);
  const bar = progressBar('export', 0);
  try {
    const n = await pump(linesOf(res.body), out, bar, isRecord);
    await finish(out);
    return n;
  } finally {
    bar.stop();
  }
}

/** A byte stream's lines (each with its line end), a chunk at a time. */
async function* linesOf(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let rest = '';
  for await (const chunk of body) {
    rest += decoder.decode(chunk, { stream: true });
    let at: number;
    while ((at = rest.indexOf('\n')) >= 0) {
      yield rest.slice(0, at + 1);
      rest = rest.slice(at + 1);
    }
  }
  rest += decoder.decode();
  if (rest) yield rest;
}
