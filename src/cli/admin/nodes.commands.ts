// `resultity admin` nodes and their operators: flags (network/node-flags.service.ts), enrolment, earnings
// and withdrawals (gate/operators.service.ts).
import type { Command } from 'commander';
import { formatCredits } from '../../errors.js';
import { ACTOR, boolean, out, positiveInt, withAdmin, type Json } from './cli-support.js';

export function registerNodeCommands(admin: Command): void {
  admin
    .command('node-flags <nodeId>')
    .option('--paused <bool>', 'true or false', boolean)
    .option('--frozen <bool>', 'true or false', boolean)
    .option('--shadow-banned <bool>', 'true or false (the node is not told)', boolean)
    .option('--cooldown <seconds>', 'no new jobs for this long (0 ends a cooldown)', positiveInt)
    .option('--reason <text>', 'kept with the flags')
    .option('--json', 'JSON output')
    .description("set a node's flags (effective on every instance at once); the others stay as they were")
    .action(async (nodeId: string, opts: Json & { paused?: boolean; frozen?: boolean; shadowBanned?: boolean; cooldown?: number; reason?: string }) => {
      const f = await withAdmin(({ nodeFlags: s }) =>
        s.set(nodeId, { paused: opts.paused, frozen: opts.frozen, shadowBanned: opts.shadowBanned, cooldownSeconds: opts.cooldown }, opts.reason, ACTOR),
      );
      out(opts, f, `${nodeId}: paused ${f.paused}, frozen ${f.frozen}, shadow-banned ${f.shadowBanned}, cooldown until ${f.cooldownUntil ? new Date(f.cooldownUntil).toISOString() : '-'}`);
    });

  admin
    .command('node-reinstate <nodeId>')
    .option('--json', 'JSON output')
    .description('clear every flag of a node')
    .action(async (nodeId: string, opts: Json) => {
      const f = await withAdmin(({ nodeFlags: s }) => s.reinstate(nodeId, 'reinstated', ACTOR));
      out(opts, f, `${nodeId}: reinstated`);
    });

  admin
    .command('node-enrol <accountId> <nodeAddress>')
    .option('--json', 'JSON output')
    .description("enrol a node's address to an operator account (the operator's consent to the node's binding)")
    .action(async (accountId: string, node: string, opts: Json) => {
      const e = await withAdmin(({ operators }) => operators.enrolNode(accountId, node));
      out(opts, e, `${e.node_id}: enrolled to operator ${e.operator_account_id}`);
    });

  admin
    .command('node-enrolment-token <accountId> <nodeAddress>')
    .option('--ttl-hours <hours>', 'how long the token is valid', '24')
    .option('--json', 'JSON output')
    .description('an enrolment token for one node address (needs NETWORK_SIGNING_KEY): the node registers with it, bound to this operator')
    .action(async (accountId: string, node: string, opts: Json & { ttlHours: string }) => {
      const t = await withAdmin(({ operators }) => operators.enrolmentToken(accountId, node, Number(opts.ttlHours)));
      out(opts, t, `${t.token}\n(node ${t.node_id}, valid until ${t.expires_at}; give it to the node: resultity node run --enrolment-token ...)`);
    });

  admin
    .command('operator-earnings <accountId>')
    .option('--from <day>', 'first day, YYYY-MM-DD (UTC)')
    .option('--to <day>', 'last day, YYYY-MM-DD (UTC)')
    .option('--json', 'JSON output')
    .description("an operator's earnings, pending withdrawals, and earnings by node and day")
    .action(async (accountId: string, opts: Json & { from?: string; to?: string }) => {
      const e = await withAdmin(({ operators }) => operators.earnings(accountId, { from: opts.from, to: opts.to }));
      out(opts, e, `earned ${e.earned} credits, pending withdrawal ${e.pending_withdrawal}\n${e.by_node_and_day.map((r) => `${r.day} ${r.node_id ?? '(job history rolled up)'} ${r.jobs} jobs ${r.earned}`).join('\n')}`);
    });

  admin
    .command('withdrawal-request <accountId> <credits> <destination>')
    .option('--json', 'JSON output')
    .description("record an operator's withdrawal request (a ledger hold on their earnings)")
    .action(async (accountId: string, credits: string, destination: string, opts: Json) => {
      const w = await withAdmin(({ operators }) => operators.requestWithdrawal(accountId, Number(credits), destination));
      out(opts, w, `withdrawal ${w.id} requested: ${formatCredits(w.amount_micro)} credits to ${w.destination}`);
    });

  admin
    .command('withdrawals-export')
    .option('--json', 'JSON output')
    .description('every withdrawal requested since the last export, as CSV for settlement (marks them exported)')
    .action(async (opts: Json) => {
      const batch = await withAdmin(({ operators }) => operators.exportWithdrawals());
      process.stdout.write(opts.json ? `${JSON.stringify(batch.rows)}\n` : batch.csv);
    });
}
