// Rendering the fleet benchmark (bench/fleet.ts): a terminal summary and its section of BENCHMARKS.md.
import type { Placement } from '../src/domain/eligibility.js';
import type { GatewaySample } from './fleet-gateway.js';
import type { ConnectResult, WindowStats } from './fleet-generator.js';
import { quantile, type Usage } from './load.js';
import type { Host } from './machine.js';
import { cpuList } from './report.js';
import type { SignatureRates } from './signature-rates.js';

/** Its section's name in BENCHMARKS.md (see writeSection in report.ts). */
export const FLEET_SECTION = 'fleet';

export interface RedisBenchmarkRow {
  label: string;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface FleetReport {
  startedAt: Date;
  finishedAt: Date;
  host: Host;
  redis: string;
  fdLimit: { soft: number; hard: number };
  params: {
    nodes: number;
    generators: number;
    connectConcurrency: number;
    windowS: number;
    reservations: number;
    blocks: number;
    heartbeatIntervalMs: number;
    heartbeatTtlMs: number;
    registerAttempts: number;
    registerTimeoutMs: number;
    stallS: number;
    connectBudgetS: number;
  };
  /** The libraries' bare costs on one core, measured at the start of the run (bench/signature-rates.ts). */
  signatures: SignatureRates;
  /** The gateway's verify pool (0: signatures checked on its event loop). */
  verifyThreads: number;
  keygenMs: number;
  connect: ConnectResult;
  /** Why the registration phase ended before every node was tried, or null. */
  stoppedBecause: string | null;
  memory: { baseline: GatewaySample; loaded: GatewaySample; after: GatewaySample };
  window: { generators: WindowStats[]; gateway: { start: GatewaySample; end: GatewaySample }; usage: Usage };
  placement: Placement;
  /** Nodes in the readiness pool the reservations searched, when the window opened. */
  poolSize: number;
  /** Sorted latencies, ms. */
  latencies: { reserve: Float64Array; release: Float64Array; evalsha: Float64Array; zadd: Float64Array; noNode: number };
  redisBenchmark: RedisBenchmarkRow[];
  problems: string[];
  interrupted: boolean;
}

const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '-');
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '-');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');
const ms = (n: number) => (!Number.isFinite(n) ? '-' : n < 1 ? n.toFixed(3) : n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0));
const ratio = (a: number, b: number) => (b > 0 && Number.isFinite(a) ? (a / b).toFixed(a / b >= 10 ? 0 : 1) : '-');
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
const kib = (bytes: number) => (bytes / 1024).toFixed(1);
const int = (n: number) => n.toLocaleString('en-US');

