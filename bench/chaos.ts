// `npm run chaos` (issue 13 part 1): the backbone's roles as separate processes, on engines this run starts
// for itself, under load and under faults, then checked. It is a bounded script, not a benchmark:
//
//   engines    a PostgreSQL cluster of its own (initdb/pg_ctl in a temporary directory), a redis-server, a
//              RabbitMQ node and a FerretDB (test/helpers/private-*.ts), never the machine's own;
//   roles      `resultity serve --roles R`: 2 cloud, 2 io, 2 scheduler (CHAOS_INSTANCES), 1 maintenance, 1 gate+status;
//   fleet      simulated nodes in a process of their own (bench/chaos-fleet.ts), spread over both io;
//   load       CHAOS_JOBS jobs (sync, async and streamed) over four namespaces, one of which has credits
//              for only part of its jobs so that its requests race for the same credits; each request
//              carries an Idempotency-Key and is retried when its cloud process dies under it;
//   faults     one every CHAOS_FAULT_EVERY_MS, in rotation: SIGKILL and restart of a cloud, io, scheduler or
//              maintenance process; restart of PostgreSQL (immediate stop: a crash), Redis (killed: back
//              empty), RabbitMQ (the whole node) and FerretDB (killed); node connections dropped. The
//              time to recover from each is measured until a probe job completes end to end again;
//   checks     at every recovery (checkpoint): the ledger sums to zero, no namespace overspent, no job
//              charged twice. At the end, besides: every accepted job reached a terminal state (none lost),
//              every failed one with a reason, every hold released (nothing held), no node slot held and
//              every readiness pool scoring its nodes at their free slots (bench/chaos-slots.ts).
// The report is rendered by bench/chaos-report.ts.
//
// Writes CHAOS_REPORT (default RELIABILITY.md) and exits 1 when a check failed. Knobs (environment):
// CHAOS_JOBS (10000), CHAOS_CONCURRENCY (24), CHAOS_NODES (12), CHAOS_FAULT_EVERY_MS (6000), CHAOS_FAULTS
// (comma-separated kinds, default all), CHAOS_TIME_LIMIT_S (1200: the run stops injecting and drains).
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort, accepting } from '../test/helpers/ports.js';
import { PrivateRedis } from '../test/helpers/private-redis.js';
import { PrivateBroker } from '../test/helpers/private-broker.js';
import { PrivateFerretDb } from '../test/helpers/private-ferretdb.js';
import { PrivatePostgres } from '../test/helpers/private-postgres.js';
import { addressOf, generatePrivateKey } from '../src/domain/signatures.js';
import { ledgerTotals } from '../src/postgres/ledger.repository.js';
import { Child } from './ipc.js';
import type { ChaosFleetParams } from './chaos-fleet.js';
import { FAULT_KINDS, renderReport, type ChaosReport, type Fault, type FaultKind } from './chaos-report.js';
import { checkNodeSlots } from './chaos-slots.js';

const env = (name: string, dflt: number) => Number(process.env[name] ?? dflt);
const JOBS = env('CHAOS_JOBS', 10_000);
const CONCURRENCY = env('CHAOS_CONCURRENCY', 24);
const NODES = env('CHAOS_NODES', 12);
const FAULT_EVERY_MS = env('CHAOS_FAULT_EVERY_MS', 6_000);
const TIME_LIMIT_MS = env('CHAOS_TIME_LIMIT_S', 1_200) * 1000;
/** Instances of each of cloud, io and scheduler (2; the short version in `npm test` runs 1 to fit its time). */
const INSTANCES = env('CHAOS_INSTANCES', 2);
const REPORT = process.env.CHAOS_REPORT ?? fileURLToPath(new URL('../../RELIABILITY.md', import.meta.url));
const MODEL = 'chaos/sim-1';
const MAX_TOKENS = 16;
const FAULTS = (process.env.CHAOS_FAULTS?.split(',').filter(Boolean) ?? [...FAULT_KINDS]) as FaultKind[];
const TERMINAL = ['completed', 'failed', 'expired', 'cancelled'];
const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
/** How long the end waits for leaked node slots to heal: past twice the attempt timeout (JOB_ATTEMPT_TIMEOUT_MS, 60 s) and a heartbeat. */
const SLOT_HEAL_MS = env('CHAOS_SLOT_HEAL_S', 150) * 1000;

