// Job history that stays bounded: closed days rolled up, raw partitions past the live window dropped,
// usage reports unchanged through both; the ledger's daily hash chain and its verification; history
// tasks done once across instances.
//
// Past days cannot be reached through the API (a job is created now), so their jobs and ledger
// transactions are inserted with SQL, dated in those days, with UUIDv7 ids carrying those dates, as the
// accept path would have written them; their partitions are made with create_job_partitions, as the
// migration makes them for days with data. Today's jobs go through the real path (API, node, settlement).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { runner } from 'node-pg-migrate';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';
import { newJobId } from '../../src/domain/job-ids.js';
import { addDays, dayStart } from '../../src/domain/job-history.js';
import { isoDay } from '../../src/domain/day-range.js';
import { createPool, withTransaction, type Db } from '../../src/postgres/db.js';
import { rollUpJobDay } from '../../src/postgres/job-history.repository.js';
import { byId, findJob, JOB_BY_ID } from '../../src/postgres/jobs.repository.js';
import { ensureDatabase, MIGRATIONS_DIR } from '../../src/postgres/migrate.js';
import { ADVISORY_LOCKS } from '../../src/postgres/advisory-lock.js';
import { HistoryMaintenance } from '../../src/maintenance/history.service.js';
import { LedgerChainService, type LedgerVerifyReport } from '../../src/maintenance/ledger-chain.service.js';
import { ledgerChainStore } from '../../src/postgres/ledger-chain.store.js';
import { historyStore } from '../../src/postgres/history.store.js';
import { ledgerDayHash } from '../../src/domain/ledger-chain.js';
import { rcpClockFrom } from '../../src/domain/rcp.js';
import { SnapshotService } from '../../src/snapshots/snapshot.service.js';
import { storeFromConfig } from '../../src/snapshots/snapshot-store.js';

const OTHER_MODEL = 'test/other';
const LIVE_WINDOW_DAYS = 3;

let stack: TestStack;
let tenant: Tenant;
let secondKeyId: string;
let nodeId: string;
let today: string;
const check = (fn: () => Promise<void>) => stack.check(fn);
const ago = (n: number) => addDays(today, -n);

before(async () => {
  // No maintenance role: the test runs the history tasks itself, when it means to.
  stack = await TestStack.start({ roles: ['cloud', 'io', 'scheduler', 'gate', 'status'], config: { JOBS_LIVE_WINDOW_DAYS: LIVE_WINDOW_DAYS } });
  await stack.model();
  await stack.model(OTHER_MODEL, 5, 5);
  nodeId = (await stack.node({ models: [TEST_MODEL, OTHER_MODEL] })).nodeId;
  tenant = await stack.tenant(10);
  secondKeyId = (await stack.backbone.admin.apiKeys.issueApiKey(tenant.namespaceId, { name: 'second', rateLimitRps: 100, rateLimitBurst: 100 })).key.id;
  today = isoDay((await stack.db.query<{ now: Date }>('SELECT now()')).rows[0]!.now);
});

after(async () => {
  await stack.close();
});

function history(db: Db = stack.db): HistoryMaintenance {
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const snapshots = new SnapshotService({
    db,
    store: storeFromConfig(stack.config),
    networkKey: stack.config.NETWORK_SIGNING_KEY ?? null,
    rcpClock: rcpClockFrom(stack.config),
    jobDeadlineMs: stack.config.JOB_DEADLINE_MS,
    logger,
  });
  return new HistoryMaintenance({ config: stack.config, store: historyStore(db), ledgerChain: new LedgerChainService(ledgerChainStore(db)), snapshots, logger });
}

interface PastJob {
  day: string;
  keyId: string;
  model: string;
  status: 'completed' | 'failed' | 'expired' | 'queued';
  nodeId: string | null;
  promptTokens?: number;
  completionTokens?: number;
  chargedMicro?: number;
  latencyMs: number;
}

