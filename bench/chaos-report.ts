// The chaos run's report (RELIABILITY.md), rendered from what bench/chaos.ts measured and checked.
import type { SlotCheck } from './chaos-slots.js';

export const FAULT_KINDS = ['kill_cloud', 'kill_io', 'kill_scheduler', 'restart_redis', 'drop_nodes', 'restart_postgres', 'kill_maintenance', 'restart_ferretdb', 'restart_rabbitmq'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface Fault {
  kind: FaultKind;
  at: number;
  recoveryMs: number | null;
}

export interface ChaosReport {
  id: string;
  ids: number;
  submitted: number;
  modes: Record<string, number>;
  refused: Map<number, number>;
  outcomes: Map<string, number>;
  faults: Fault[];
  problems: string[];
  probes: number;
  clientGaveUp: number;
  slots: SlotCheck;
  wallMs: number;
}

export function renderReport(r: ChaosReport): string {
  const byKind = new Map<FaultKind, Fault[]>();
  for (const f of r.faults) byKind.set(f.kind, [...(byKind.get(f.kind) ?? []), f]);
  const ms = (xs: Array<number | null>) => {
    const ok = xs.filter((x): x is number => x !== null).sort((a, b) => a - b);
    if (!ok.length) return 'never';
    return `${(ok[Math.floor(ok.length / 2)]! / 1000).toFixed(1)} s median, ${(ok[ok.length - 1]! / 1000).toFixed(1)} s max${ok.length < xs.length ? `, ${xs.length - ok.length} never` : ''}`;
  };
  const lines = [
    '# Reliability: the chaos run',
    '',
    `Written by \`npm run chaos\` (bench/chaos.ts), run \`${r.id}\` on ${new Date().toISOString().slice(0, 10)}, ${(r.wallMs / 1000).toFixed(0)} s wall. Roles as separate`,
    'processes (2 cloud, 2 io, 2 scheduler, 1 maintenance, 1 gate+status) on engines the run starts itself; simulated',
    'nodes in a process of their own. Recovery: from the fault to the next probe job completed end to end; for a killed',
    'process this includes restarting it (its boot on a loaded two-core machine is most of the figure), for a restarted',
    'engine its own start. 402s are the racing namespace running out of credits, as intended.',
    '',
    `Result: **${r.problems.length ? 'FAILED' : 'every check held'}**.`,
    '',
    '## Jobs',
    '',
    '| | count |',
    '| --- | ---: |',
    `| submitted (sync ${r.modes.sync}, async ${r.modes.async}, streamed ${r.modes.stream}) | ${r.submitted} |`,
    `| accepted (a job id answered; includes ${r.probes} probes) | ${r.ids} |`,
    ...[...r.refused.entries()].map(([s, n]) => `| refused ${s}${s === 402 ? ' (credits: the racing namespace)' : ''} | ${n} |`),
    `| given up by the client (no answer within 120 s of retries) | ${r.clientGaveUp} |`,
    ...[...r.outcomes.entries()].sort().map(([k, n]) => `| ${k} | ${n} |`),
    '',
    '## Faults',
    '',
    '| fault | injected | recovery |',
    '| --- | ---: | --- |',
    ...[...byKind.entries()].map(([k, fs]) => `| ${k} | ${fs.length} | ${ms(fs.map((f) => f.recoveryMs))} |`),
    '',
    '## Checks',
    '',
    'At every recovery and at the end: the ledger sums to zero, no namespace overspent, no job charged twice. At the',
    'end: every accepted job has its row and a terminal state, every failed one a reason, every hold captured or released,',
    'no node slot held (a slot a fault leaked heals when a heartbeat drops reservations older than any attempt: waited for),',
    'and every readiness pool scores each node at its free slots.',
    '',
    `Node slots held when every job had ended: ${r.slots.heldAtDrain}${r.slots.heldAtDrain > 0 ? (r.slots.healedInMs === null ? `, ${r.slots.heldAtEnd} never returned` : `, all returned within ${(r.slots.healedInMs / 1000).toFixed(0)} s`) : ''}; readiness pool entries out of step: ${r.slots.inconsistentPools.length}.`,
    '',
    ...(r.problems.length ? r.problems.map((p) => `- FAILED: ${p}`) : ['- all held']),
    '',
  ];
  return lines.join('\n');
}
