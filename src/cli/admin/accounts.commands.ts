// `resultity admin` accounts, namespaces and API keys (gate/accounts-admin.service.ts,
// gate/api-keys-admin.service.ts); a new key's secret is printed once, at its creation.
import type { Command } from 'commander';
import { NETWORKS, type Network } from '../../domain/eligibility.js';
import { ACTOR, network, out, positiveInt, withAdmin, type Json } from './cli-support.js';

export function registerAccountCommands(admin: Command): void {
  admin
    .command('account-create <name>')
    .option('--json', 'JSON output')
    .description('create an account (consumer and/or node operator)')
    .action(async (name: string, opts: Json) => {
      const a = await withAdmin(({ accounts: s }) => s.createAccount(name));
      out(opts, a, `account ${a.id} (${a.name})`);
    });

  admin
    .command('namespace-create <accountId> <name>')
    .option('--network <network>', `the network its jobs run on: ${NETWORKS.join(' or ')}`, network, 'mainnet')
    .option('--json', 'JSON output')
    .description('create a namespace in an account')
    .action(async (accountId: string, name: string, opts: Json & { network: Network }) => {
      const ns = await withAdmin(({ accounts: s }) => s.createNamespace(accountId, name, opts.network));
      out(opts, ns, `namespace ${ns.id} (${ns.name}, ${ns.network})`);
    });

  admin
    .command('namespace-bind <namespaceId> <subcloud>')
    .option('--json', 'JSON output')
    .description("run a namespace's jobs on a subcloud's members only ('none' unbinds); applies to jobs accepted from now on")
    .action(async (namespaceId: string, subcloud: string, opts: Json) => {
      const ns = await withAdmin(({ eligibility: e }) => e.bindNamespace(namespaceId, subcloud === 'none' ? null : subcloud, ACTOR));
      out(opts, ns, `namespace ${ns.id}: ${ns.subcloud ? `bound to subcloud ${ns.subcloud}` : 'not bound to a subcloud'}`);
    });

  admin
    .command('key-issue <namespaceId>')
    .option('--name <name>', 'a label for the key')
    .option('--rps <n>', 'requests per second allowed (default: RATE_LIMIT_RPS)', positiveInt)
    .option('--burst <n>', 'burst size (default: RATE_LIMIT_BURST)', positiveInt)
    .option('--monthly-cap <credits>', 'credits the key may spend per calendar month (UTC)', Number)
    .option('--expires-at <iso-date>', 'when the key stops working, e.g. 2027-01-01T00:00:00Z', (v: string) => new Date(v))
    .option('--json', 'JSON output')
    .description('issue an API key for a namespace; the key is shown once')
    .action(async (namespaceId: string, opts: Json & { name?: string; rps?: number; burst?: number; monthlyCap?: number; expiresAt?: Date }) => {
      const { key, secret } = await withAdmin(({ apiKeys: s }) =>
        s.issueApiKey(namespaceId, { name: opts.name, rateLimitRps: opts.rps, rateLimitBurst: opts.burst, monthlyCapCredits: opts.monthlyCap, expiresAt: opts.expiresAt }),
      );
      out(opts, { ...key, key: secret }, `key ${key.id}\n${secret}\n(shown once: store it now)`);
    });

  admin
    .command('key-list <namespaceId>')
    .option('--json', 'JSON output')
    .description("a namespace's keys: prefix, limits, expiry, last use (never the secret)")
    .action(async (namespaceId: string, opts: Json) => {
      const keys = await withAdmin(({ apiKeys: s }) => s.listApiKeys(namespaceId));
      const text = keys.map((k) => `${k.id} ${k.key_prefix}... ${k.revoked_at ? 'revoked' : 'active'} last used ${k.last_used_at?.toISOString() ?? 'never'}`).join('\n');
      out(opts, keys, text || '(no keys)');
    });

  admin
    .command('key-rotate <keyId>')
    .option('--json', 'JSON output')
    .description('replace a key by a new one with the same settings (the old one stops at once); the new key is shown once')
    .action(async (keyId: string, opts: Json) => {
      const { key, secret } = await withAdmin(({ apiKeys: s }) => s.rotateApiKey(keyId));
      out(opts, { ...key, key: secret }, `key ${key.id} replaces ${keyId}\n${secret}\n(shown once: store it now)`);
    });

  admin
    .command('key-revoke <keyId>')
    .option('--json', 'JSON output')
    .description('revoke an API key (effective at once on every instance)')
    .action(async (keyId: string, opts: Json) => {
      await withAdmin(({ apiKeys: s }) => s.revokeApiKey(keyId));
      out(opts, { revoked: keyId }, `revoked ${keyId}`);
    });
}
