// The load generator shared by both systems under test: a closed loop of `concurrency` workers, each
// issuing one operation and starting the next as soon as it ends, for a warm-up and then a measured
// window. Alongside, what the machine spent during the measured window: this process's event-loop
// utilisation and CPU time, the whole machine's CPU (/proc/stat), and the CPU time of each engine's
// processes (/proc/<pid>/stat, grouped by command name).
import { setMaxListeners } from 'node:events';
import { readFileSync, readdirSync } from 'node:fs';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';

export interface LoadOptions {
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  /** Upper bound on operations started (warm-up included), so that a run is bounded in count too. */
  maxOps: number;
  /** Aborts the run early (Ctrl-C); the partial window is still reported. */
  signal: AbortSignal;
  /** Called as the measured window opens and closes (to snapshot counters of one's own). */
  onWindow?: (edge: 'start' | 'end') => void;
  /**
   * How long operations still running when the window closes may take to end; past it their signal
   * aborts (they count in no window either way). Default 10 000.
   */
  drainMs?: number;
}

export interface Usage {
  /** Event-loop utilisation of this process over the window, 0..1. */
  elu: number;
  /** CPU used by this process, in cores (1.0 = one core busy for the whole window). */
  processCores: number;
  /** CPU used by the whole machine, in cores, and the number of cores. */
  machineCores: number;
  cores: number;
  /** CPU used per process group (see labelProcesses), in cores; top entries only. */
  byCommand: Array<{ command: string; cores: number }>;
  /**
   * CPU used by processes that are no part of this benchmark (other work on the machine), in cores:
   * those seen in /proc, plus the machine's total not attributed to any process seen (short-lived ones).
   */
  foreignCores: number;
  /** Of foreignCores, the part no process seen in /proc accounts for. */
  unattributedCores: number;
}

/** Names a process for the CPU breakdown; `foreign` marks processes that are no part of the benchmark. */
export type ProcessLabeler = (pid: number, command: string, cmdline: () => string) => { label: string; foreign: boolean };

let labeler: ProcessLabeler = (_pid, command) => ({ label: command, foreign: false });

/** Sets how processes are grouped in the CPU breakdown (default: by command name). */
export function labelProcesses(fn: ProcessLabeler): void {
  labeler = fn;
}

export interface LoadResult {
  concurrency: number;
  /** Length of the measured window actually run, in ms. */
  windowMs: number;
  /** Operations that succeeded and ended inside the measured window. */
  completed: number;
  /** Operations that failed and ended inside the measured window. */
  errors: number;
  errorSamples: string[];
  /** Latencies (ms) of the successful operations that ended inside the window, sorted ascending. */
  latencies: Float64Array;
  /** Operations that ended during the warm-up (successes and failures). */
  warmupOps: number;
  usage: Usage;
  /** Wall-clock bounds of the measured window (epoch ms), to select its records elsewhere. */
  windowStart: number;
  windowEnd: number;
}

/**
 * Runs `op` in a closed loop. `op(i, worker, signal)` must resolve when operation `i` (run by client
 * `worker`, 0..concurrency-1) has fully completed, reject on failure, and give up when `signal` aborts.
 */
