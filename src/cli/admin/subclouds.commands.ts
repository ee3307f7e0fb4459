// `resultity admin subcloud-*`: node groups with their own policy (network/eligibility.service.ts).
import type { Command } from 'commander';
import { NETWORKS, type Network } from '../../domain/eligibility.js';
import type { SubcloudView } from '../../network/eligibility.service.js';
import { ACTOR, boolean, list, network, out, positiveInt, withAdmin, type Json } from './cli-support.js';

function describeSubcloud(s: SubcloudView): string {
  const models = s.allowed_models.length > 0 ? s.allowed_models.join(',') : 'all models';
  return `subcloud ${s.name} (${s.network}${s.isolate ? ', isolated' : ''}): ${models}, GPU memory >= ${s.min_gpu_memory_mb} MiB, ${s.members.length} members, ${s.namespaces} namespaces`;
}

type SubcloudOptions = Json & { allowedModels?: string[]; minGpuMemoryMb?: number; isolate?: boolean };

/** `subcloud-*`: node groups with their own policy (see network/eligibility.service.ts). */
export function registerSubcloudCommands(admin: Command): void {
  const policyOptions = (c: Command) =>
    c
      .option('--allowed-models <list>', "comma-separated models its members serve for it ('' for all)", list)
      .option('--min-gpu-memory-mb <n>', 'least GPU memory (MiB) a member needs to take its jobs', positiveInt)
      .option('--isolate <bool>', 'true: its members serve only its jobs', boolean)
      .option('--json', 'JSON output');

  policyOptions(admin.command('subcloud-create <name>').requiredOption('--network <network>', NETWORKS.join(' or '), network))
    .description('create a subcloud (its network is fixed from then on)')
    .action(async (name: string, opts: SubcloudOptions & { network: Network }) => {
      const s = await withAdmin(({ eligibility: e }) => e.create(name, opts.network, { allowedModels: opts.allowedModels, minGpuMemoryMb: opts.minGpuMemoryMb, isolate: opts.isolate }, ACTOR));
      out(opts, s, describeSubcloud(s));
    });

  policyOptions(admin.command('subcloud-update <name>'))
    .description("change a subcloud's policy (the options given); effective at the next reservation")
    .action(async (name: string, opts: SubcloudOptions) => {
      const s = await withAdmin(({ eligibility: e }) => e.update(name, { allowedModels: opts.allowedModels, minGpuMemoryMb: opts.minGpuMemoryMb, isolate: opts.isolate }, ACTOR));
      out(opts, s, describeSubcloud(s));
    });

  admin
    .command('subcloud-delete <name>')
    .option('--json', 'JSON output')
    .description('delete a subcloud and its memberships (no namespace may be bound to it)')
    .action(async (name: string, opts: Json) => {
      await withAdmin(({ eligibility: e }) => e.delete(name, ACTOR));
      out(opts, { deleted: name }, `deleted subcloud ${name}`);
    });

  admin
    .command('subcloud-list')
    .option('--json', 'JSON output')
    .description('every subcloud with its policy and members')
    .action(async (opts: Json) => {
      const all = await withAdmin(({ eligibility: e }) => e.list());
      out(opts, all, all.map((s) => `${describeSubcloud(s)}\n  members: ${s.members.join(' ') || '-'}`).join('\n') || '(no subclouds)');
    });

  for (const [verb, description] of [
    ['add', 'make a node a member of a subcloud'],
    ['remove', 'remove a node from a subcloud'],
  ] as const) {
    admin
      .command(`subcloud-member-${verb} <name> <nodeId>`)
      .option('--json', 'JSON output')
      .description(description)
      .action(async (name: string, nodeId: string, opts: Json) => {
        const s = await withAdmin(({ eligibility: e }) => (verb === 'add' ? e.addMember(name, nodeId, ACTOR) : e.removeMember(name, nodeId, ACTOR)));
        out(opts, s, describeSubcloud(s));
      });
  }
}
