// A Redis server of a test's own (the machine's redis-server binary on a port of its own, no persistence),
// so that a test can kill and restart "Redis" without disturbing the test files sharing the machine's.
// A restart comes back empty, as a production Redis without persistence does: everything it held is
// rebuilt (DESIGN.md invariant 5).
import { spawn, type ChildProcess } from 'node:child_process';
import { accepting, freePort } from './ports.js';

export class PrivateRedis {
  private child: ChildProcess | null = null;

  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<PrivateRedis> {
    const r = new PrivateRedis(await freePort());
    await r.boot();
    return r;
  }

  /** Starts the server (again, on the same port) and waits until it accepts connections. */
  async boot(): Promise<void> {
    if (this.child) return;
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    this.child = child;
    child.once('exit', () => {
      if (this.child === child) this.child = null;
    });
    const end = Date.now() + 10_000;
    while (!(await accepting(this.port))) {
      if (Date.now() > end) throw new Error(`redis-server did not start on port ${this.port}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Kills the server at once (SIGKILL: no goodbye to its clients) and waits until it is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
    this.child = null;
  }
}
