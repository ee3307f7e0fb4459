// `resultity`: the one executable. Subcommands: serve, migrate, admin, snapshot, node, demo.
import { Command, InvalidArgumentError } from 'commander';
import { pino } from 'pino';
import { ConfigError, loadConfig, parseRoles, ROLES } from '../config.js';
import { registerNodeCommand } from '../node-agent/cli.js';
import { registerAdminCommand } from './admin.command.js';
import { registerSnapshotCommand } from './snapshot.command.js';
import { runDemo } from './demo.command.js';
import { runServe } from './serve.command.js';
import { migrate } from '../postgres/migrate.js';

const program = new Command()
  .name('resultity')
  .description('Resultity backbone: OpenAI-compatible API, node gateway, scheduler and admin for a decentralized inference network')
  .showHelpAfterError();

program
  .command('serve')
  .description('run the backbone (all roles by default) on one HTTP port')
  .option('--roles <list>', `comma-separated roles: ${ROLES.join(',')}`, (v) => parseRolesOption(v), [...ROLES])
  .option('--demo', 'also create a demo namespace with credits and a key, start two simulated nodes, and print how to call it')
  .action(async (opts: { roles: (typeof ROLES)[number][]; demo?: boolean }) => {
    if (opts.demo) await runDemo(opts.roles);
    else await runServe(opts.roles);
  });

program
  .command('demo')
  .description('same as `serve --demo`')
  .action(async () => runDemo([...ROLES]));

program
  .command('migrate')
  .description('create the database if needed and apply pending migrations')
  .action(async () => {
    const config = loadConfig(process.env);
    const logger = pino({ level: config.LOG_LEVEL });
    const applied = await migrate(config.DATABASE_URL, logger);
    process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
  });

registerAdminCommand(program);
registerSnapshotCommand(program);
registerNodeCommand(program);

function parseRolesOption(v: string) {
  try {
    return parseRoles(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`resultity: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`resultity: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
