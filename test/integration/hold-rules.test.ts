// accept_jobs (PostgreSQL, the hot path's hold statement) decides exactly as domain/holds.ts decideHolds
// states the rule: random batches, seeded, over a few namespaces with little credit, capped and uncapped
// keys, repeated idempotency keys and deadlines already past, run through the real statement; before each,
// the book (balances, monthly spend, idempotency keys in use) is read from the database and every outcome
// and refusal amount is compared with decideHolds's. The ledger balances at the end.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { newJobId, jobIdTime } from '../../src/domain/job-ids.js';
import { decideHolds, spendKey, spendMonthOf, type HoldCandidate, type HoldDecision } from '../../src/domain/holds.js';
import type { ItemOutcome } from '../../src/common/group-commit.js';
import { AppError, errors } from '../../src/errors.js';
import { holdBatch, type HoldRequest } from '../../src/postgres/settlement-batch.repository.js';
import { balanceOf, ledgerTotals } from '../../src/postgres/ledger.repository.js';
import { monthlySpend } from '../../src/postgres/key-spend.repository.js';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';

const ROUNDS = 40;
let stack: TestStack;
let tenants: Tenant[];

before(async () => {
  stack = await TestStack.start({ roles: ['gate'] });
  await stack.model();
  // 0.002 credits = 2,000 micro-credits each: a few holds of up to 900 drain them within a round or two.
  tenants = await Promise.all([stack.tenant(0.002), stack.tenant(0.002), stack.tenant(0.002)]);
});

after(() => stack.close());

/** A small deterministic generator (mulberry32), so that a failing seed can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An outcome of holdBatch as the decision it stands for (a refusal's amount is in its message). */
function outcomeOf(o: ItemOutcome<void>): string {
  if (o.ok) return 'accepted';
  const e = o.error;
  if (e instanceof AppError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? e.name : String(e);
}

/** decideHolds's decision in the same words: the API's own error message for a refusal with an amount. */
function expectedOf(d: HoldDecision, c: HoldCandidate): string {
  switch (d.outcome) {
    case 'accepted':
      return 'accepted';
    case 'past_deadline':
      return 'JobPastDeadlineError';
    case 'idempotency_key_in_use':
      return 'IdempotencyKeyInUse';
    case 'insufficient_credits':
      return `insufficient_credits: ${errors.insufficientCredits(c.holdMicro, d.availableMicro).message}`;
    case 'monthly_cap_reached':
      return `monthly_cap_reached: ${errors.monthlyCapReached(c.holdMicro, d.capLeftMicro).message}`;
  }
}

test('accept_jobs decides every hold of random batches as decideHolds does', { timeout: 120_000 }, () =>
  stack.check(async () => {
    const next = random(0x5eed);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]!;
    let accepted = 0;
    const refused = new Map<string, number>();
    for (let round = 0; round < ROUNDS; round++) {
      const candidates: Array<HoldCandidate & { request: HoldRequest }> = [];
      for (let i = 0, n = 1 + Math.floor(next() * 10); i < n; i++) {
        const t = pick(tenants);
        const id = newJobId();
        // Multiples of 50, so that holds that fit exactly (balance = hold, spend + hold = cap) happen too.
        const holdMicro = 50 * Math.floor(next() * 18);
        const cap = next() < 0.4 ? 50 * Math.floor(next() * 60) : null;
        const deadlineAt = new Date(Date.now() + (next() < 0.1 ? -3_600_000 : 3_600_000));
        const idempotencyKey = next() < 0.3 ? `idem-${Math.floor(next() * 6)}` : null;
        const request: HoldRequest = {
          job: { id, namespaceId: t.namespaceId, apiKeyId: t.keyId, model: TEST_MODEL, maxAttempts: 1, maxTokens: 16, promptTokensBound: 10, holdMicro, inputPriceMicro: 1, outputPriceMicro: 1, minChargeMicro: 0, deadlineAt },
          keyMonthlyCapMicro: cap,
          ...(idempotencyKey ? { idempotency: { key: idempotencyKey, requestHash: createHash('sha256').update(id).digest(), windowHours: 24 } } : {}),
        };
        candidates.push({ namespaceId: t.namespaceId, apiKeyId: t.keyId, holdMicro, monthlyCapMicro: cap, createdAt: jobIdTime(id), deadlineAt, idempotencyKey, request });
      }
      // The book, as the database has it now.
      const month = spendMonthOf(new Date());
      const inUse = await stack.db.query<{ k: string }>(
        `SELECT namespace_id::text || ' ' || key AS k FROM idempotency_keys WHERE namespace_id = ANY($1::uuid[]) AND created_at > now() - interval '24 hours'`,
        [tenants.map((t) => t.namespaceId)],
      );
      const book = {
        available: new Map(await Promise.all(tenants.map(async (t) => [t.namespaceId, await balanceOf(stack.db, 'ns_available', t.namespaceId)] as const))),
        monthlySpent: new Map(await Promise.all(tenants.map(async (t) => [spendKey(t.keyId, month), await monthlySpend(stack.db, t.keyId, new Date())] as const))),
        idempotencyKeysInUse: new Set(inUse.rows.map((r) => r.k)),
      };
      const decisions = decideHolds(book, candidates, new Date()).decisions;
      const expected = decisions.map((d, i) => expectedOf(d, candidates[i]!));
      const got = (await holdBatch(stack.db, candidates.map((c) => c.request))).map(outcomeOf);
      assert.deepEqual(got, expected, `round ${round}: ${JSON.stringify(candidates.map((c) => ({ ns: tenants.findIndex((t) => t.namespaceId === c.namespaceId), hold: c.holdMicro, cap: c.monthlyCapMicro, idem: c.idempotencyKey, past: c.deadlineAt.getTime() < Date.now() })))}`);
      for (const d of decisions) {
        if (d.outcome === 'accepted') accepted++;
        else refused.set(d.outcome, (refused.get(d.outcome) ?? 0) + 1);
      }
    }
    // The run exercised every rule, not only the happy path.
    assert.ok(accepted > 0);
    assert.deepEqual([...refused.keys()].sort(), ['idempotency_key_in_use', 'insufficient_credits', 'monthly_cap_reached', 'past_deadline']);
    const totals = await ledgerTotals(stack.db);
    assert.equal(totals.entriesTotal, 0);
    assert.equal(totals.balancesTotal, 0);
  }));
