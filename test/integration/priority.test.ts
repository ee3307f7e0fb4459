// Priority classes and fairness between namespaces (issue 4 part 3) and the per-class surcharge (issue 3
// part 4), on the real engines. One node with one slot serializes the work, so the order in which jobs
// finish is the order in which the scheduler handed out the slot.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';
import { promptTokenUpperBound, withSurcharge } from '../../src/domain/pricing.js';
import { formatCredits } from '../../src/errors.js';
import { findJob } from '../../src/postgres/jobs.repository.js';

let stack: TestStack;
let flood: Tenant;
let quiet: Tenant;
const check = (fn: () => Promise<void>) => stack.check(fn);
const ask = { model: TEST_MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 16 };

before(async () => {
  stack = await TestStack.start();
  await stack.model();
  flood = await stack.tenant(1_000);
  quiet = await stack.tenant(1_000);
});
after(() => stack.close());

async function submit(t: Tenant, headers: Record<string, string> = {}, body: Record<string, unknown> = {}): Promise<string> {
  const res = await fetch(`${stack.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${t.apiKey}`, 'content-type': 'application/json', prefer: 'respond-async', ...headers },
    body: JSON.stringify({ ...ask, ...body }),
  });
  assert.equal(res.status, 202, await res.clone().text());
  return ((await res.json()) as { id: string }).id;
}

