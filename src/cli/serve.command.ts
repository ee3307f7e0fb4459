// `resultity serve`: validate the configuration, check the engines (saying what to run when one is
// down), start the embedded FerretDB unless MONGODB_URL names a MongoDB, migrate, and serve.
import type { Logger } from 'pino';
import { createLogger } from '../common/logger.js';
import { loadConfig, needsFor, type Config, type Role } from '../config.js';
import { createBackbone, type Backbone, type BackboneOptions } from '../app.js';
import { startFerretDB, type EmbeddedFerret } from './ferretdb.launcher.js';
import { checkEngines } from './engines.js';

export const EMBEDDED_FERRETDB_PORT = 27017;

export interface Serving {
  backbone: Backbone;
  url: string;
  config: Config;
  logger: Logger;
  /** Registers cleanup to run (in reverse order) before the process exits on SIGINT/SIGTERM. */
  onShutdown: (fn: () => Promise<void>) => void;
}

export async function runServe(roles: readonly Role[], options: Pick<BackboneOptions, 'republishForeignConfig'> = {}): Promise<Serving> {
  const config = loadConfig(process.env, needsFor(roles));
  const logger = createLogger(config.LOG_LEVEL);
  const problems = await checkEngines(config);
  if (problems.length > 0) {
    process.stderr.write(`resultity: engines not ready:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
    process.exit(1);
  }
  let ferret: EmbeddedFerret | null = null;
  if (!config.MONGODB_URL) ferret = await startFerretDB({ databaseUrl: config.DATABASE_URL, port: EMBEDDED_FERRETDB_PORT, logger });
  const mongoUrl = config.MONGODB_URL ?? ferret!.url;

  const backbone = await createBackbone({ ...options, config, roles, logger, mongoUrl });
  const url = await backbone.listen();

  const cleanups: Array<() => Promise<void>> = [() => backbone.close(), async () => ferret?.stop()];
  let shuttingDown = false;
  const shutdown = (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info({ signal }, 'shutting down');
    (async () => {
      for (const fn of cleanups) await fn().catch((err: unknown) => logger.error({ err }, 'shutdown step failed'));
    })()
      .then(() => process.exit(0))
      .catch(() => process.exit(1));
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  return { backbone, url, config, logger, onShutdown: (fn) => cleanups.unshift(fn) };
}
