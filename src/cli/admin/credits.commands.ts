// `resultity admin` credits and the ledger: top-ups, balances, usage reports, the ledger's totals and its
// daily hash chain (gate/credits-admin.service.ts, space/usage.service.ts, maintenance's ledger chain).
import type { Command } from 'commander';
import { formatCredits } from '../../errors.js';
import { out, withAdmin, type Json } from './cli-support.js';

export function registerCreditCommands(admin: Command): void {
  admin
    .command('credits-topup <namespaceId> <credits>')
    .option('--memo <text>', 'note kept with the ledger transaction')
    .option('--json', 'JSON output')
    .description('add credits to a namespace')
    .action(async (namespaceId: string, credits: string, opts: Json & { memo?: string }) => {
      const b = await withAdmin(({ credits: s }) => s.topUp(namespaceId, Number(credits), opts.memo));
      out(opts, b, `available ${formatCredits(b.available_micro)} credits, held ${formatCredits(b.held_micro)}`);
    });

  admin
    .command('balance <namespaceId>')
    .option('--json', 'JSON output')
    .description("a namespace's available and held credits")
    .action(async (namespaceId: string, opts: Json) => {
      const b = await withAdmin(({ credits: s }) => s.balance(namespaceId));
      out(opts, b, `available ${formatCredits(b.available_micro)} credits, held ${formatCredits(b.held_micro)}`);
    });

  admin
    .command('usage <namespaceId>')
    .option('--from <day>', 'first day, YYYY-MM-DD (UTC); default 29 days before --to')
    .option('--to <day>', 'last day, YYYY-MM-DD (UTC); default today')
    .option('--csv', 'CSV output')
    .option('--json', 'JSON output')
    .description("a namespace's usage by day, model and API key")
    .action(async (namespaceId: string, opts: Json & { from?: string; to?: string; csv?: boolean }) => {
      await withAdmin(async ({ credits, usage }) => {
        await credits.balance(namespaceId); // an unknown namespace is an error, not an empty report
        const report = await usage.report(namespaceId, { from: opts.from, to: opts.to });
        if (opts.csv) process.stdout.write(usage.toCsv(report.data, report.storage));
        else out(opts, report, report.data.map((r) => `${r.day} ${r.model} ${r.key_prefix}... ${r.requests} requests, ${r.credits_charged} credits`).join('\n') || '(no usage)');
      });
    });

  admin
    .command('ledger-total')
    .option('--json', 'JSON output')
    .description('sum over all ledger accounts (zero when the ledger balances)')
    .action(async (opts: Json) => {
      const t = await withAdmin(({ credits: s }) => s.ledgerTotals());
      out(opts, t, `entries total ${t.entriesTotal}, balances total ${t.balancesTotal}, mismatched accounts ${t.mismatchedAccounts}`);
      if (t.entriesTotal !== 0 || t.balancesTotal !== 0 || t.mismatchedAccounts !== 0) process.exitCode = 3;
    });

  admin
    .command('ledger-verify')
    .option('--json', 'JSON output')
    .description("recompute the ledger's daily hash chain and check it against the entries; names the first day that breaks (exit 3)")
    .action(async (opts: Json) => {
      const v = await withAdmin(({ ledgerChain }) => ledgerChain.verify());
      const range = v.first_day === null ? 'no chained days yet' : `${v.days_verified} day(s) verified from ${v.first_day}, head ${v.head_hash}`;
      out(opts, v, v.broken ? `BROKEN at ${v.broken.day}: ${v.broken.reason}\n${range}` : `ok: ${range}`);
      if (!v.ok) process.exitCode = 3;
    });
}