const t0 = Date.now();
/** Set on SIGTERM/SIGINT: the load and the faults stop, and the run cleans up and reports. */
let stopped = false;
const log = (m: string) => process.stderr.write(`chaos ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s  ${m}\n`);

/** One `resultity serve --roles R` process, restartable on its port. */
class RoleProcess {
  private child: ChildProcess | null = null;
  restarts = 0;
  constructor(
    readonly roles: string,
    readonly port: number,
    private readonly envVars: NodeJS.ProcessEnv,
  ) {}
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  /**
   * Starts the process and waits until it listens. Each process migrates at start, and a second one
   * migrating at the same moment exits ("another migration is already running"): started again then,
   * as a supervisor would.
   */
  async start(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.startOnce();
      } catch (err) {
        if (attempt >= 8) throw err;
        await sleep(300 + Math.random() * 700);
      }
    }
  }

  private async startOnce(): Promise<void> {
    const child = spawn(process.execPath, [MAIN, 'serve', '--roles', this.roles], { env: { ...this.envVars, PORT: String(this.port) }, stdio: ['ignore', 'ignore', 'inherit'] });
    this.child = child;
    const until = Date.now() + 90_000;
    while (!(await accepting(this.port))) {
      if (child.exitCode !== null) throw new Error(`${this.roles} on ${this.port} exited with ${child.exitCode} at start`);
      if (Date.now() > until) {
        // Killed before the next try: a slow boot that listens later would hold the port, orphaned
        // (every later start failing with EADDRINUSE, and kills of this role missing the live process).
        await this.kill();
        throw new Error(`${this.roles} on ${this.port} did not listen within 90 s`);
      }
      await sleep(100);
    }
    // Listening, and the listener is this child (not a leftover of an earlier try).
    await sleep(200);
    if (child.exitCode !== null) throw new Error(`${this.roles} on ${this.port} exited with ${child.exitCode} once listening`);
  }
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  }
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([gone, sleep(10_000).then(() => child.kill('SIGKILL'))]);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

