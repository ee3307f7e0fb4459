// Starts the repository's embedded FerretDB (ferretdb/, built to .bin/ferretdb) as a child process, for
// machines without MongoDB. Its storage is a PostgreSQL database of its own on the same server as
// DATABASE_URL. With MONGODB_URL set, none of this runs.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { ensureDatabase } from '../postgres/migrate.js';

export const FERRETDB_BINARY = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../.bin/ferretdb');

export interface EmbeddedFerret {
  url: string;
  stop(): Promise<void>;
}

/** The FerretDB storage database: `<db>_ferretdb` beside DATABASE_URL's database. */
export function ferretStorageUrl(databaseUrl: string): string {
  const u = new URL(databaseUrl);
  u.pathname = `/${decodeURIComponent(u.pathname.slice(1)) || 'resultity'}_ferretdb`;
  return u.toString();
}

export async function startFerretDB(opts: { databaseUrl: string; port: number; logger: Logger }): Promise<EmbeddedFerret> {
  const url = `mongodb://127.0.0.1:${opts.port}/resultity`;
  if (await isListening(opts.port)) {
    opts.logger.info({ url }, 'a MongoDB-compatible server already listens there; using it');
    return { url, stop: async () => undefined };
  }
  if (!existsSync(FERRETDB_BINARY)) {
    throw new Error(`FerretDB is not built: run \`(cd ferretdb && go build -o ../.bin/ferretdb .)\`, or set MONGODB_URL to a MongoDB server`);
  }
  const storage = ferretStorageUrl(opts.databaseUrl);
  await ensureDatabase(storage);
  // Its PostgreSQL pool is capped below pgx's default of 50, leaving the server's connections to the backbone.
  const poolUrl = `${storage}${storage.includes('?') ? '&' : '?'}pool_max_conns=20`;
  const child = spawn(FERRETDB_BINARY, ['-listen', `127.0.0.1:${opts.port}`, '-postgresql-url', poolUrl, '-log-level', 'error'], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  await waitForPort(opts.port, child, 15_000);
  opts.logger.info({ url, pid: child.pid }, 'embedded FerretDB started');
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`FerretDB exited with code ${child.exitCode} at start`);
    if (await isListening(port)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`FerretDB did not listen on port ${port} within ${timeoutMs} ms`);
}