/** Inserts a job created on a past day (see the head of this file); returns its id. */
async function insertPastJob(j: PastJob): Promise<string> {
  const created = new Date(dayStart(j.day).getTime() + 3_600_000 + Math.floor(Math.random() * 70_000_000));
  const id = newJobId(created.getTime());
  const finished = j.status !== 'queued';
  await stack.db.query(
    `INSERT INTO jobs (id, namespace_id, api_key_id, model, status, attempt, max_attempts, node_id, max_tokens, prompt_tokens_bound, hold_micro,
                       charged_micro, input_price_micro, output_price_micro, prompt_tokens, completion_tokens, error_code,
                       created_at, deadline_at, published_at, started_at, finished_at)
     VALUES ($1, $2, $3, $4, $5, $6, 3, $7, 64, 64, 100000, $8, 10, 20, $9, $10, $11,
             $12::timestamptz, $12::timestamptz + interval '30 seconds', $12, $12, CASE WHEN $13 THEN $12::timestamptz + $14 * interval '1 millisecond' END)`,
    [
      id,
      tenant.namespaceId,
      j.keyId,
      j.model,
      j.status,
      j.nodeId === null ? 0 : 1,
      j.nodeId,
      finished ? (j.chargedMicro ?? 0) : null,
      j.promptTokens ?? null,
      j.completionTokens ?? null,
      j.status === 'completed' || !finished ? null : `${j.status}_in_test`,
      created,
      finished,
      j.latencyMs,
    ],
  );
  return id;
}

interface RollupRow {
  day: string;
  api_key_id: string;
  model: string;
  node_id: string | null;
  status: string;
  jobs: number;
  prompt_tokens: number;
  completion_tokens: number;
  charged_micro: number;
  latency_ms_sum: number;
  latency_ms_max: number;
}

const ROLLUP_ORDER = `ORDER BY day, api_key_id, model, node_id NULLS FIRST, status`;

/** The raw jobs of the days, grouped as a rollup groups them. */
async function rawTotals(days: string[]): Promise<RollupRow[]> {
  const r = await stack.db.query<RollupRow>(
    `SELECT * FROM (
       SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, api_key_id, model, node_id, status, count(*)::int AS jobs,
              coalesce(sum(prompt_tokens), 0)::bigint AS prompt_tokens, coalesce(sum(completion_tokens), 0)::bigint AS completion_tokens,
              coalesce(sum(charged_micro), 0)::bigint AS charged_micro,
              coalesce(sum(extract(epoch FROM finished_at - created_at) * 1000), 0)::bigint AS latency_ms_sum,
              coalesce(max(extract(epoch FROM finished_at - created_at) * 1000), 0)::bigint AS latency_ms_max
         FROM jobs WHERE namespace_id = $1 GROUP BY 1, api_key_id, model, node_id, status) g
      WHERE day = ANY($2::text[]) ${ROLLUP_ORDER}`,
    [tenant.namespaceId, days],
  );
  return r.rows;
}

async function rollups(days: string[]): Promise<RollupRow[]> {
  const r = await stack.db.query<RollupRow>(
    `SELECT to_char(day, 'YYYY-MM-DD') AS day, api_key_id, model, node_id, status, jobs, prompt_tokens, completion_tokens, charged_micro,
            latency_ms_sum, latency_ms_max
       FROM job_rollups WHERE namespace_id = $1 AND to_char(day, 'YYYY-MM-DD') = ANY($2::text[]) ${ROLLUP_ORDER}`,
    [tenant.namespaceId, days],
  );
  return r.rows;
}