async function main(): Promise<number> {
  const id = `chaos_${Date.now().toString(36)}_${randomBytes(2).toString('hex')}`;
  log(`run ${id}: ${JOBS} jobs, concurrency ${CONCURRENCY}, ${NODES} nodes, a fault every ${FAULT_EVERY_MS} ms (${FAULTS.join(', ')})`);
  const postgres = await PrivatePostgres.start();
  const redis = await PrivateRedis.start();
  const ferret = await PrivateFerretDb.start(id);
  const broker = await PrivateBroker.start(id);
  log(`engines up: postgres :${postgres.port}, redis :${redis.port}, ferretdb :${ferret.port}, rabbitmq :${broker.port}`);
  const adminToken = randomBytes(24).toString('hex');
  const roleEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOST: '127.0.0.1',
    LOG_LEVEL: process.env.CHAOS_LOG_LEVEL ?? 'fatal',
    DATABASE_URL: `${postgres.url}/resultity`,
    MONGODB_URL: `${ferret.url}${id}`,
    REDIS_URL: redis.url,
    RABBITMQ_URL: broker.url,
    ADMIN_TOKEN: adminToken,
    NETWORK_SIGNING_KEY: generatePrivateKey(),
    // Payloads are sealed at rest (space/payload-keys.service.ts): every role process shares the run's key.
    PAYLOAD_MASTER_KEYS: `1:${randomBytes(32).toString('base64')}`,
    RATE_LIMIT_RPS: '1000000',
    RATE_LIMIT_BURST: '1000000',
    ACCOUNT_RATE_LIMIT_RPS: '1000000',
    ACCOUNT_RATE_LIMIT_BURST: '1000000',
    PG_POOL_MAX: '6',
    // A job whose dispatch a fault lost ends at its deadline: the short version shortens the tail.
    JOB_DEADLINE_MS: process.env.CHAOS_JOB_DEADLINE_MS ?? '60000',
    NO_NODE_GRACE_MS: '15000',
    OUTBOX_REPUBLISH_AFTER_MS: '2000',
    NODE_START_SLOTS: '1024',
  };
  const ports = async () => freePort();
  const gate = new RoleProcess('gate,status', await ports(), roleEnv);
  const several = async (role: string) => Promise.all(Array.from({ length: INSTANCES }, async () => new RoleProcess(role, await ports(), roleEnv)));
  const roles = {
    cloud: await several('cloud'),
    io: await several('io'),
    scheduler: await several('scheduler'),
    maintenance: [new RoleProcess('maintenance', await ports(), roleEnv)],
  };
  const all = [gate, ...roles.cloud, ...roles.io, ...roles.scheduler, ...roles.maintenance];
  let fleet: Child | null = null;
  // Interrupted (Ctrl-C, or the test runner's timeout): stop injecting and loading, and clean up below,
  // so that no role process or private engine outlives the run.
  const interrupted = new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  void interrupted.then(() => {
    log('interrupted: cleaning up');
    stopped = true;
  });
  const db = new pg.Pool({ connectionString: `${postgres.url}/resultity`, max: 2 });
  db.on('error', () => undefined); // the pool's idle connections die with each PostgreSQL restart
  try {
    await gate.start(); // migrates and makes the network config's genesis version
    await Promise.all(all.slice(1).map((r) => r.start()));
    log(`roles up: ${all.map((r) => `${r.roles}:${r.port}`).join(' ')}`);

    const admin = async (method: string, path: string, body?: unknown): Promise<Record<string, unknown>> => {
      const res = await fetch(`${gate.url}${path}`, { method, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: body === undefined ? null : JSON.stringify(body) });
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as Record<string, unknown>;
    };
    await admin('PUT', `/admin/models/${encodeURIComponent(MODEL)}`, { input_price: 10, output_price: 20, context_tokens: 8192 });
    const operator = String((await admin('POST', '/admin/accounts', { name: 'chaos operator' })).id);
    // Four tenants; the last one's credits cover about half of its jobs (some 150 µcr each at these
    // prices), which race for them: its late requests are refused with 402, and it must never overspend.
    const racingCredits = Math.max(0.001, Math.round(((JOBS / 4) * 150) / 2) / 1e6);
    const tenantCredits = [1_000_000, 1_000_000, 1_000_000, racingCredits];
    const tenants: Array<{ namespaceId: string; apiKey: string }> = [];
    for (const [t, credits] of tenantCredits.entries()) {
      const account = String((await admin('POST', '/admin/accounts', { name: `chaos tenant ${t}` })).id);
      const ns = String((await admin('POST', `/admin/accounts/${account}/namespaces`, { name: `chaos-${t}` })).id);
      await admin('POST', `/admin/namespaces/${ns}/credits`, { amount: credits });
      const key = await admin('POST', `/admin/namespaces/${ns}/keys`, { rate_limit_rps: 100_000, rate_limit_burst: 100_000 });
      tenants.push({ namespaceId: ns, apiKey: String(key.key) });
    }
    const privateKeys = Array.from({ length: NODES }, () => generatePrivateKey());
    for (const key of privateKeys) await admin('POST', `/admin/operators/${operator}/nodes`, { node: addressOf(key) });
    fleet = Child.fork('fleet', new URL('./chaos-fleet.js', import.meta.url));
    await fleet.call('start', { gatewayUrls: roles.io.map((r) => r.url), operator, privateKeys, capacity: 4, model: MODEL, latencyMs: 20, completionTokens: 8 } satisfies ChaosFleetParams);
    log(`${NODES} nodes connected`);

    // ---- load ----
    const accepted = new Set<string>();
    const refused = new Map<number, number>();
    const outcomes = new Map<string, number>();
    const modes = { sync: 0, async: 0, stream: 0 };
    let next = 0;
    let clientGaveUp = 0;
    const submit = async (i: number, tenant: (typeof tenants)[number], mode: 'sync' | 'async' | 'stream', tag: string): Promise<boolean> => {
      const until = Date.now() + 120_000;
      for (;;) {
        const cloud = pick(roles.cloud);
        try {
          const res = await fetch(`${cloud.url}/v1/chat/completions`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${tenant.apiKey}`,
              'content-type': 'application/json',
              'idempotency-key': `${tag}-${i}`,
              ...(mode === 'async' ? { prefer: 'respond-async' } : {}),
            },
            body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: `chaos ${i}` }], max_tokens: MAX_TOKENS, ...(mode === 'stream' ? { stream: true } : {}) }),
            signal: AbortSignal.timeout(90_000),
          });
          const jobId = res.headers.get('x-resultity-job-id');
          const text = await res.text();
          if (jobId) accepted.add(jobId);
          if (res.status === 402 || res.status === 400) {
            refused.set(res.status, (refused.get(res.status) ?? 0) + 1);
            return false;
          }
          // A stream cut by its process dying leaves no [DONE]: asked again (the key replays the job).
          if (res.status === 200 && mode === 'stream' && !text.includes('[DONE]')) throw new Error('stream cut');
          if (res.status < 500 && res.status !== 429) return res.status === 200 || res.status === 202;
          if (res.status === 502 || res.status === 504) return true; // the job ran and failed or expired: terminal
        } catch {
          // the process died under the request, or the request timed out: asked again with the same key
        }
        if (Date.now() > until || stopped) {
          clientGaveUp++;
          return false;
        }
        await sleep(250);
      }
    };
    let loadDone = false;
    const worker = async () => {
      while (next < JOBS && Date.now() - t0 < TIME_LIMIT_MS && !stopped) {
        const i = next++;
        const mode = i % 5 < 2 ? 'sync' : i % 5 < 4 ? 'async' : 'stream';
        modes[mode]++;
        await submit(i, tenants[i % tenants.length]!, mode, id);
      }
    };
    const load = Promise.all(Array.from({ length: CONCURRENCY }, worker)).then(() => (loadDone = true));

    // ---- faults ----
    const probeTenant = tenants[0]!;
    let probes = 0;
    const probeOnce = async (): Promise<boolean> => {
      try {
        const res = await fetch(`${pick(roles.cloud).url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${probeTenant.apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'probe' }], max_tokens: 4 }),
          signal: AbortSignal.timeout(15_000),
        });
        const jobId = res.headers.get('x-resultity-job-id');
        if (jobId) accepted.add(jobId);
        await res.text();
        probes++;
        return res.status === 200;
      } catch {
        return false;
      }
    };
    const checkpointFailures: string[] = [];
    const checkpoint = async (label: string) => {
      const problems = await invariants(db, tenants.map((t) => t.namespaceId), false);
      for (const p of problems) checkpointFailures.push(`${label}: ${p}`);
      if (problems.length) log(`CHECKPOINT ${label} FAILED: ${problems.join('; ')}`);
    };
    const inject = async (kind: FaultKind): Promise<void> => {
      switch (kind) {
        case 'kill_cloud':
        case 'kill_io':
        case 'kill_scheduler':
        case 'kill_maintenance': {
          const victim = pick(roles[kind.slice(5) as 'cloud' | 'io' | 'scheduler' | 'maintenance']);
          await victim.kill();
          await sleep(500);
          await victim.start();
          victim.restarts++;
          return;
        }
        case 'restart_postgres':
          await postgres.crash();
          await sleep(1_000);
          await postgres.boot();
          return;
        case 'restart_redis':
          await redis.kill();
          await sleep(1_000);
          await redis.boot();
          return;
        case 'restart_rabbitmq':
          await broker.restart();
          return;
        case 'restart_ferretdb':
          await ferret.kill();
          await sleep(1_000);
          await ferret.boot();
          return;
        case 'drop_nodes':
          await fleet!.call('drop', Math.max(1, Math.floor(NODES / 3)));
          return;
      }
    };
    const faults: Fault[] = [];
    let f = 0;
    while (!loadDone && Date.now() - t0 < TIME_LIMIT_MS && !stopped) {
      await Promise.race([sleep(FAULT_EVERY_MS), load]);
      if (loadDone) break;
      const kind = FAULTS[f++ % FAULTS.length]!;
      const at = Date.now();
      log(`fault: ${kind} (accepted so far ${accepted.size}, submitted ${next})`);
      try {
        await inject(kind);
      } catch (err) {
        log(`fault ${kind} could not be injected: ${String(err)}`);
      }
      let recoveryMs: number | null = null;
      while (Date.now() - at < 120_000) {
        if (await probeOnce()) {
          recoveryMs = Date.now() - at;
          break;
        }
        await sleep(200);
      }
      faults.push({ kind, at, recoveryMs });
      log(`recovered from ${kind} in ${recoveryMs === null ? 'NEVER (120 s)' : `${recoveryMs} ms`}`);
      await checkpoint(`after ${kind} #${faults.length}`);
    }
    await load;
    log(`load done: ${next} submitted, ${accepted.size} accepted; waiting for every accepted job to end`);

    // ---- the end: every accepted job terminal, then the checks ----
    const ids = [...accepted];
    const drainUntil = Date.now() + (stopped ? 0 : 180_000);
    let open = ids.length;
    while (Date.now() < drainUntil) {
      const r = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE status <> ALL($1::text[])`, [TERMINAL]).catch(() => null);
      open = r?.rows[0]?.n ?? open;
      if (open === 0) break;
      await sleep(1_000);
    }
    const rows = await db.query<{ id: string; status: string; error_code: string | null }>(`SELECT id, status, error_code FROM jobs WHERE id = ANY($1::uuid[])`, [ids]);
    const found = new Set(rows.rows.map((r) => r.id));
    const lost = ids.filter((j) => !found.has(j));
    for (const r of rows.rows) {
      const k = r.status === 'completed' ? 'completed' : `${r.status}: ${r.error_code ?? 'NO REASON'}`;
      outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    }
    const problems = [...checkpointFailures, ...(await invariants(db, tenants.map((t) => t.namespaceId), true))];
    if (stopped) problems.push('interrupted before the end: the final checks are incomplete');
    if (lost.length) problems.push(`${lost.length} accepted job(s) have no row: lost`);
    const noReason = rows.rows.filter((r) => r.status !== 'completed' && !r.error_code).length;
    if (noReason) problems.push(`${noReason} job(s) ended without a reason`);
    const notTerminal = rows.rows.filter((r) => !TERMINAL.includes(r.status)).length;
    if (notTerminal) problems.push(`${notTerminal} accepted job(s) not terminal after the drain`);
    // Node slots: none held once every job ended (a leak heals within twice the attempt timeout: waited for).
    log('checking node slots');
    const slots = await checkNodeSlots(redis.url, 'rt:', SLOT_HEAL_MS);
    if (slots.heldAtEnd > 0) problems.push(`${slots.heldAtEnd} node slot(s) still held ${SLOT_HEAL_MS / 1000} s after every job ended: leaked`);
    if (slots.inconsistentPools.length) problems.push(`readiness pools out of step with their nodes: ${slots.inconsistentPools.slice(0, 5).join('; ')}`);

    await writeReport({ id, ids: ids.length, submitted: next, modes, refused, outcomes, faults, problems, probes, clientGaveUp, slots, wallMs: Date.now() - t0 });
    log(problems.length ? `FAILED: ${problems.join('; ')}` : `passed: ${ids.length} accepted jobs, ${faults.length} faults, every check held`);
    return problems.length ? 1 : 0;
  } finally {
    await fleet?.call('stop').catch(() => undefined);
    fleet?.process.kill();
    await Promise.all(all.map((r) => r.stop()));
    await db.end().catch(() => undefined);
    await broker.destroy().catch(() => undefined);
    await ferret.destroy().catch(() => undefined);
    await redis.kill().catch(() => undefined);
    await postgres.destroy().catch(() => undefined);
  }
}

/** The invariants that hold at every moment (and, `final`, once everything has ended). */
async function invariants(db: pg.Pool, namespaces: string[], final: boolean): Promise<string[]> {
  const problems: string[] = [];
  try {
    const t = await ledgerTotals(db);
    if (t.entriesTotal !== 0 || t.balancesTotal !== 0 || t.mismatchedAccounts !== 0) problems.push(`ledger does not balance: ${JSON.stringify(t)}`);
    const twice = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM (SELECT job_id FROM ledger_transactions WHERE kind = 'capture' AND job_id IS NOT NULL GROUP BY job_id HAVING count(*) > 1) x`);
    if (twice.rows[0]!.n > 0) problems.push(`${twice.rows[0]!.n} job(s) charged twice`);
    // The schema refuses a negative balance too (CHECK): this says so in the report if it ever changes.
    const neg = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ledger_accounts WHERE kind IN ('ns_available', 'ns_held') AND balance < 0`);
    if (neg.rows[0]!.n > 0) problems.push(`${neg.rows[0]!.n} namespace account(s) overspent`);
    // Charged no more than the credits given: what each namespace was charged never exceeds its top-ups.
    const over = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM (SELECT namespace_id, sum(coalesce(charged_micro, 0)) AS charged FROM jobs GROUP BY namespace_id) c
         JOIN (SELECT a.owner_id, sum(e.amount) AS topped FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.txn_id JOIN ledger_accounts a ON a.id = e.account_id
                WHERE t.kind = 'topup' AND a.kind = 'ns_available' GROUP BY a.owner_id) f ON f.owner_id = c.namespace_id
        WHERE c.charged > f.topped`,
    );
    if (over.rows[0]!.n > 0) problems.push(`${over.rows[0]!.n} namespace(s) charged more than their credits`);
    if (final) {
      const held = await db.query<{ held: string }>(`SELECT coalesce(sum(balance), 0)::text AS held FROM ledger_accounts WHERE kind = 'ns_held' AND owner_id = ANY($1::uuid[])`, [namespaces]);
      if (held.rows[0]!.held !== '0') problems.push(`holds not released: ${held.rows[0]!.held} µcr still held`);
      const releasedOrCaptured = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM jobs WHERE status = ANY($1::text[]) AND hold_micro > 0 AND NOT EXISTS (SELECT 1 FROM ledger_transactions l WHERE l.job_id = jobs.id AND l.kind IN ('capture', 'release'))`,
        [TERMINAL],
      );
      if (releasedOrCaptured.rows[0]!.n > 0) problems.push(`${releasedOrCaptured.rows[0]!.n} terminal job(s) whose hold was neither captured nor released`);
    }
  } catch (err) {
    // A checkpoint may fall in an engine's restart: it is not a failure of the invariants, so retried next time.
    if (final) problems.push(`could not check the invariants: ${String(err)}`);
  }
  return problems;
}

async function writeReport(r: ChaosReport): Promise<void> {
  await writeFile(REPORT, renderReport(r));
  log(`report written to ${REPORT}`);
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`chaos run aborted: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(2);
  },
);
