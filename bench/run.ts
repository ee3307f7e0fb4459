// What every benchmark entry point (e2e.ts, ledger.ts, fleet.ts) shares: reading its numeric knobs from
// the environment, and running main() so that the process exits with its status even if a stray handle
// (a socket, a timer) would keep it alive.

/** A positive number from the environment (`def` when unset or empty); `integer` refuses fractions. */
export function envNumber(name: string, def: number, opts: { integer?: boolean } = {}): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  const ok = opts.integer ? Number.isInteger(n) : Number.isFinite(n);
  if (!ok || n <= 0) throw new Error(`${name} must be a positive ${opts.integer ? 'integer' : 'number'}, got ${raw}`);
  return n;
}

/** Runs a benchmark's main(); its result is the exit code (1 when it throws). */
export async function runBench(label: string, main: () => Promise<number>): Promise<void> {
  const code = await main().catch((err: unknown) => {
    process.stderr.write(`${label} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  });
  process.exitCode = code;
  // Everything is closed by now; if some handle still keeps the process alive, say which and leave anyway.
  setTimeout(() => {
    process.stderr.write(`${label}: still running 10 s after the end; open handles: ${process.getActiveResourcesInfo().join(', ')}\n`);
    process.exit(code || 2);
  }, 10_000).unref();
}