async function rawJobCount(day: string): Promise<number> {
  const r = await stack.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM jobs WHERE created_at >= $1 AND created_at < $2`,
    [dayStart(day), dayStart(addDays(day, 1))],
  );
  return r.rows[0]!.n;
}

async function partitionExists(day: string): Promise<boolean> {
  const r = await stack.db.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [`jobs_${day.replaceAll('-', '')}`]);
  return r.rows[0]!.ok;
}

async function usage(query: string, format: 'json' | 'csv' = 'json'): Promise<string> {
  const res = await fetch(`${stack.url}/v1/usage?${query}&format=${format}`, { headers: { authorization: `Bearer ${tenant.apiKey}` } });
  assert.equal(res.status, 200);
  return res.text();
}


test('closed days roll up to the totals of their raw jobs; partitions past the live window are dropped; usage reports do not change', () =>
  check(async () => {
    // Today, through the real path.
    const ask = (model: string) => ({ model, messages: [{ role: 'user' as const, content: 'count me' }], max_tokens: 8 });
    await tenant.client.chat.completions.create(ask(TEST_MODEL));
    await tenant.client.chat.completions.create(ask(OTHER_MODEL));

    // Past days: 5 and 4 days ago fall outside the 3-day live window, 2 days ago inside it.
    const past: PastJob[] = [
      { day: ago(5), keyId: tenant.keyId, model: TEST_MODEL, status: 'completed', nodeId, promptTokens: 10, completionTokens: 20, chargedMicro: 500, latencyMs: 1200 },
      { day: ago(5), keyId: tenant.keyId, model: TEST_MODEL, status: 'completed', nodeId, promptTokens: 11, completionTokens: 5, chargedMicro: 210, latencyMs: 800 },
      { day: ago(5), keyId: secondKeyId, model: OTHER_MODEL, status: 'failed', nodeId, latencyMs: 3000 },
      { day: ago(4), keyId: tenant.keyId, model: OTHER_MODEL, status: 'completed', nodeId, promptTokens: 7, completionTokens: 9, chargedMicro: 80, latencyMs: 450 },
      { day: ago(4), keyId: secondKeyId, model: TEST_MODEL, status: 'expired', nodeId: null, latencyMs: 30_000 },
      { day: ago(2), keyId: tenant.keyId, model: TEST_MODEL, status: 'completed', nodeId, promptTokens: 3, completionTokens: 4, chargedMicro: 110, latencyMs: 99 },
      { day: ago(2), keyId: tenant.keyId, model: TEST_MODEL, status: 'completed', nodeId, promptTokens: 5, completionTokens: 6, chargedMicro: 160, latencyMs: 2500 },
      { day: ago(2), keyId: secondKeyId, model: TEST_MODEL, status: 'completed', nodeId, promptTokens: 1, completionTokens: 1, chargedMicro: 30, latencyMs: 10 },
    ];
    const pastDays = [ago(5), ago(4), ago(2)];
    for (const day of pastDays) await stack.db.query(`SELECT create_job_partitions($1::date)`, [day]);
    for (const j of past) await insertPastJob(j);

    const range = `from=${ago(6)}&to=${today}`;
    const jsonBefore = await usage(range);
    const csvBefore = await usage(range, 'csv');
    const rawBefore = await rawTotals(pastDays);
    // The raw totals are what was inserted (so that a wrong rollup cannot agree with a wrong query).
    assert.equal(rawBefore.reduce((s, r) => s + r.jobs, 0), past.length);
    assert.equal(rawBefore.reduce((s, r) => s + r.charged_micro, 0), past.reduce((s, j) => s + (j.chargedMicro ?? 0), 0));
    assert.equal(rawBefore.reduce((s, r) => s + r.latency_ms_sum, 0), past.reduce((s, j) => s + j.latencyMs, 0));
    assert.equal(Math.max(...rawBefore.filter((r) => r.day === ago(5)).map((r) => r.latency_ms_max)), 3000);

    const report = await history().run();
    assert.ok(report, 'the history lock was free');
    assert.deepEqual(report.rolledUp, pastDays);
    assert.deepEqual(report.dropped, [ago(5), ago(4)]);
    assert.ok(report.partitionsCreated.every((d) => d > today), 'partitions are made ahead, never for past days');

    // Rollup totals equal the raw totals they replace.
    assert.deepEqual(await rollups(pastDays), rawBefore);
    const recorded = await stack.db.query<{ day: string; jobs: number; charged_micro: number; dropped: boolean }>(
      `SELECT to_char(day, 'YYYY-MM-DD') AS day, jobs, charged_micro, raw_dropped_at IS NOT NULL AS dropped FROM job_rollup_days ORDER BY day`,
    );
    assert.deepEqual(
      recorded.rows,
      pastDays.map((day) => {
        const rows = rawBefore.filter((r) => r.day === day);
        return { day, jobs: rows.reduce((s, r) => s + r.jobs, 0), charged_micro: rows.reduce((s, r) => s + r.charged_micro, 0), dropped: day !== ago(2) };
      }),
    );

    // The raw rows past the window are gone, partitions and all; those inside it stay.
    assert.equal(await rawJobCount(ago(5)), 0);
    assert.equal(await rawJobCount(ago(4)), 0);
    assert.equal(await partitionExists(ago(5)), false);
    assert.equal(await partitionExists(ago(4)), false);
    assert.equal(await rawJobCount(ago(2)), 3);

    // The reports are unchanged, in JSON and CSV, through the API and the CLI: dropped days count from
    // their rollups, and a rolled-up day whose raw rows remain (2 days ago) counts once.
    assert.deepEqual(JSON.parse(await usage(range)), JSON.parse(jsonBefore));
    assert.equal(await usage(range, 'csv'), csvBefore);
    const viaAdmin = await fetch(`${stack.url}/admin/namespaces/${tenant.namespaceId}/usage?${range}&format=csv`, {
      headers: { authorization: `Bearer ${stack.config.ADMIN_TOKEN}` },
    });
    assert.equal(await viaAdmin.text(), csvBefore);
    const cli = await promisify(execFile)(process.execPath, ['dist/src/cli/main.js', 'admin', 'usage', tenant.namespaceId, '--from', ago(6), '--to', today, '--csv'], {
      env: stack.cliEnv(),
    });
    assert.equal(cli.stdout, csvBefore);
    const days = new Set((JSON.parse(jsonBefore) as { data: Array<{ day: string }> }).data.map((r) => r.day));
    assert.deepEqual([...days].sort(), [...pastDays, today]);

    // Running again does nothing; rolling a day up again replaces it, never doubles it.
    const again = await history().run();
    assert.deepEqual(again, { partitionsCreated: [], rolledUp: [], dropped: [], ledgerDaysChained: [], snapshotted: [] });
    await withTransaction(stack.db, (tx) => rollUpJobDay(tx, ago(2)));
    await withTransaction(stack.db, (tx) => rollUpJobDay(tx, ago(2)));
    assert.deepEqual(await rollups(pastDays), rawBefore);
    assert.deepEqual(JSON.parse(await usage(range)), JSON.parse(jsonBefore));
  }));

test('a closed day with an unfinished job waits for it before its rollup and its drop', () =>
  check(async () => {
    const day = ago(7);
    await stack.db.query(`SELECT create_job_partitions($1::date)`, [day]);
    await insertPastJob({ day, keyId: tenant.keyId, model: TEST_MODEL, status: 'completed', nodeId, promptTokens: 2, completionTokens: 2, chargedMicro: 60, latencyMs: 5 });
    const stuck = await insertPastJob({ day, keyId: tenant.keyId, model: TEST_MODEL, status: 'queued', nodeId: null, latencyMs: 0 });

    const waiting = await history().run();
    assert.deepEqual(waiting?.rolledUp, []);
    assert.deepEqual(waiting?.dropped, []);
    assert.equal(await rawJobCount(day), 2);

    // The deadline sweep would end it so; then the day goes through.
    await stack.db.query(`UPDATE jobs SET status = 'expired', charged_micro = 0, finished_at = deadline_at WHERE id = $1`, [stuck]);
    const before = await rawTotals([day]);
    const done = await history().run();
    assert.deepEqual(done?.rolledUp, [day]);
    assert.deepEqual(done?.dropped, [day]);
    assert.deepEqual(await rollups([day]), before);
    assert.equal(await partitionExists(day), false);
    const report = JSON.parse(await usage(`from=${day}&to=${day}`)) as { data: Array<{ requests: number; completed: number; expired: number; credits_charged: string }> };
    assert.deepEqual(
      report.data.map((r) => [r.requests, r.completed, r.expired, r.credits_charged]),
      [[2, 1, 1, '0.000060']],
    );
  }));

/** Records a balanced top-up dated `at` (funding -> namespace), keeping the cached balances right. */
async function pastTopUp(at: Date, micro: number): Promise<void> {
  await withTransaction(stack.db, async (tx) => {
    const accounts = await tx.query<{ id: number; kind: string }>(
      `SELECT id, kind FROM ledger_accounts WHERE kind = 'funding' OR (kind = 'ns_available' AND owner_id = $1)`,
      [tenant.namespaceId],
    );
    const funding = accounts.rows.find((a) => a.kind === 'funding')!.id;
    const available = accounts.rows.find((a) => a.kind === 'ns_available')!.id;
    await tx.query(
      `WITH t AS (INSERT INTO ledger_transactions (kind, memo, created_at) VALUES ('topup', 'dated in the past by the test', $1) RETURNING id)
       INSERT INTO ledger_entries (txn_id, account_id, amount) SELECT t.id, u.a, u.m FROM t, unnest($2::bigint[], $3::bigint[]) AS u(a, m)`,
      [at, [funding, available], [-micro, micro]],
    );
    await tx.query(`UPDATE ledger_accounts SET balance = balance + u.m FROM unnest($1::bigint[], $2::bigint[]) AS u(a, m) WHERE id = u.a`, [
      [funding, available],
      [-micro, micro],
    ]);
  });
}

async function verifyViaApi(): Promise<LedgerVerifyReport> {
  const res = await fetch(`${stack.url}/admin/ledger/verify`, { headers: { authorization: `Bearer ${stack.config.ADMIN_TOKEN}` } });
  assert.equal(res.status, 200);
  return (await res.json()) as LedgerVerifyReport;
}

async function verifyViaCli(): Promise<{ code: number; report: LedgerVerifyReport }> {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ['dist/src/cli/main.js', 'admin', 'ledger-verify', '--json'], { env: stack.cliEnv() });
    return { code: 0, report: JSON.parse(stdout) as LedgerVerifyReport };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, report: JSON.parse(e.stdout) as LedgerVerifyReport };
  }
}

/** Changes append-only rollup rows as an intruder with the database's owner rights would. */
async function tamper(table: 'ledger_rollups' | 'ledger_days', sql: string, params: unknown[]): Promise<void> {
  await withTransaction(stack.db, async (tx) => {
    await tx.query(`ALTER TABLE ${table} DISABLE TRIGGER ${table}_append_only`);
    await tx.query(sql, params);
    await tx.query(`ALTER TABLE ${table} ENABLE TRIGGER ${table}_append_only`);
  });
}

test('the ledger is rolled up per closed day, each day chained to the previous; a tampered rollup breaks the chain and verify names the day', () =>
  check(async () => {
    await pastTopUp(new Date(dayStart(ago(5)).getTime() + 3_600_000), 1_000_000);
    await pastTopUp(new Date(dayStart(ago(4)).getTime() + 7_200_000), 2_000_000);
    await pastTopUp(new Date(dayStart(ago(4)).getTime() + 9_000_000), 500_000);
    await pastTopUp(new Date(dayStart(ago(3)).getTime() + 60_000), 250_000);

    const run = await history().run();
    // From the first ledger day on, without gaps (ago(2), with no entries, is chained too); up to
    // yesterday, unless the test runs in the first minute of a UTC day.
    assert.deepEqual(run?.ledgerDaysChained.slice(0, 4), [ago(5), ago(4), ago(3), ago(2)]);
    const days = await stack.db.query<{ day: string; entries: number; prev_hash: string; hash: string }>(
      `SELECT to_char(day, 'YYYY-MM-DD') AS day, entries::int, encode(prev_hash, 'hex') AS prev_hash, encode(hash, 'hex') AS hash FROM ledger_days ORDER BY day`,
    );
    assert.deepEqual(days.rows.slice(0, 4).map((d) => [d.day, d.entries]), [[ago(5), 2], [ago(4), 4], [ago(3), 2], [ago(2), 0]]);
    assert.equal(days.rows[0]!.prev_hash, '00'.repeat(32));
    for (let i = 1; i < days.rows.length; i++) assert.equal(days.rows[i]!.prev_hash, days.rows[i - 1]!.hash);
    const rollup = await stack.db.query<{ entries: number; debits_micro: number; credits_micro: number; net_micro: number }>(
      `SELECT sum(entries)::int AS entries, sum(debits_micro)::bigint AS debits_micro, sum(credits_micro)::bigint AS credits_micro, sum(net_micro)::bigint AS net_micro
         FROM ledger_rollups WHERE day = $1::date`,
      [ago(4)],
    );
    assert.deepEqual(rollup.rows[0], { entries: 4, debits_micro: 2_500_000, credits_micro: 2_500_000, net_micro: 0 });

    const good = await verifyViaApi();
    assert.equal(good.ok, true, JSON.stringify(good));
    assert.equal(good.broken, null);
    assert.equal(good.days_verified, days.rows.length);
    assert.equal(good.head_hash, days.rows.at(-1)!.hash);
    assert.deepEqual((await verifyViaCli()).code, 0);

    // One figure of one day's rollup changed: the chain breaks at that day, and says why.
    const target = await stack.db.query<{ account_id: number; credits_micro: number; net_micro: number }>(
      `SELECT account_id, credits_micro, net_micro FROM ledger_rollups WHERE day = $1::date AND credits_micro > 0`,
      [ago(4)],
    );
    const row = target.rows[0]!;
    await tamper('ledger_rollups', `UPDATE ledger_rollups SET credits_micro = credits_micro + 1, net_micro = net_micro + 1 WHERE day = $1::date AND account_id = $2`, [
      ago(4),
      row.account_id,
    ]);
    const broken = await verifyViaApi();
    assert.equal(broken.ok, false);
    assert.equal(broken.broken?.day, ago(4));
    assert.match(broken.broken?.reason ?? '', /stored hash .* does not match the day's rollup rows/);
    assert.equal(broken.days_verified, 1, 'the day before it still verifies');
    const cli = await verifyViaCli();
    assert.equal(cli.code, 3);
    assert.deepEqual(cli.report.broken, broken.broken);

    // A forger who also rewrites that day's hash is caught by the entries behind the rollup.
    const forged = await stack.db.query<{ hash: string }>(`SELECT encode(hash, 'hex') AS hash FROM ledger_days WHERE day = $1::date`, [ago(4)]);
    const d4 = await stack.db.query<{ entries: number; entries_digest: string; prev_hash: string }>(
      `SELECT entries::int, encode(entries_digest, 'hex') AS entries_digest, encode(prev_hash, 'hex') AS prev_hash FROM ledger_days WHERE day = $1::date`,
      [ago(4)],
    );
    const tamperedRows = await stack.db.query<{ account_id: number; entries: number; debits_micro: number; credits_micro: number; net_micro: number }>(
      `SELECT account_id, entries, debits_micro, credits_micro, net_micro FROM ledger_rollups WHERE day = $1::date`,
      [ago(4)],
    );
    const rehash = ledgerDayHash(d4.rows[0]!.prev_hash, { day: ago(4), entries: d4.rows[0]!.entries, entriesDigest: d4.rows[0]!.entries_digest, rows: tamperedRows.rows });
    await tamper('ledger_days', `UPDATE ledger_days SET hash = decode($2, 'hex') WHERE day = $1::date`, [ago(4), rehash]);
    const stillBroken = await verifyViaApi();
    assert.equal(stillBroken.broken?.day, ago(4));
    assert.match(stillBroken.broken?.reason ?? '', /rollup rows differ from the day's ledger entries \(account \d+: stored .* entries give .*\)/);

    // Put back as it was: the chain verifies again.
    await tamper('ledger_rollups', `UPDATE ledger_rollups SET credits_micro = $3, net_micro = $4 WHERE day = $1::date AND account_id = $2`, [
      ago(4),
      row.account_id,
      row.credits_micro,
      row.net_micro,
    ]);
    await tamper('ledger_days', `UPDATE ledger_days SET hash = decode($2, 'hex') WHERE day = $1::date`, [ago(4), forged.rows[0]!.hash]);
    assert.equal((await verifyViaApi()).ok, true);

    // The rollups are append-only without the intruder's rights.
    await assert.rejects(stack.db.query(`UPDATE ledger_rollups SET entries = entries WHERE day = $1::date`, [ago(4)]), /append-only/);
    await assert.rejects(stack.db.query(`DELETE FROM ledger_days WHERE day = $1::date`, [ago(4)]), /append-only/);
  }));

test('history tasks run once across instances: a held lock makes a run skip; two concurrent runs do the work once', () =>
  check(async () => {
    // Older than every day the earlier tests had snapshotted: rows inserted into a day already
    // snapshotted would stay (no verified snapshot holds them), and this test is about the drop.
    const day = ago(9);
    await stack.db.query(`SELECT create_job_partitions($1::date)`, [day]);
    await insertPastJob({ day, keyId: secondKeyId, model: OTHER_MODEL, status: 'completed', nodeId, promptTokens: 4, completionTokens: 4, chargedMicro: 40, latencyMs: 70 });
    const before = await rawTotals([day]);
    const pools = [createPool(stack.config.DATABASE_URL, 2), createPool(stack.config.DATABASE_URL, 2)];
    try {
      const [a, b] = pools.map((p) => history(p));

      // Another instance holds the lock: this one does nothing.
      const holder = await stack.db.connect();
      try {
        await holder.query('BEGIN');
        await holder.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCKS.history]);
        assert.equal(await a!.run(), null);
        assert.equal(await rawJobCount(day), 1);
        assert.deepEqual(await rollups([day]), []);
      } finally {
        await holder.query('COMMIT');
        holder.release();
      }

      // Two instances at once: the day is rolled up and dropped exactly once between them, without error.
      const runs = await Promise.all([a!.run(), b!.run()]);
      const rolled = runs.flatMap((r) => r?.rolledUp ?? []);
      const dropped = runs.flatMap((r) => r?.dropped ?? []);
      assert.deepEqual(rolled, [day]);
      assert.deepEqual(dropped, [day]);
      assert.deepEqual(await rollups([day]), before);
      const recorded = await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM job_rollup_days WHERE day = $1::date`, [day]);
      assert.equal(recorded.rows[0]!.n, 1);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  }));

