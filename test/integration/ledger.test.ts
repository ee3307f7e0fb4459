// The credit ledger's guarantees, enforced by PostgreSQL itself, whatever the application does: entries
// and transactions are append-only, every transaction balances (checked at COMMIT), a namespace's
// available balance never goes below zero (also under concurrent holds), a job is captured at most once;
// and top-ups move credits from the funding account to the namespace.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rcpClockFrom } from '../../src/domain/rcp.js';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';
import { withTransaction } from '../../src/postgres/db.js';
import { InsufficientBalanceError, ledgerAccountId, ledgerTotals, postTransaction } from '../../src/postgres/ledger.repository.js';
import { SettlementService } from '../../src/jobs/settlement.service.js';
import { settlementStore } from '../../src/postgres/settlement.store.js';
import { AppError } from '../../src/errors.js';

let stack: TestStack;
let alice: Tenant;

before(async () => {
  stack = await TestStack.start();
  await stack.model();
  alice = await stack.tenant(10);
});

after(async () => {
  await stack.close();
});

const check = (fn: () => Promise<void>) => stack.check(fn);

/** Rejects with a PostgreSQL error whose code (and, optionally, message) match. */
async function refused(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    const err = e as { code?: string; message?: string };
    assert.equal(err.code, code, `expected SQLSTATE ${code}, got ${err.code}: ${err.message}`);
    if (message) assert.match(err.message ?? '', message);
    return true;
  });
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const r = await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${sql}`, params);
  return r.rows[0]!.n;
}

test('ledger entries and transactions are append-only: UPDATE and DELETE are refused by the database', () =>
  check(async () => {
    const entries = await count('ledger_entries');
    const txns = await count('ledger_transactions');
    assert.ok(entries >= 2 && txns >= 1, 'the tenant top-up wrote a transaction');
    await refused(stack.db.query(`UPDATE ledger_entries SET amount = amount * 2`), 'P0001', /append-only: UPDATE on ledger_entries/);
    await refused(stack.db.query(`DELETE FROM ledger_entries`), 'P0001', /append-only: DELETE on ledger_entries/);
    await refused(stack.db.query(`UPDATE ledger_transactions SET memo = 'rewritten'`), 'P0001', /append-only: UPDATE on ledger_transactions/);
    await refused(stack.db.query(`DELETE FROM ledger_transactions`), 'P0001', /append-only: DELETE on ledger_transactions/);
    assert.equal(await count('ledger_entries'), entries);
    assert.equal(await count('ledger_transactions'), txns);
    assert.equal(await count(`ledger_transactions WHERE memo = 'rewritten'`), 0);
  }));

test('an unbalanced transaction is refused at COMMIT (deferred constraint trigger), leaving nothing behind', () =>
  check(async () => {
    const entries = await count('ledger_entries');
    const client = await stack.db.connect();
    try {
      const funding = await ledgerAccountId(client, 'funding', null);
      const available = await ledgerAccountId(client, 'ns_available', alice.namespaceId);
      await client.query('BEGIN');
      const t = await client.query<{ id: number }>(`INSERT INTO ledger_transactions (kind, memo) VALUES ('topup', 'unbalanced') RETURNING id`);
      const txnId = t.rows[0]!.id;
      // Each statement succeeds on its own: the check is deferred to the end of the transaction.
      await client.query(`INSERT INTO ledger_entries (txn_id, account_id, amount) VALUES ($1, $2, -1000), ($1, $3, 999)`, [txnId, funding, available]);
      await refused(client.query('COMMIT'), 'P0001', /does not balance \(sum -1\)/);
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release();
    }
    assert.equal(await count('ledger_entries'), entries);
    assert.equal(await count(`ledger_transactions WHERE memo = 'unbalanced'`), 0);

    // The application-level helper refuses it before it reaches the database.
    await assert.rejects(
      withTransaction(stack.db, async (tx) => {
        const funding = await ledgerAccountId(tx, 'funding', null);
        const available = await ledgerAccountId(tx, 'ns_available', alice.namespaceId);
        await postTransaction(tx, { kind: 'topup', jobId: null }, [
          { accountId: funding, amount: -5 },
          { accountId: available, amount: 4 },
        ]);
      }),
      /unbalanced topup transaction/,
    );
    assert.equal(await count('ledger_entries'), entries);
  }));

test('the per-transaction check is per transaction: two unbalanced halves that sum to zero together are still refused', () =>
  check(async () => {
    const entries = await count('ledger_entries');
    const client = await stack.db.connect();
    try {
      const funding = await ledgerAccountId(client, 'funding', null);
      const available = await ledgerAccountId(client, 'ns_available', alice.namespaceId);
      await client.query('BEGIN');
      const a = (await client.query<{ id: number }>(`INSERT INTO ledger_transactions (kind, memo) VALUES ('topup', 'half a') RETURNING id`)).rows[0]!.id;
      const b = (await client.query<{ id: number }>(`INSERT INTO ledger_transactions (kind, memo) VALUES ('topup', 'half b') RETURNING id`)).rows[0]!.id;
      await client.query(`INSERT INTO ledger_entries (txn_id, account_id, amount) VALUES ($1, $2, -700)`, [a, funding]);
      await client.query(`INSERT INTO ledger_entries (txn_id, account_id, amount) VALUES ($1, $2, 700)`, [b, available]);
      await refused(client.query('COMMIT'), 'P0001', /does not balance/);
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release();
    }
    assert.equal(await count('ledger_entries'), entries);
  }));

test("a namespace's available balance cannot go below zero: CHECK constraint and posting helper", () =>
  check(async () => {
    const ns = await stack.tenant(0.001); // 1000 micro-credits
    await refused(
      stack.db.query(`UPDATE ledger_accounts SET balance = -1 WHERE kind = 'ns_available' AND owner_id = $1`, [ns.namespaceId]),
      '23514',
      /ledger_accounts_check|violates check constraint/,
    );
    // Held accounts cannot go negative either (only the funding account may).
    await refused(stack.db.query(`UPDATE ledger_accounts SET balance = -1 WHERE kind = 'ns_held' AND owner_id = $1`, [ns.namespaceId]), '23514');

    await assert.rejects(
      withTransaction(stack.db, async (tx) => {
        const available = await ledgerAccountId(tx, 'ns_available', ns.namespaceId);
        const held = await ledgerAccountId(tx, 'ns_held', ns.namespaceId);
        await postTransaction(tx, { kind: 'hold', jobId: randomUUID() }, [
          { accountId: available, amount: -1001 },
          { accountId: held, amount: 1001 },
        ]);
      }),
      (e: unknown) => e instanceof InsufficientBalanceError,
    );
    assert.deepEqual(await stack.balance(ns.namespaceId), { available: 1000, held: 0 });
  }));

test('concurrent holds on one namespace: exactly as many fit as the balance covers, and none fails otherwise', () =>
  check(async () => {
    const ns = await stack.tenant(0.001); // 1000 micro-credits
    const settlement = new SettlementService(settlementStore(stack.db), stack.config.OPERATOR_SHARE_BPS, rcpClockFrom(stack.config));
    // 8 concurrent accepts, each holding 300 of the 1000 available: exactly 3 fit, whatever the interleaving;
    // the others must be refused as insufficient_credits, and nothing else.
    const ids = Array.from({ length: 8 }, () => randomUUID());
    const outcomes = await Promise.allSettled(
      ids.map((id) =>
        settlement.acceptWithHold({
          id,
          namespaceId: ns.namespaceId,
          apiKeyId: ns.keyId,
          model: TEST_MODEL,
          maxAttempts: 1,
          maxTokens: 16,
          promptTokensBound: 100,
          holdMicro: 300,
          inputPriceMicro: 10,
          outputPriceMicro: 20,
          minChargeMicro: 0,
          deadlineAt: new Date(Date.now() + 60_000),
        }, null),
      ),
    );
    const ok = outcomes.filter((o) => o.status === 'fulfilled').length;
    const refusals = outcomes.flatMap((o): unknown[] => (o.status === 'rejected' ? [o.reason] : []));
    const other = refusals.filter((r) => !(r instanceof AppError && r.code === 'insufficient_credits'));
    assert.deepEqual(other.map(String), [], 'every refusal must be insufficient_credits');
    assert.equal(ok, 3);
    assert.deepEqual(await stack.balance(ns.namespaceId), { available: 100, held: 900 });
    assert.equal(await count(`jobs WHERE namespace_id = $1`, [ns.namespaceId]), 3, 'a refused accept leaves no job row');

    // Release them (as an expiry would), back to where it started.
    for (const id of ids) await settlement.endWithoutResult(id, 'cancelled', 'test', 'released by the test');
    assert.deepEqual(await stack.balance(ns.namespaceId), { available: 1000, held: 0 });
  }));

test('concurrent requests from one namespace through the public API all complete, each charged once', () =>
  check(async () => {
    await stack.node({ capacity: 16 });
    const t = await stack.tenant(10);
    const before = await stack.balance(t.namespaceId);
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) =>
        t.client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: 'user', content: `question ${i}` }], max_tokens: 20 }),
      ),
    );
    const errors = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
    assert.deepEqual(errors, []);
    const charged = results.reduce((sum, r) => sum + (r.status === 'fulfilled' ? Math.round(Number((r.value as unknown as { resultity: { credits_charged: string } }).resultity.credits_charged) * 1e6) : 0), 0);
    const after = await stack.balance(t.namespaceId);
    assert.equal(before.available - after.available, charged);
    assert.equal(after.held, 0);
  }));

function newJob(t: Tenant, id = randomUUID()) {
  return {
    id,
    namespaceId: t.namespaceId,
    apiKeyId: t.keyId,
    model: TEST_MODEL,
    maxAttempts: 1,
    maxTokens: 16,
    promptTokensBound: 100,
    holdMicro: 1000,
    inputPriceMicro: 10,
    outputPriceMicro: 20,
    minChargeMicro: 0,
    deadlineAt: new Date(Date.now() + 60_000),
  };
}

/** The terms newJob's jobs are accepted under. */
const TERMS = { holdMicro: 1000, inputPriceMicro: 10, outputPriceMicro: 20, minChargeMicro: 0, surchargeBps: 0 };

// Holds and settlements are one statement each (migrations/0018), so the interleavings that matter
// happen inside the server: many of each on one namespace, each on its own connection and at once, must
// all succeed. Locks taken in different orders would show as deadlocks (SQLSTATE 40P01), which the
// server breaks by failing one of the statements.
test('holds and completions on one namespace, racing on separate connections, all succeed (no deadlock)', () =>
  check(async () => {
    const t = await stack.tenant(1);
    const settlement = new SettlementService(settlementStore(stack.db), stack.config.OPERATOR_SHARE_BPS, rcpClockFrom(stack.config));
    const nodeId = `0x${randomUUID().replace(/-/g, '').padEnd(40, '0')}`;
    await stack.db.query(`INSERT INTO nodes (id, operator_account_id) VALUES ($1, $2)`, [nodeId, await stack.operator()]);
    const running = Array.from({ length: 12 }, () => newJob(t));
    for (const j of running) await settlement.acceptWithHold(j, null);
    const fresh = Array.from({ length: 12 }, () => newJob(t));
    const outcomes = await Promise.allSettled([
      ...running.map((j) => settlement.complete({ jobId: j.id, attempt: 1, nodeId, usage: { prompt_tokens: 10, completion_tokens: 16 }, outputEmpty: false, terms: TERMS })),
      ...fresh.map((j) => settlement.acceptWithHold(j, null)),
    ]);
    assert.deepEqual(outcomes.flatMap((o) => (o.status === 'rejected' ? [String(o.reason)] : [])), []);
    assert.deepEqual(
      outcomes.slice(0, running.length).map((o) => (o.status === 'fulfilled' ? (o.value as { outcome: string }).outcome : 'rejected')),
      running.map(() => 'completed'),
    );
    // Each completion cost 10*10 + 16*20 = 420; the new holds of 1000 are still held.
    assert.deepEqual(await stack.balance(t.namespaceId), { available: 1_000_000 - 12 * 420 - 12 * 1000, held: 12 * 1000 });
    for (const j of fresh) await settlement.endWithoutResult(j.id, 'cancelled', 'test', 'released by the test');
  }));

test("a job is captured at most once: the unique index refuses a second 'capture' (and a second hold or release)", () =>
  check(async () => {
    const node = await stack.node();
    const r = await alice.client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: 'user', content: 'hello' }], max_tokens: 20 });
    const jobId = r.id;
    assert.equal(await count(`ledger_transactions WHERE job_id = $1 AND kind = 'capture'`, [jobId]), 1);
    const entries = await count('ledger_entries');

    // The settlement path itself is fenced: completing again is a no-op.
    const settlement = new SettlementService(settlementStore(stack.db), stack.config.OPERATOR_SHARE_BPS, rcpClockFrom(stack.config));
    const settled = await settlement.complete({ jobId, attempt: 1, nodeId: node.nodeId, usage: { prompt_tokens: 1, completion_tokens: 1 }, outputEmpty: false, terms: TERMS });
    assert.equal(settled.outcome, 'stale');
    assert.equal(await settlement.endWithoutResult(jobId, 'failed', 'x', 'x'), null);

    // Below the application, the database refuses a second capture for the same job.
    for (const kind of ['capture', 'hold', 'release'] as const) {
      await refused(
        withTransaction(stack.db, async (tx) => {
          const platform = await ledgerAccountId(tx, 'platform_revenue', null);
          const funding = await ledgerAccountId(tx, 'funding', null);
          await postTransaction(tx, { kind, jobId }, [
            { accountId: funding, amount: -1 },
            { accountId: platform, amount: 1 },
          ]);
        }),
        '23505',
        /ledger_transactions_job_kind/,
      );
    }
    assert.equal(await count('ledger_entries'), entries);
    assert.equal(await count(`ledger_transactions WHERE job_id = $1 AND kind = 'capture'`, [jobId]), 1);
  }));

test('top-ups through the admin service move credits from the funding account to ns_available, as one balanced transaction', () =>
  check(async () => {
    const account = await stack.backbone.admin.accounts.createAccount('topup test');
    const ns = await stack.backbone.admin.accounts.createNamespace(account.id, 'main');
    const fundingBefore = (await stack.db.query<{ balance: number }>(`SELECT balance FROM ledger_accounts WHERE kind = 'funding'`)).rows[0]!.balance;

    const b = await stack.backbone.admin.credits.topUp(ns.id, 2.5, 'first');
    assert.deepEqual(b, { namespace_id: ns.id, available_micro: 2_500_000, held_micro: 0 });
    await stack.backbone.admin.credits.topUp(ns.id, 0.000001, 'smallest unit');
    assert.deepEqual(await stack.balance(ns.id), { available: 2_500_001, held: 0 });

    const fundingAfter = (await stack.db.query<{ balance: number }>(`SELECT balance FROM ledger_accounts WHERE kind = 'funding'`)).rows[0]!.balance;
    assert.equal(fundingBefore - fundingAfter, 2_500_001);

    const txns = await stack.db.query<{ id: number; kind: string; job_id: string | null; memo: string }>(
      `SELECT t.id, t.kind, t.job_id, t.memo FROM ledger_transactions t
         JOIN ledger_entries e ON e.txn_id = t.id JOIN ledger_accounts a ON a.id = e.account_id
        WHERE a.kind = 'ns_available' AND a.owner_id = $1 ORDER BY t.id`,
      [ns.id],
    );
    assert.deepEqual(txns.rows.map((t) => [t.kind, t.job_id, t.memo]), [
      ['topup', null, 'first'],
      ['topup', null, 'smallest unit'],
    ]);
    const entries = await stack.db.query<{ kind: string; amount: number }>(
      `SELECT a.kind, e.amount FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id WHERE e.txn_id = $1 ORDER BY e.amount`,
      [txns.rows[0]!.id],
    );
    assert.deepEqual(entries.rows, [
      { kind: 'funding', amount: -2_500_000 },
      { kind: 'ns_available', amount: 2_500_000 },
    ]);

    // Invalid amounts are refused and write nothing.
    for (const bad of [0, -1, Number.NaN, 2e9]) {
      await assert.rejects(stack.backbone.admin.credits.topUp(ns.id, bad), (e: unknown) => e instanceof AppError && e.kind === 'invalid_request');
    }
    await assert.rejects(stack.backbone.admin.credits.topUp(randomUUID(), 1), (e: unknown) => e instanceof AppError && e.kind === 'not_found');
    assert.deepEqual(await stack.balance(ns.id), { available: 2_500_001, held: 0 });
  }));

test('a top-up of less than one micro-credit is refused, not turned into a successful top-up of nothing', () =>
  check(async () => {
    const t = await stack.tenant(1);
    const txnsBefore = await count('ledger_transactions');
    // 0.0000004 credits rounds to 0 micro-credits: nothing would be added and nothing recorded, yet the
    // caller would be told it succeeded.
    await assert.rejects(
      stack.backbone.admin.credits.topUp(t.namespaceId, 0.0000004),
      (e: unknown) => e instanceof AppError && e.kind === 'invalid_request',
      'a top-up of 0.0000004 credits (0 micro-credits) was accepted',
    );
    assert.equal(await count('ledger_transactions'), txnsBefore);
    assert.deepEqual(await stack.balance(t.namespaceId), { available: 1_000_000, held: 0 });
  }));

test('a tampered cached balance is detected (ledgerTotals: mismatched account)', () =>
  check(async () => {
    const client = await stack.db.connect();
    try {
      await client.query('BEGIN');
      await client.query(`UPDATE ledger_accounts SET balance = balance + 1 WHERE kind = 'ns_available' AND owner_id = $1`, [alice.namespaceId]);
      const t = await ledgerTotals(client);
      assert.equal(t.mismatchedAccounts, 1);
      assert.equal(t.balancesTotal, 1);
      assert.equal(t.entriesTotal, 0);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  }));
