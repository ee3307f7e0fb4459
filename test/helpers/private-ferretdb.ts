// A FerretDB of a test's own, beside the one the suite shares, so that a test can stop "MongoDB" under a
// running backbone without disturbing the test files running at the same time. The same binary the suite
// runs (.bin/ferretdb, built by `npm test`), on a free port, storing in a PostgreSQL database of its own
// that destroy() drops.
import { spawn, type ChildProcess } from 'node:child_process';
import { accepting, freePort } from './ports.js';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const FERRETDB_BIN = fileURLToPath(new URL('../../../.bin/ferretdb', import.meta.url));
const POSTGRES = 'postgres://postgres@127.0.0.1:5432';

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: `${POSTGRES}/postgres` });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

export class PrivateFerretDb {
  private process: ChildProcess | null = null;

  private constructor(
    readonly storage: string,
    readonly port: number,
  ) {}

  /** The MongoDB URL of this server (no database). */
  get url(): string {
    return `mongodb://127.0.0.1:${this.port}/`;
  }

  static async start(name: string): Promise<PrivateFerretDb> {
    const storage = `${name}_ferretdb`;
    await admin(`CREATE DATABASE "${storage}"`);
    const f = new PrivateFerretDb(storage, await freePort());
    await f.boot();
    return f;
  }

  /** Starts the server (again; nothing when it runs) and waits until it accepts connections. */
  async boot(): Promise<void> {
    if (this.process && this.process.exitCode === null) return;
    const child = spawn(FERRETDB_BIN, ['-listen', `127.0.0.1:${this.port}`, '-postgresql-url', `${POSTGRES}/${this.storage}?pool_max_conns=5`, '-log-level', 'error'], {
      stdio: 'ignore',
    });
    this.process = child;
    const until = Date.now() + 30_000;
    while (!(await accepting(this.port))) {
      if (child.exitCode !== null) throw new Error(`private FerretDB exited with code ${child.exitCode}`);
      if (Date.now() > until) throw new Error('private FerretDB did not start within 30 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Kills the server (SIGKILL: a crash, not a shutdown) and waits for it to be gone. */
  async kill(): Promise<void> {
    const child = this.process;
    this.process = null;
    if (!child || child.exitCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
  }

  async destroy(): Promise<void> {
    await this.kill();
    await admin(`DROP DATABASE IF EXISTS "${this.storage}" WITH (FORCE)`);
  }
}