export async function closedLoop(opts: LoadOptions, op: (i: number, worker: number, signal: AbortSignal) => Promise<void>): Promise<LoadResult> {
  let phase: 'warmup' | 'measure' | 'done' = 'warmup';
  let started = 0;
  let warmupOps = 0;
  let completed = 0;
  let errors = 0;
  const errorSamples: string[] = [];
  let latencies = new Float64Array(1 << 16);
  let nLat = 0;
  let windowStart = 0;
  let windowStartPerf = 0;
  let windowEnd = 0;
  let windowEndPerf = 0;
  let before: Snapshot | null = null;
  let usage: Usage | null = null;
  const drain = new AbortController();
  // Every running operation listens to it (fetch does): one listener per client is expected, not a leak.
  setMaxListeners(opts.concurrency * 2 + 16, drain.signal);
  let drainTimer: NodeJS.Timeout | undefined;

  const startMeasure = () => {
    if (phase !== 'warmup') return;
    opts.onWindow?.('start');
    before = snapshot();
    windowStart = Date.now();
    windowStartPerf = performance.now();
    phase = 'measure';
  };
  const endMeasure = () => {
    if (phase === 'done') return;
    if (phase === 'warmup') startMeasure();
    windowEnd = Date.now();
    windowEndPerf = performance.now();
    usage = usageBetween(before!, snapshot());
    opts.onWindow?.('end');
    phase = 'done';
    drainTimer = setTimeout(() => drain.abort(new Error('still running at the end of the drain time')), opts.drainMs ?? 10_000);
  };
  const warmTimer = setTimeout(startMeasure, opts.warmupMs);
  const endTimer = setTimeout(endMeasure, opts.warmupMs + opts.durationMs);
  const onAbort = () => endMeasure();
  opts.signal.addEventListener('abort', onAbort, { once: true });

  const worker = async (_: unknown, w: number) => {
    while (phase !== 'done' && started < opts.maxOps) {
      const i = started++;
      const t0 = performance.now();
      let failure: unknown = null;
      try {
        await op(i, w, drain.signal);
      } catch (err) {
        failure = err;
      }
      const t1 = performance.now();
      // Read the phase after the operation: an operation counts in the window it ended in.
      if (phase === 'warmup') {
        warmupOps++;
      } else if (phase === 'measure') {
        if (failure !== null) {
          errors++;
          const message = failure instanceof Error ? failure.message : JSON.stringify(failure);
          if (errorSamples.length < 5 && !errorSamples.includes(message)) errorSamples.push(message);
        } else {
          completed++;
          if (nLat === latencies.length) {
            const grown = new Float64Array(latencies.length * 2);
            grown.set(latencies);
            latencies = grown;
          }
          latencies[nLat++] = t1 - t0;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  // The count bound (or an abort) may end the loop before the timers do.
  clearTimeout(warmTimer);
  clearTimeout(endTimer);
  opts.signal.removeEventListener('abort', onAbort);
  endMeasure();
  clearTimeout(drainTimer);
  const sorted = latencies.slice(0, nLat).sort();
  return {
    concurrency: opts.concurrency,
    windowMs: windowEndPerf - windowStartPerf,
    completed,
    errors,
    errorSamples,
    latencies: sorted,
    warmupOps,
    usage: usage!,
    windowStart,
    windowEnd,
  };
}

/** The q-quantile (0..1) of an ascending array, nearest-rank; NaN when empty. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1]!;
}

export function mean(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]!;
  return values.length === 0 ? NaN : s / values.length;
}

// ---- CPU accounting -------------------------------------------------------------------------------

/**
 * Starts measuring CPU now (this process, the machine, each process group: see labelProcesses); the
 * function returned gives the usage since then. For windows that are not a closed loop's.
 */
export function usageMeter(): () => Usage {
  const before = snapshot();
  return () => usageBetween(before, snapshot());
}

interface Snapshot {
  at: number;
  elu: EventLoopUtilization;
  cpu: NodeJS.CpuUsage;
  machine: { busy: number; total: number } | null;
  /** Per pid, to count only the ticks of processes alive at both snapshots. */
  byPid: Map<number, { command: string; ticks: number; foreign: boolean }>;
}

// USER_HZ: 100 on every mainstream Linux build; /proc exposes no cheaper way to read it.
const CLOCK_TICKS_PER_SECOND = 100;

function snapshot(): Snapshot {
  const byPid = processTicks();
  return { at: performance.now(), elu: performance.eventLoopUtilization(), cpu: process.cpuUsage(), machine: machineTicks(), byPid };
}

function usageBetween(a: Snapshot, b: Snapshot): Usage {
  const seconds = Math.max(1e-9, (b.at - a.at) / 1000);
  const cpu = process.cpuUsage(a.cpu);
  const cores = (readCores() || 1);
  let machineCores = NaN;
  if (a.machine && b.machine && b.machine.total > a.machine.total) {
    machineCores = ((b.machine.busy - a.machine.busy) / (b.machine.total - a.machine.total)) * cores;
  }
  const deltas = new Map<string, number>();
  let foreignTicks = 0;
  let attributedTicks = 0;
  for (const [pid, p] of b.byPid) {
    const prev = a.byPid.get(pid);
    // A process that started during the window spent all its CPU time in it.
    const ticks = prev && prev.command === p.command ? p.ticks - prev.ticks : prev ? 0 : p.ticks;
    deltas.set(p.command, (deltas.get(p.command) ?? 0) + ticks);
    attributedTicks += ticks;
    if (p.foreign) foreignTicks += ticks;
  }
  const byCommand = [...deltas.entries()]
    .map(([command, ticks]) => ({ command, cores: ticks / CLOCK_TICKS_PER_SECOND / seconds }))
    .filter((c) => c.cores >= 0.01)
    .sort((x, y) => y.cores - x.cores)
    .slice(0, 24);
  // Processes that came and went inside the window are seen by /proc/stat only: count that remainder as
  // foreign too (the benchmark's own processes all outlive its windows).
  const attributed = attributedTicks / CLOCK_TICKS_PER_SECOND / seconds;
  const unattributed = Number.isFinite(machineCores) ? Math.max(0, machineCores - attributed) : 0;
  return {
    foreignCores: foreignTicks / CLOCK_TICKS_PER_SECOND / seconds + unattributed,
    unattributedCores: unattributed,
    elu: performance.eventLoopUtilization(b.elu, a.elu).utilization,
    processCores: (cpu.user + cpu.system) / 1e6 / seconds,
    machineCores,
    cores,
    byCommand,
  };
}

function readCores(): number {
  try {
    return readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d+ /.test(l)).length;
  } catch {
    return 0;
  }
}

function machineTicks(): { busy: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already counted in user)
    const total = f.slice(0, 8).reduce((s, v) => s + v, 0);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

function processTicks(): Map<number, { command: string; ticks: number; foreign: boolean }> {
  const out = new Map<number, { command: string; ticks: number; foreign: boolean }>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ...: comm may contain spaces and parentheses; it ends at the last ')'.
      const close = stat.lastIndexOf(')');
      const command = stat.slice(stat.indexOf('(') + 1, close);
      const rest = stat.slice(close + 2).split(' ');
      // Fields 14 (utime) and 15 (stime) of proc(5); `rest` starts at field 3 (state).
      const ticks = Number(rest[11]) + Number(rest[12]);
      if (!Number.isFinite(ticks)) continue;
      const pid = Number(e);
      const cmdline = () => readFileSync(`/proc/${e}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      const { label, foreign } = labeler(pid, command, cmdline);
      out.set(pid, { command: label, ticks, foreign });
    } catch {
      // The process ended between readdir and read.
    }
  }
  return out;
}