/** Job ids in the order they finished (one node, one slot: the order they were dispatched). */
async function finishOrder(ids: string[]): Promise<string[]> {
  await stack.until(`${ids.length} jobs to finish`, async () => {
    const r = await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE id = ANY($1) AND status = 'completed'`, [ids]);
    return r.rows[0]!.n === ids.length ? true : undefined;
  }, 60_000);
  const r = await stack.db.query<{ id: string }>(`SELECT id FROM jobs WHERE id = ANY($1) ORDER BY finished_at, id`, [ids]);
  return r.rows.map((row) => row.id);
}

test("a flooding namespace's backlog does not delay a quiet namespace: the quiet jobs are dispatched ahead of it", () =>
  check(async () => {
    const node = await stack.node({ capacity: 1, latencyMs: 60 });
    try {
      const floodIds = await Promise.all(Array.from({ length: 40 }, () => submit(flood)));
      const quietIds: string[] = [];
      for (let i = 0; i < 3; i++) quietIds.push(await submit(quiet));
      const order = await finishOrder([...floodIds, ...quietIds]);
      const lastQuiet = Math.max(...quietIds.map((id) => order.indexOf(id)));
      const firstQuiet = Math.min(...quietIds.map((id) => order.indexOf(id)));
      const floodBacklogAtQuietArrival = order.slice(firstQuiet).filter((id) => floodIds.includes(id)).length;
      const floodServedMeanwhile = order.slice(firstQuiet, lastQuiet).filter((id) => floodIds.includes(id)).length;
      // Round-robin between the two namespaces: the three quiet jobs alternate with flood jobs. Served
      // first-come first-served they would all wait behind the flood's remaining backlog.
      assert.ok(floodBacklogAtQuietArrival >= 20, `the flood still had a backlog when the quiet jobs arrived (${floodBacklogAtQuietArrival})`);
      assert.ok(floodServedMeanwhile <= 3, `only a few flood jobs went between the quiet ones, not the backlog: ${floodServedMeanwhile}`);
    } finally {
      await node.stop();
    }
  }));

test('urgent work overtakes bulk work without starving it', () =>
  check(async () => {
    const node = await stack.node({ capacity: 1, latencyMs: 60 });
    try {
      const bulk = await Promise.all(Array.from({ length: 30 }, () => submit(flood, { 'x-resultity-priority': 'bulk' })));
      const urgent = await Promise.all(Array.from({ length: 30 }, () => submit(flood, {}, { service_tier: 'priority' })));
      const order = await finishOrder([...bulk, ...urgent]);
      const firstUrgent = Math.min(...urgent.map((id) => order.indexOf(id)));
      const window = order.slice(firstUrgent, firstUrgent + 20);
      const urgentInWindow = window.filter((id) => urgent.includes(id)).length;
      const bulkInWindow = window.filter((id) => bulk.includes(id)).length;
      // Weights 8:2: about 16 urgent and 4 bulk of every 20 while both wait.
      assert.ok(urgentInWindow >= 13, `urgent jobs went first: ${urgentInWindow} of 20`);
      assert.ok(bulkInWindow >= 2, `bulk jobs still got turns: ${bulkInWindow} of 20`);
      const rows = await stack.db.query<{ priority: string; n: number }>(
        `SELECT priority, count(*)::int AS n FROM jobs WHERE id = ANY($1) GROUP BY priority ORDER BY priority`,
        [[...bulk, ...urgent]],
      );
      assert.deepEqual(rows.rows, [{ priority: 'bulk', n: 30 }, { priority: 'urgent', n: 30 }]);
    } finally {
      await node.stop();
    }
  }));

test('the class surcharge is priced into the hold and the charge, returned with the response and kept on the job', () =>
  check(async () => {
    const model = 'test/surcharged';
    await stack.backbone.admin.models.putModel({ name: model, inputPricePerMtok: 10, outputPricePerMtok: 20, prioritySurchargeBps: { urgent: 5_000, bulk: -2_000 } });
    const node = await stack.node({ models: [model], completionTokens: 7 });
    try {
      for (const [tier, priority, bps] of [
        ['priority', 'urgent', 5_000],
        ['flex', 'bulk', -2_000],
        ['default', 'standard', 0],
      ] as const) {
        const before = await stack.balance(quiet.namespaceId);
        const r = await quiet.client.chat.completions.create({ model, messages: ask.messages as never, max_tokens: 16, service_tier: tier });
        const resultity = (r as unknown as { resultity: { job_id: string; priority: string; credits_charged: string } }).resultity;
        const job = (await findJob(stack.db, resultity.job_id))!;
        const base = job.prompt_tokens! * 10 + job.completion_tokens! * 20;
        assert.equal(r.service_tier, tier);
        assert.equal(resultity.priority, priority);
        assert.equal(job.priority, priority);
        assert.equal(job.surcharge_bps, bps);
        assert.equal(job.charged_micro, withSurcharge(base, bps));
        assert.equal(resultity.credits_charged, formatCredits(job.charged_micro));
        assert.equal(job.hold_micro, withSurcharge(promptTokenUpperBound([{ role: 'user', content: 'hi' }]) * 10 + 16 * 20, bps));
        const afterBalance = await stack.balance(quiet.namespaceId);
        assert.equal(before.available - afterBalance.available, job.charged_micro);
      }
      // Repricing the model later does not change what an accepted job was priced with.
      await stack.backbone.admin.models.putModel({ name: model, inputPricePerMtok: 10, outputPricePerMtok: 20, prioritySurchargeBps: {} });
      const r = await quiet.client.chat.completions.create({ model, messages: ask.messages as never, max_tokens: 16, service_tier: 'priority' });
      const job = (await findJob(stack.db, (r as unknown as { resultity: { job_id: string } }).resultity.job_id))!;
      assert.equal(job.surcharge_bps, 0);
    } finally {
      await node.stop();
    }
  }));

test('bad priority requests are refused in OpenAI error shape, before anything is held', () =>
  check(async () => {
    const node = await stack.node();
    try {
      const before = await stack.balance(quiet.namespaceId);
      for (const [headers, body, param] of [
        [{ 'x-resultity-priority': 'asap' }, {}, 'X-Resultity-Priority'],
        [{}, { service_tier: 'scale' }, 'service_tier'],
        [{ 'x-resultity-priority': 'bulk' }, { service_tier: 'priority' }, 'service_tier'],
      ] as const) {
        const res = await fetch(`${stack.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${quiet.apiKey}`, 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ ...ask, ...body }),
        });
        assert.equal(res.status, 400);
        const err = (await res.json()) as { error: { type: string; param: string | null; message: string } };
        assert.equal(err.error.type, 'invalid_request_error');
        assert.equal(err.error.param, param, err.error.message);
      }
      assert.deepEqual(await stack.balance(quiet.namespaceId), before);
      await assert.rejects(
        stack.backbone.admin.models.putModel({ name: TEST_MODEL, inputPricePerMtok: 10, outputPricePerMtok: 20, prioritySurchargeBps: { express: 100 } }),
        /unknown priority class/,
      );
      await assert.rejects(
        stack.backbone.admin.models.putModel({ name: TEST_MODEL, inputPricePerMtok: 10, outputPricePerMtok: 20, prioritySurchargeBps: { bulk: -10_000 } }),
        /basis points/,
      );
    } finally {
      await node.stop();
    }
  }));