/** The derived figures both renderings use. */
function figures(r: FleetReport) {
  const w = r.window;
  const windowS = Math.min(...w.generators.map((g) => g.windowMs)) / 1000;
  const sum = (pick: (g: WindowStats) => number) => w.generators.reduce((s, g) => s + pick(g), 0);
  const merged = (pick: (g: WindowStats) => Float64Array) => {
    const all = new Float64Array(sum((g) => pick(g).length));
    let at = 0;
    for (const g of w.generators) {
      all.set(pick(g), at);
      at += pick(g).length;
    }
    return all.sort();
  };
  const seconds = Array.from({ length: Math.min(...w.generators.map((g) => g.ackedPerSecond.length)) }, (_, i) => sum((g) => g.ackedPerSecond[i] ?? 0));
  const counts = (pick: (g: WindowStats) => Record<string, number>) => {
    const out: Record<string, number> = {};
    for (const g of w.generators) for (const [k, v] of Object.entries(pick(g))) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  const gw = w.gateway;
  const gwSeconds = (gw.end.at - gw.start.at) / 1000;
  const dActive = gw.end.loop.active - gw.start.loop.active;
  const dIdle = gw.end.loop.idle - gw.start.loop.idle;
  const registered = r.connect.registered;
  const acked = sum((g) => g.acked);
  const m = r.memory;
  return {
    windowS,
    registered,
    offeredPerS: registered / (r.params.heartbeatIntervalMs / 1000),
    sentPerS: sum((g) => g.sent) / windowS,
    ackedPerS: acked / windowS,
    acked,
    seconds: Float64Array.from(seconds).sort(),
    /** Acks per second of the window, in order. */
    series: seconds,
    ackLatency: merged((g) => g.ackLatencyMs),
    late: merged((g) => g.lateMs),
    refused: counts((g) => g.refused),
    closes: counts((g) => g.closes),
    pongsMissed: sum((g) => g.pongsMissed),
    openAtEnd: sum((g) => g.open),
    gatewayCores: (gw.end.cpuMicros - gw.start.cpuMicros) / 1e6 / gwSeconds,
    /** Heartbeats acknowledged per second of gateway CPU (all its threads): what one gateway core sustains. */
    perGatewayCore: acked / windowS / ((gw.end.cpuMicros - gw.start.cpuMicros) / 1e6 / gwSeconds),
    /** Bare verifications per second of one core, the chosen library (libsecp256k1 in WebAssembly). */
    bareVerifyPerS: 1000 / r.signatures.wasm.verifyMs,
    gatewayElu: dActive / Math.max(1e-9, dActive + dIdle),
    generatorCores: sum((g) => g.cpuCores),
    generatorElu: w.generators.map((g) => g.elu),
    perNode: {
      rss: (m.loaded.rssBytes - m.baseline.rssBytes) / registered,
      heap: (m.loaded.heapUsedBytes - m.baseline.heapUsedBytes) / registered,
      external: (m.loaded.externalBytes + m.loaded.arrayBuffersBytes - m.baseline.externalBytes - m.baseline.arrayBuffersBytes) / registered,
    },
  };
}

function latencyRows(r: FleetReport): Array<{ label: string; n: number; p50: number; p99: number; max: number }> {
  const row = (label: string, xs: Float64Array) => ({ label, n: xs.length, p50: quantile(xs, 0.5), p99: quantile(xs, 0.99), max: quantile(xs, 1) });
  const l = r.latencies;
  return [
    row('reserve (PresenceRepository.reserve, RESERVE script)', l.reserve),
    row('release (PresenceRepository.release, RELEASE script)', l.release),
    row('raw EVALSHA `return 1` (ioredis)', l.evalsha),
    row('raw ZADD (ioredis)', l.zadd),
  ];
}

const bench = (r: FleetReport, label: string) => r.redisBenchmark.find((b) => b.label === label);

export function renderFleetTable(r: FleetReport): string {
  const f = figures(r);
  const lines = [
    `fleet: ${int(f.registered)} of ${int(r.params.nodes)} nodes registered in ${f1(r.connect.ms / 1000)} s (${f0(f.registered / (r.connect.ms / 1000))}/s), ${r.connect.failed} failed, ${r.connect.retries} retries`,
    `heartbeats over ${f0(f.windowS)} s: offered ${f0(f.offeredPerS)}/s, sent ${f0(f.sentPerS)}/s, acked ${f0(f.ackedPerS)}/s (seconds: min ${f0(quantile(f.seconds, 0))}, median ${f0(quantile(f.seconds, 0.5))}, max ${f0(quantile(f.seconds, 1))})`,
    `  ack latency p50 ${ms(quantile(f.ackLatency, 0.5))} ms, p99 ${ms(quantile(f.ackLatency, 0.99))} ms; sent late p50 ${ms(quantile(f.late, 0.5))} ms, p99 ${ms(quantile(f.late, 0.99))} ms; refused ${JSON.stringify(f.refused)}; closed ${JSON.stringify(f.closes)}`,
    `CPU (cores): gateway ${f2(f.gatewayCores)} (event loop ${f0(f.gatewayElu * 100)}% busy), generators ${f2(f.generatorCores)}, machine ${f2(r.window.usage.machineCores)}/${r.window.usage.cores}, other work ${f2(r.window.usage.foreignCores)}`,
    `signatures (one core): noble sign ${ms(r.signatures.noble.signMs)} ms, verify ${ms(r.signatures.noble.verifyMs)} ms; wasm sign ${ms(r.signatures.wasm.signMs)} ms, verify ${ms(r.signatures.wasm.verifyMs)} ms (${f0(f.bareVerifyPerS)}/s); ` +
      `heartbeats per gateway core ${f0(f.perGatewayCore)}/s = ${f2(f.perGatewayCore / f.bareVerifyPerS)} of the bare verify rate (verify threads: ${r.verifyThreads})`,
    `gateway memory: RSS ${mib(r.memory.baseline.rssBytes)} -> ${mib(r.memory.loaded.rssBytes)} MiB, heap ${mib(r.memory.baseline.heapUsedBytes)} -> ${mib(r.memory.loaded.heapUsedBytes)} MiB; per node RSS ${kib(f.perNode.rss)} KiB, heap ${kib(f.perNode.heap)} KiB`,
    '',
    'operation                                               n    p50 ms   p99 ms   max ms',
  ];
  for (const x of latencyRows(r)) lines.push(`${x.label.padEnd(52)} ${String(x.n).padStart(6)} ${ms(x.p50).padStart(8)} ${ms(x.p99).padStart(8)} ${ms(x.max).padStart(8)}`);
  for (const b of r.redisBenchmark) lines.push(`${`redis-benchmark -c 1 ${b.label}`.padEnd(52)} ${'20000'.padStart(6)} ${ms(b.p50Ms).padStart(8)} ${ms(b.p99Ms).padStart(8)} ${ms(b.maxMs).padStart(8)}`);
  const l = r.latencies;
  lines.push(
    `ratios: reserve/EVALSHA p50 ${ratio(quantile(l.reserve, 0.5), quantile(l.evalsha, 0.5))}, p99 ${ratio(quantile(l.reserve, 0.99), quantile(l.evalsha, 0.99))}; ` +
      `release/EVALSHA p50 ${ratio(quantile(l.release, 0.5), quantile(l.evalsha, 0.5))}, p99 ${ratio(quantile(l.release, 0.99), quantile(l.evalsha, 0.99))}`,
  );
  return lines.join('\n');
}

/** The fleet section of BENCHMARKS.md. */
export function renderFleetMarkdown(r: FleetReport): string {
  const f = figures(r);
  const p = r.params;
  const l = r.latencies;
  const u = r.window.usage;
  const out: string[] = [];
  const w = (s = '') => out.push(s);
  const m = r.memory;

  w(`## Node fleet: ${int(p.nodes)} simulated nodes offered to one gateway${f.registered < p.nodes ? ` (${int(f.registered)} registered)` : ''}`);
  w();
  w(`Generated by \`npm run bench\` (or \`npm run bench:fleet\`; bench/fleet.ts) on ${r.finishedAt.toISOString()} (run started ${r.startedAt.toISOString()}); this section is rewritten by every run of it.`);
  if (r.problems.length > 0) w(`\n**Problems detected during this run:** ${r.problems.join('; ')}.`);
  w();
  w(
    `Machine: ${r.host.cpu}, **${r.host.cores} cores, shared**: the gateway, the load generators, this benchmark's latency loops, Redis, PostgreSQL and other engineers' test runs all used the same cores during this run ` +
      `(other work measured at ${f2(u.foreignCores)} cores on average over the window), so every figure is noisy; only ratios measured side by side in this run mean much. ` +
      `${f1(r.host.ramGiB)} GiB RAM, Node.js ${r.host.node}, ${r.redis}; open-files limit ${r.fdLimit.soft} (hard ${r.fdLimit.hard}). All traffic is loopback.`,
  );
  w();
  w('### Method');
  w();
  w(
    `- **Gateway**: a backbone with the io role only (test/helpers/stack.ts, on the real engines: its own PostgreSQL database, Redis prefix; production pool size and timeouts), alone in a child process (bench/fleet-gateway.ts) so that its memory and CPU are its own. ` +
      `Presence TTL ${p.heartbeatTtlMs / 1000} s, so the gateway asks every node for a heartbeat every ${p.heartbeatIntervalMs / 1000} s.`,
  );
  w(
    `- **Fleet**: ${int(p.nodes)} SIMULATED nodes (bench/fleet-node.ts) in ${p.generators} load-generator processes (bench/fleet-generator.ts), each node on its own WebSocket with its own secp256k1 key ` +
      `(keys made before connecting: ${f1(r.keygenMs / 1000)} s). They speak the real protocol: answer the challenge with a signed registration (bound to an operator account in PostgreSQL), then every ${p.heartbeatIntervalMs / 1000} s a WebSocket ping and a heartbeat ` +
      'signed over a fresh nonce, declaring network (one in ten on testnet), region (four in rotation), GPU and one or two models. Heartbeat phases are drawn at random, so the load is even over the interval. ' +
      `At most ${p.connectConcurrency} handshakes are in flight at once while the fleet connects; a registration not answered within ${p.registerTimeoutMs / 1000} s or refused is tried again after a short pause, up to ${p.registerAttempts} tries per node. ` +
      `The phase ends when every node has been tried, or earlier when no node has registered for ${p.stallS} s or after ${p.connectBudgetS} s (the nodes registered stay).`,
  );
  w(
    `- **Memory**: the gateway's RSS and V8 heap after two full garbage collections, before any node connected and again one heartbeat interval after the last node registered; per node = difference ÷ ${int(f.registered)} registered nodes.`,
  );
  w(
    `- **Heartbeats**: then a ${p.windowS} s window: heartbeats acknowledged (\`heartbeat_ack\`) per second, time from send to ack, how late each heartbeat left its generator against its schedule (signing included), refusals and closed sockets; ` +
      'CPU of each process from /proc and the processes\' own counters.',
  );
  w(
    `- **Reservations**, during the window, in this benchmark's own process on its own Redis connection, one at a time (latency, not throughput): ${int(p.reservations)} reserve + release pairs through the real \`PresenceRepository\` (the scheduler's code path: the RESERVE and RELEASE Lua scripts) ` +
      `for ${placementText(r.placement)}: a pool of ${int(r.poolSize)} nodes, capacity 4 each, all free. Beside them on the same connection, in ${p.blocks} alternating blocks, as many raw round trips: EVALSHA of \`return 1\` (the floor of any script call) and a ZADD. ` +
      'Then `redis-benchmark -c 1 -n 20000` (a C client, one connection) on the same server for PING, SET and the same EVALSHA.',
  );
  w();
  w('### Results');
  w();
  w('| | |');
  w('| --- | ---: |');
  const c = r.connect;
  w(`| Nodes registered | **${int(f.registered)}** of ${int(p.nodes)} (${int(c.failed)} failed after ${p.registerAttempts} tries, ${int(c.abandoned)} cut short and ${int(c.notTried)} never tried when the phase stopped; ${int(c.retries)} retries) |`);
  w(`| ${f.registered === p.nodes ? 'Time to register all' : 'Registration phase'} | ${f1(c.ms / 1000)} s (${f0(f.registered / (c.ms / 1000))} registrations/s) |`);
  w(`| Heartbeats offered (nodes ÷ interval) | ${f0(f.offeredPerS)} /s |`);
  w(`| Heartbeats sent by the generators | ${f0(f.sentPerS)} /s |`);
  w(`| **Heartbeats acknowledged, sustained** | **${f0(f.ackedPerS)} /s** over ${f0(f.windowS)} s (${int(f.acked)} acks; slowest second ${f0(quantile(f.seconds, 0))}, median ${f0(quantile(f.seconds, 0.5))}, fastest ${f0(quantile(f.seconds, 1))}) |`);
  w(`| Nodes that rate keeps present (acked/s × ${p.heartbeatIntervalMs / 1000} s; derived) | ${int(Math.round(f.ackedPerS * (p.heartbeatIntervalMs / 1000)))} |`);
  w(`| Heartbeat send → ack | p50 ${ms(quantile(f.ackLatency, 0.5))} ms, p99 ${ms(quantile(f.ackLatency, 0.99))} ms, max ${ms(quantile(f.ackLatency, 1))} ms |`);
  w(`| Heartbeat left late (generator) | p50 ${ms(quantile(f.late, 0.5))} ms, p99 ${ms(quantile(f.late, 0.99))} ms, max ${ms(quantile(f.late, 1))} ms |`);
  w(`| Heartbeats refused | ${countsText(f.refused)} |`);
  w(`| Sockets closed in the window | ${countsText(f.closes)}; ${int(f.openAtEnd)} open at its end |`);
  w(`| Pings unanswered by the next heartbeat | ${int(f.pongsMissed)} |`);
  w(`| Gateway CPU (all its threads) | **${f2(f.gatewayCores)} cores**, event loop ${f0(f.gatewayElu * 100)}% busy; ${ms((f.gatewayCores * 1000) / f.ackedPerS)} ms of CPU per acknowledged heartbeat |`);
  w(`| **Heartbeats acknowledged per gateway core** (acked/s ÷ gateway cores) | **${f0(f.perGatewayCore)} /s** |`);
  w(`| Load generators' CPU | ${f2(f.generatorCores)} cores (event loops ${f.generatorElu.map((e) => `${f0(e * 100)}%`).join(', ')} busy) |`);
  w(`| Machine CPU | ${f2(u.machineCores)} of ${u.cores} cores busy: ${cpuList(u)} |`);
  w(`| Gateway RSS | ${mib(m.baseline.rssBytes)} MiB before the fleet, ${mib(m.loaded.rssBytes)} MiB with it, ${mib(m.after.rssBytes)} MiB after the window |`);
  w(`| Gateway V8 heap used | ${mib(m.baseline.heapUsedBytes)} MiB before, ${mib(m.loaded.heapUsedBytes)} MiB with the fleet, ${mib(m.after.heapUsedBytes)} MiB after the window |`);
  w(`| **Gateway memory per connected node** | **${kib(f.perNode.rss)} KiB RSS**, of which V8 heap ${kib(f.perNode.heap)} KiB and buffers outside it ${kib(f.perNode.external)} KiB |`);
  const sg = r.signatures;
  w(`| Signatures, @noble/curves (JS; the reference), one core | sign ${ms(sg.noble.signMs)} ms (${f0(1000 / sg.noble.signMs)}/s), bare verify ${ms(sg.noble.verifyMs)} ms (${f0(1000 / sg.noble.verifyMs)}/s) |`);
  w(
    `| **Signatures, libsecp256k1 in WebAssembly (tiny-secp256k1; chosen)**, one core | sign ${ms(sg.wasm.signMs)} ms (${f0(1000 / sg.wasm.signMs)}/s, ${ratio(sg.noble.signMs, sg.wasm.signMs)}× noble), ` +
      `**bare verify ${ms(sg.wasm.verifyMs)} ms (${f0(f.bareVerifyPerS)}/s, ${ratio(sg.noble.verifyMs, sg.wasm.verifyMs)}× noble)**; verifyMessage of a whole heartbeat (canonical JSON included) ${ms(sg.wasmMessageVerifyMs)} ms |`,
  );
  w(
    `| Verify pool (src/domain/verify-pool.ts), ${sg.pool.threads} threads, measured alone | ${ms(sg.pool.loopMsPerVerify)} ms of event loop per verification (the hop, against ${ms(sg.wasmMessageVerifyMs)} ms inline); ${f0(sg.pool.verifiesPerSecond)} verifications/s with 64 in flight |`,
  );
  w(`| Gateway's verify threads in this run | ${r.verifyThreads === 0 ? 'none: signatures checked on its event loop' : `${r.verifyThreads} (SIGNATURE_VERIFY_THREADS)`} |`);
  if (r.connect.failed > 0 || r.connect.retries > 0) w(`| Registration tries that failed | ${countsText(r.connect.tryFailures)} |`);
  w();
  w(`Heartbeats acknowledged in each second of the window, in order: ${f.series.join(' ')}.`);
  w();
  w('Redis latency during the window (ms):');
  w();
  w('| Operation | n | p50 | p99 | max |');
  w('| --- | ---: | ---: | ---: | ---: |');
  for (const x of latencyRows(r)) w(`| ${x.label} | ${int(x.n)} | ${ms(x.p50)} | ${ms(x.p99)} | ${ms(x.max)} |`);
  for (const b of r.redisBenchmark) w(`| redis-benchmark -c 1: ${b.label} (${f0(b.rps)} ops/s) | 20,000 | ${ms(b.p50Ms)} | ${ms(b.p99Ms)} | ${ms(b.maxMs)} |`);
  if (l.noNode > 0) w(`\n${l.noNode} reservations found no node (not counted above).`);
  w();
  w('### Ratios');
  w();
  const ev = bench(r, 'EVALSHA return 1');
  w('| Reservation step | ÷ raw EVALSHA (ioredis), p50 | p99 | ÷ raw ZADD (ioredis), p50 | p99 | ÷ redis-benchmark EVALSHA, p50 | p99 |');
  w('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [label, xs] of [
    ['reserve', l.reserve],
    ['release', l.release],
  ] as const) {
    w(
      `| ${label} (p50 ${ms(quantile(xs, 0.5))} ms, p99 ${ms(quantile(xs, 0.99))} ms) | **${ratio(quantile(xs, 0.5), quantile(l.evalsha, 0.5))}** | **${ratio(quantile(xs, 0.99), quantile(l.evalsha, 0.99))}** ` +
        `| ${ratio(quantile(xs, 0.5), quantile(l.zadd, 0.5))} | ${ratio(quantile(xs, 0.99), quantile(l.zadd, 0.99))} | ${ev ? ratio(quantile(xs, 0.5), ev.p50Ms) : '-'} | ${ev ? ratio(quantile(xs, 0.99), ev.p99Ms) : '-'} |`,
    );
  }
  w(
    `| heartbeats acknowledged ÷ offered | ${f2(f.ackedPerS / f.offeredPerS)} | | | | | |`,
  );
  w();
  w('| Signatures | ratio | target |');
  w('| --- | ---: | ---: |');
  w(`| **heartbeats acknowledged per gateway core (${f0(f.perGatewayCore)}/s) ÷ bare verify rate of libsecp256k1 (wasm) on one core (${f0(f.bareVerifyPerS)}/s)** | **${f2(f.perGatewayCore / f.bareVerifyPerS)}** | ≥ 0.5 |`);
  w(`| the same ÷ bare verify rate of noble (${f0(1000 / r.signatures.noble.verifyMs)}/s), for reference | ${f2((f.perGatewayCore * r.signatures.noble.verifyMs) / 1000)} | |`);
  w(`| libsecp256k1 (wasm) ÷ noble, verify rate | ${ratio(r.signatures.noble.verifyMs, r.signatures.wasm.verifyMs)} | |`);
  w(`| libsecp256k1 (wasm) ÷ noble, sign rate | ${ratio(r.signatures.noble.signMs, r.signatures.wasm.signMs)} | |`);
  w();
  w('### What limited the run');
  w();
  for (const para of limits(r, f)) {
    w(para);
    w();
  }
  return out.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n';
}

