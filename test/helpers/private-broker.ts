// A RabbitMQ node of a test's own, beside the machine's shared broker, so that a test can stop and
// restart "the broker" without disturbing the test files running at the same time. It is the same
// rabbitmq-server installation started under another node name, port, data directory and no plugins;
// its data directory survives a restart (durable queues and persistent messages are recovered from it,
// as in production), and is deleted by destroy().
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accepting, freePort } from './ports.js';
import { promisify } from 'node:util';

const run = promisify(execFile);
const RABBITMQ_BIN = '/usr/lib/rabbitmq/bin';

export class PrivateBroker {
  private constructor(
    readonly nodeName: string,
    readonly port: number,
    private readonly distPort: number,
    private readonly dir: string,
  ) {}

  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  static async start(name: string): Promise<PrivateBroker> {
    const dir = await mkdtemp(join(tmpdir(), 'rt-broker-'));
    await chmod(dir, 0o777); // the node runs as the rabbitmq user
    const port = await freePort();
    const broker = new PrivateBroker(`${name.replace(/[^A-Za-z0-9_]/g, '_')}@localhost`, port, await freePort(), dir);
    await writeFile(join(dir, 'rabbitmq.conf'), `listeners.tcp.local = 127.0.0.1:${port}\nloopback_users = none\n`);
    await writeFile(join(dir, 'enabled_plugins'), '[].\n');
    await broker.boot();
    return broker;
  }

  /** Starts the node (again) and waits until it accepts AMQP connections. */
  async boot(): Promise<void> {
    const env = [
      'HOME=/var/lib/rabbitmq',
      `RABBITMQ_NODENAME=${this.nodeName}`,
      `RABBITMQ_NODE_PORT=${this.port}`,
      `RABBITMQ_DIST_PORT=${this.distPort}`,
      `RABBITMQ_CONFIG_FILE=${join(this.dir, 'rabbitmq.conf')}`,
      `RABBITMQ_ENABLED_PLUGINS_FILE=${join(this.dir, 'enabled_plugins')}`,
      `RABBITMQ_MNESIA_BASE=${join(this.dir, 'mnesia')}`,
      `RABBITMQ_LOG_BASE=${join(this.dir, 'log')}`,
      `RABBITMQ_PID_FILE=${join(this.dir, 'pid')}`,
    ].join(' ');
    await this.asRabbitmq(`cd ${this.dir} && ${env} ${RABBITMQ_BIN}/rabbitmq-server -detached`);
    const until = Date.now() + 60_000;
    while (!(await accepting(this.port))) {
      if (Date.now() > until) throw new Error(`private RabbitMQ ${this.nodeName} did not start within 60 s (logs in ${this.dir}/log)`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Stops the whole node (the Erlang VM exits), as a broker restart or crash-and-recover does. */
  async stop(): Promise<void> {
    await this.asRabbitmq(`HOME=/var/lib/rabbitmq ${RABBITMQ_BIN}/rabbitmqctl -n ${this.nodeName} stop`);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.boot();
  }

  async destroy(): Promise<void> {
    await this.stop().catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }

  /** The node must run as the rabbitmq user (its Erlang cookie and the installation's file ownership). */
  private async asRabbitmq(command: string): Promise<void> {
    const isRabbitmq = process.getuid?.() !== 0;
    if (isRabbitmq) await run('/bin/sh', ['-c', command], { timeout: 90_000 });
    else await run('su', ['rabbitmq', '-s', '/bin/sh', '-c', command], { timeout: 90_000 });
  }
}