test('a job looked up by its UUIDv7 id reads one partition; an id without a time (accepted before 0011) reads every partition', () =>
  check(async () => {
    const plan = async (id: string) => {
      const r = await stack.db.query<{ 'QUERY PLAN': string }>(`EXPLAIN (COSTS OFF) SELECT * FROM jobs WHERE ${JOB_BY_ID}`, byId(id));
      return r.rows.map((x) => x['QUERY PLAN']).join('\n');
    };
    const partitions = (await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'jobs'::regclass`)).rows[0]!.n;
    assert.ok(partitions > 2);
    const v7 = await plan(newJobId());
    assert.equal(v7.match(/ on jobs_\d{8}/g)?.length, 1, v7);
    const v4 = await plan(randomUUID());
    assert.equal(v4.match(/ on jobs_\d{8}/g)?.length, partitions, v4);
  }));

test('migration 0011 turns an existing jobs table into day partitions, keeping its rows and what references them', async () => {
  const url = `postgres://postgres@127.0.0.1:5432/${stack.id}_mig`;
  await ensureDatabase(url);
  const before = readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql') && f < '0011_job_history.sql').length;
  const migrateTo = (count: number) =>
    runner({ databaseUrl: url, dir: MIGRATIONS_DIR, direction: 'up', count, migrationsTable: 'pgmigrations', checkOrder: true, log: () => undefined });
  await migrateTo(before);
  const db = createPool(url, 2);
  try {
    // Rows as the schema before 0011 held them: random (v4) ids, created a few days apart.
    await db.query(`
      INSERT INTO accounts (id, name) VALUES ('00000000-0000-0000-0000-00000000000a', 'a');
      INSERT INTO namespaces (id, account_id, name) VALUES ('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-00000000000a', 'ns');
      INSERT INTO api_keys (id, namespace_id, key_hash, key_prefix) VALUES ('00000000-0000-0000-0000-00000000000c', '00000000-0000-0000-0000-00000000000b', decode(repeat('ab', 32), 'hex'), 'rk_');
      INSERT INTO models (name, input_price_micro, output_price_micro) VALUES ('m', 1, 2);
      INSERT INTO nodes (id, operator_account_id) VALUES ('0x${'1'.repeat(40)}', '00000000-0000-0000-0000-00000000000a');
      INSERT INTO jobs (id, namespace_id, api_key_id, model, status, attempt, max_attempts, node_id, max_tokens, prompt_tokens_bound, hold_micro,
                        charged_micro, input_price_micro, output_price_micro, created_at, deadline_at, finished_at)
      VALUES ('00000000-0000-4000-8000-000000000001', '00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-00000000000c', 'm', 'completed', 1, 3,
              '0x${'1'.repeat(40)}', 10, 10, 100, 50, 1, 2, now() - interval '3 days', now(), now() - interval '3 days' + interval '1 second'),
             ('00000000-0000-4000-8000-000000000002', '00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-00000000000c', 'm', 'failed', 0, 3,
              NULL, 10, 10, 100, 0, 1, 2, now() - interval '1 day', now(), now());
      INSERT INTO job_attempts (job_id, attempt, node_id, outcome) VALUES ('00000000-0000-4000-8000-000000000001', 1, '0x${'1'.repeat(40)}', 'completed');
      INSERT INTO idempotency_keys (namespace_id, key, request_hash, job_id) VALUES ('00000000-0000-0000-0000-00000000000b', 'k', decode(repeat('ab', 32), 'hex'), '00000000-0000-4000-8000-000000000002');
      INSERT INTO quarantine (job_id, reason) VALUES ('00000000-0000-4000-8000-000000000002', 'no_node');
    `);
    const rowsBefore = (await db.query(`SELECT * FROM jobs ORDER BY id`)).rows;

    await migrateTo(Infinity);
    // Later migrations add columns; the columns that were there keep their values.
    const columnsBefore = Object.keys(rowsBefore[0] as object);
    const rowsAfter = (await db.query<Record<string, unknown>>(`SELECT * FROM jobs ORDER BY id`)).rows;
    assert.deepEqual(rowsAfter.map((r) => Object.fromEntries(columnsBefore.map((c) => [c, r[c]]))), rowsBefore);
    const placed = await db.query<{ part: string; day: string }>(
      `SELECT tableoid::regclass::text AS part, to_char(created_at AT TIME ZONE 'UTC', 'YYYYMMDD') AS day FROM jobs ORDER BY id`,
    );
    for (const p of placed.rows) assert.equal(p.part, `jobs_${p.day}`);
    const attempts = await db.query<{ part: string }>(`SELECT tableoid::regclass::text AS part FROM job_attempts`);
    assert.deepEqual(attempts.rows, [{ part: `job_attempts_${placed.rows[0]!.day}` }]);
    const refs = await db.query<{ n: number }>(
      `SELECT (SELECT count(*) FROM idempotency_keys k JOIN jobs j ON j.id = k.job_id AND j.created_at = k.job_created_at)
            + (SELECT count(*) FROM quarantine q JOIN jobs j ON j.id = q.job_id AND j.created_at = q.job_created_at) AS n`,
    );
    assert.equal(Number(refs.rows[0]!.n), 2);
    // Today and the week ahead have partitions; a referenced day cannot be dropped while referenced.
    const ahead = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM generate_series(0, 7) g WHERE to_regclass('jobs_' || to_char((now() AT TIME ZONE 'UTC')::date + g, 'YYYYMMDD')) IS NOT NULL`,
    );
    assert.equal(ahead.rows[0]!.n, 8);
    await assert.rejects(db.query(`SELECT drop_job_partitions((now() - interval '1 day')::date)`), /idempotency_keys/);
    assert.equal((await findJob(db, '00000000-0000-4000-8000-000000000001'))?.status, 'completed');
  } finally {
    await db.end();
  }
  const admin = createPool('postgres://postgres@127.0.0.1:5432/postgres', 1);
  await admin.query(`DROP DATABASE "${stack.id}_mig"`);
  await admin.end();
});