function limits(r: FleetReport, f: ReturnType<typeof figures>): string[] {
  const paras: string[] = [];
  const u = r.window.usage;
  const verifyMs = r.signatures.wasm.verifyMs;
  const cpuPerAck = (f.gatewayCores * 1000) / f.ackedPerS;
  const keptUp = f.ackedPerS >= 0.97 * f.offeredPerS;
  if (f.registered < r.params.nodes) {
    paras.push(
      `**Registration.** Only ${int(f.registered)} of ${int(r.params.nodes)} nodes registered` +
        (r.stoppedBecause ? `: the benchmark stopped the phase because ${r.stoppedBecause}` : '') +
        `. Tries that failed: ${countsText(r.connect.tryFailures)}. ` +
        (f.gatewayElu >= 0.9
          ? 'The gateway handles a registration on the same thread as the heartbeats of the nodes already registered; with that thread saturated by them (below), new registrations waited behind them past their timeout. '
          : '') +
        'Per-node figures are over the nodes that registered.',
    );
  }
  const saturated = f.gatewayElu >= 0.9;
  const waits = `send → ack p50 ${ms(quantile(f.ackLatency, 0.5))} ms, p99 ${ms(quantile(f.ackLatency, 0.99))} ms`;
  let s = !keptUp
    ? `**Heartbeats.** The gateway did not keep up: it acknowledged ${f0(f.ackedPerS)} heartbeats/s of the ${f0(f.offeredPerS)}/s the fleet offered (${f0((100 * f.ackedPerS) / f.offeredPerS)}%), and the rest queued (${waits}). `
    : saturated
      ? `**Heartbeats.** The gateway kept up in number but at its limit: it acknowledged ${f0(f.ackedPerS)} heartbeats/s of the ${f0(f.offeredPerS)}/s offered, with its thread always busy and heartbeats queueing in front of it (${waits}). `
      : `**Heartbeats.** The gateway kept up: it acknowledged ${f0(f.ackedPerS)} heartbeats/s of the ${f0(f.offeredPerS)}/s the fleet offered (${waits}). `;
  s +=
    `Each heartbeat costs the gateway a secp256k1 public-key recovery to check its signature (${ms(verifyMs)} ms of one core here in libsecp256k1 compiled to WebAssembly, ` +
    `against ${ms(r.signatures.noble.verifyMs)} ms in noble's JavaScript), a schema check and canonical JSON, a nonce SET NX, the presence-upsert Lua script and an uptime MULTI: ` +
    `${ms(cpuPerAck)} ms of gateway CPU (all threads) per acknowledged heartbeat in this run, so the recovery is about ${f0((100 * verifyMs) / cpuPerAck)}% of it and the rest is the gateway's own work. ` +
    (r.verifyThreads > 0
      ? `The recovery ran on the gateway's ${r.verifyThreads} verify thread${r.verifyThreads > 1 ? 's' : ''}, off its event loop (${ms(r.signatures.pool.loopMsPerVerify)} ms of event loop per check for the hop, measured alone); its event loop was ${f0(f.gatewayElu * 100)}% busy. `
      : `The recovery ran on the gateway's event loop, which was ${f0(f.gatewayElu * 100)}% busy. `) +
    `At this cost per heartbeat one gateway core sustains about ${f0(f.perGatewayCore)} heartbeats/s, ${f2(f.perGatewayCore / f.bareVerifyPerS)} of the library's bare verify rate (${f0(f.bareVerifyPerS)}/s). `;
  if (f.gatewayElu >= 0.9) s += 'The gateway\'s thread was the bottleneck. ';
  const lateP99 = quantile(f.late, 0.99);
  const generatorBusy = Math.max(...f.generatorElu);
  if (lateP99 > 1000 || generatorBusy >= 0.9) {
    s += `The load generators also fell behind (heartbeats left up to ${ms(lateP99)} ms late at p99, busiest event loop ${f0(generatorBusy * 100)}%): each heartbeat is a signature (${ms(r.signatures.wasm.signMs)} ms here), so part of the shortfall is the generator's. `;
  } else {
    s += `The generators kept their schedule (heartbeats left ${ms(lateP99)} ms late at p99, busiest event loop ${f0(generatorBusy * 100)}%), so the figure is the gateway's, not the generator's. `;
  }
  if (u.machineCores >= 0.85 * u.cores) s += `The machine itself was saturated (${f2(u.machineCores)} of ${u.cores} cores busy), so the gateway competed for CPU with the generators, Redis and other work. `;
  paras.push(s);
  const idle = f.series.filter((n) => n === 0).length;
  if (saturated && idle > 0) {
    paras.push(
      `**Bursts.** In ${idle} of the window's ${f.series.length} seconds not one acknowledgement left the gateway, while others carried up to ${int(Math.max(...f.series))} (see the per-second list above). ` +
        'That is what a saturated event loop does: one pass of its poll phase hands the thread every frame that has arrived on thousands of sockets, and it handles each (schema, canonical JSON, ' +
        (r.verifyThreads > 0 ? 'the hop to the verify threads' : 'the signature check') +
        ': synchronous CPU work) before it reads the Redis answers that the earlier heartbeats wait on, so acknowledgements leave in bursts, seconds late.',
    );
  }
  paras.push(
    `**Scaling.** A heartbeat every ${r.params.heartbeatIntervalMs / 1000} s from N nodes is N ÷ ${r.params.heartbeatIntervalMs / 1000} signature checks per second, whatever the gateway does beyond them: at ${ms(verifyMs)} ms per check a ${int(r.params.nodes)}-node fleet needs ` +
      `${f2(((r.params.nodes / (r.params.heartbeatIntervalMs / 1000)) * verifyMs) / 1000)} cores for checks alone (${f2(((r.params.nodes / (r.params.heartbeatIntervalMs / 1000)) * r.signatures.noble.verifyMs) / 1000)} in noble), and ` +
      `${f2(((r.params.nodes / (r.params.heartbeatIntervalMs / 1000)) * cpuPerAck) / 1000)} cores for whole heartbeats at this run's cost. The io role is stateless and scales out (nodes spread over several gateway instances behind a load balancer); ` +
      'on one instance, more verify threads move the checks to other cores, and a longer heartbeat interval (a longer presence TTL) lowers the rate. ' +
      `Memory: at ${kib(f.perNode.rss)} KiB of RSS per node, ${int(r.params.nodes)} nodes take ${mib(f.perNode.rss * r.params.nodes)} MiB of the gateway's memory beyond its ${mib(r.memory.baseline.rssBytes)} MiB baseline, on a machine with ${f1(r.host.ramGiB)} GiB.`,
  );
  paras.push(
    '**Reservations.** A reservation is one Lua script that reads at most 32 of the pool\'s top candidates (a ZREVRANGEBYSCORE with a LIMIT, logarithmic in the pool\'s size), checks each one\'s eligibility and free slots, and draws among those that fit by free slots × score: by construction its work is bounded by that, not by the fleet (this run measured one fleet size only). ' +
      'What the ratios above show is the script\'s own work (the candidate\'s presence hash, flags and slots, the node rescored in each of its pools) beyond a bare round trip, and the wait for a Redis that is also absorbing the fleet\'s heartbeats. ' +
      'redis-benchmark\'s figures are a C client with nothing else on its thread; the ioredis loop is the fairer floor for this Node.js process.',
  );
  return paras;
}

function placementText(p: Placement): string {
  return `'${p.model}' on ${p.network}${p.region ? ` in ${p.region}` : ', any region'}${p.subcloud ? `, subcloud ${p.subcloud}` : ', public'}`;
}

function countsText(counts: Record<string, number>): string {
  const e = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  return e.length === 0 ? 'none' : e.map(([k, v]) => `${int(v)} × \`${k.replace(/`/g, "'")}\``).join(', ');
}
