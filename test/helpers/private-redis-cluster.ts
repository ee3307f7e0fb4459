// A Redis Cluster of a test's own: three masters (the machine's redis-server, cluster mode, no persistence)
// on free loopback ports, joined by `redis-cli --cluster create` so that the 16384 slots are spread over
// them. Torn down by `stop()`, which also removes the nodes' cluster config files.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { accepting, freePort } from './ports.js';

const run = promisify(execFile);

export class PrivateRedisCluster {
  private constructor(
    readonly ports: readonly number[],
    private readonly children: ChildProcess[],
    private readonly dir: string,
  ) {}

  /** The masters' addresses, as ioredis's Cluster takes them. */
  get startupNodes(): Array<{ host: string; port: number }> {
    return this.ports.map((port) => ({ host: '127.0.0.1', port }));
  }

  static async start(masters = 3): Promise<PrivateRedisCluster> {
    const dir = await mkdtemp(join(tmpdir(), 'resultity-redis-cluster-'));
    const ports: number[] = [];
    const children: ChildProcess[] = [];
    const cluster = new PrivateRedisCluster(ports, children, dir);
    try {
      for (let i = 0; i < masters; i++) {
        const port = await freePort();
        const busPort = await freePort();
        ports.push(port);
        // Each node its own directory: the cluster config file (nodes.conf) is per node.
        const nodeDir = await mkdtemp(join(dir, `n${i}-`));
        children.push(
          spawn('redis-server', ['--port', String(port), '--cluster-port', String(busPort), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--dir', nodeDir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' }),
        );
      }
      for (const port of ports) {
        const end = Date.now() + 10_000;
        while (!(await accepting(port))) {
          if (Date.now() > end) throw new Error(`redis-server (cluster) did not start on port ${port}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
      // The slots are assigned; wait until every node agrees the cluster is up.
      const end = Date.now() + 20_000;
      for (const port of ports) {
        for (;;) {
          const { stdout } = await run('redis-cli', ['-p', String(port), 'cluster', 'info'], { timeout: 5_000 });
          if (/cluster_state:ok/.test(stdout)) break;
          if (Date.now() > end) throw new Error(`the cluster did not come up: ${stdout}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      return cluster;
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGKILL');
          }),
      ),
    );
    await rm(this.dir, { recursive: true, force: true });
  }
}
