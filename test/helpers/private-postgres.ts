// A PostgreSQL cluster of a run's own (the chaos run, bench/chaos.ts): the machine's binaries, a temporary
// directory, a free port; crashable (an immediate stop) and restartable, never the machine's own server.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports.js';

const run = promisify(execFile);

export class PrivatePostgres {
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly bin: string,
  ) {}
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}`;
  }
  static async start(): Promise<PrivatePostgres> {
    const bin = '/usr/lib/postgresql/15/bin';
    const dir = await mkdtemp(join(tmpdir(), 'resultity-chaos-pg-'));
    if (process.getuid?.() === 0) await run('chown', ['postgres', dir]);
    const p = new PrivatePostgres(dir, await freePort(), bin);
    await p.asPostgres(`${bin}/initdb`, ['-D', join(dir, 'data'), '-U', 'postgres', '-A', 'trust']);
    await p.boot();
    return p;
  }
  async boot(): Promise<void> {
    await this.asPostgres(`${this.bin}/pg_ctl`, ['-D', join(this.dir, 'data'), '-l', join(this.dir, 'log'), '-w', '-o', `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c max_connections=200`, 'start']);
  }
  /** A restart as an operator does it (`fast`: every session is told the server is shutting down, then cut). */
  async restart(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.asPostgres(`${this.bin}/pg_ctl`, ['-D', join(this.dir, 'data'), '-l', join(this.dir, 'log'), '-m', mode, '-w', 'restart']);
  }
  /** A clean stop (`fast`), for an outage that lasts until boot(). */
  async stop(): Promise<void> {
    await this.asPostgres(`${this.bin}/pg_ctl`, ['-D', join(this.dir, 'data'), '-m', 'fast', '-w', 'stop']);
  }
  /** An immediate stop: no checkpoint, crash recovery on the next start. */
  async crash(): Promise<void> {
    await this.asPostgres(`${this.bin}/pg_ctl`, ['-D', join(this.dir, 'data'), '-m', 'immediate', '-w', 'stop']);
  }
  async destroy(): Promise<void> {
    await this.asPostgres(`${this.bin}/pg_ctl`, ['-D', join(this.dir, 'data'), '-m', 'fast', '-w', 'stop']).catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
  private async asPostgres(cmd: string, args: string[]): Promise<void> {
    if (process.getuid?.() === 0) await run('runuser', ['-u', 'postgres', '--', cmd, ...args], { timeout: 60_000 });
    else await run(cmd, args, { timeout: 60_000 });
  }
}

