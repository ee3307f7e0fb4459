// `resultity admin ...`: the admin services from the command line, talking to the engines directly (no
// running backbone needed). Every command takes --json for scripts; secrets are printed only where
// their creation is the point (a new API key, once). The commands are grouped by concept in cli/admin/;
// what they share (connecting, the admin services' wiring, output, option parsers) is cli/admin/cli-support.ts.
import type { Command } from 'commander';
import { registerSpaceCommand } from './space.command.js';
import { registerWebhookCommands } from './admin/webhooks.commands.js';
import { registerAccountCommands } from './admin/accounts.commands.js';
import { registerCreditCommands } from './admin/credits.commands.js';
import { registerModelCommands } from './admin/models.commands.js';
import { registerNodeCommands } from './admin/nodes.commands.js';
import { registerSubcloudCommands } from './admin/subclouds.commands.js';
import { registerNetworkConfigCommands } from './admin/network-config.commands.js';

export function registerAdminCommand(program: Command): void {
  const admin = program.command('admin').description('platform administration (talks to PostgreSQL, Redis and RabbitMQ directly)');
  registerWebhookCommands(admin);
  registerAccountCommands(admin);
  registerCreditCommands(admin);
  registerModelCommands(admin);
  registerSubcloudCommands(admin);
  registerNetworkConfigCommands(admin);
  registerNodeCommands(admin);
  registerSpaceCommand(program);
}
