// Node operators' money: earnings per node and day add up to the operator's share of every capture;
// withdrawals are ledger holds that can never exceed the earnings, even when requested concurrently, and
// are exported once for settlement.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestStack, TEST_MODEL } from '../helpers/stack.js';

let stack: TestStack;
const check = (fn: () => Promise<void>) => stack.check(fn);

before(async () => {
  stack = await TestStack.start();
  await stack.model();
});

after(async () => {
  await stack.close();
});

function admin(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${stack.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${stack.config.ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

interface Earnings {
  earned: string;
  pending_withdrawal: string;
  by_node_and_day: Array<{ node_id: string; day: string; jobs: number; earned: string }>;
}

test('earnings by node add up to the operator share of the charges; withdrawals never exceed earnings; one export per request', () =>
  check(async () => {
    const a = await stack.node();
    const b = await stack.node();
    const operator = await stack.operator();
    const tenant = await stack.tenant(5);
    for (let i = 0; i < 6; i++) await tenant.client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: 'user', content: `job ${i}` }], max_tokens: 8 });

    const charged = await stack.db.query<{ sum: number }>(`SELECT sum(charged_micro)::bigint AS sum FROM jobs WHERE namespace_id = $1`, [tenant.namespaceId]);
    const res = await admin('GET', `/admin/operators/${operator}/earnings`);
    assert.equal(res.status, 200);
    const e = (await res.json()) as Earnings;
    const perNode = e.by_node_and_day.reduce((s, r) => s + Number(r.earned), 0);
    assert.ok(Math.abs(perNode - Number(e.earned)) < 1e-9);
    // The operator's share is 80% of each capture, rounded down per job.
    assert.ok(Number(e.earned) <= (charged.rows[0]!.sum * 0.8) / 1e6 + 1e-9 && Number(e.earned) > (charged.rows[0]!.sum * 0.8 - 6) / 1e6);
    assert.ok(e.by_node_and_day.every((r) => [a.nodeId as string, b.nodeId as string].includes(r.node_id)));
    assert.equal(e.by_node_and_day.reduce((s, r) => s + r.jobs, 0), 6);

    // Three concurrent requests for 40% of the earnings each: exactly two fit.
    const part = Math.floor((Number(e.earned) * 0.4) * 1e6) / 1e6;
    const tries = await Promise.all([1, 2, 3].map(() => admin('POST', `/admin/operators/${operator}/withdrawals`, { amount: part, destination: '0xabc' })));
    assert.deepEqual(tries.map((r) => r.status).sort(), [201, 201, 402]);
    const after = (await (await admin('GET', `/admin/operators/${operator}/earnings`)).json()) as Earnings;
    assert.equal(Number(after.pending_withdrawal).toFixed(6), (2 * part).toFixed(6));
    assert.equal((Number(after.earned) + Number(after.pending_withdrawal)).toFixed(6), Number(e.earned).toFixed(6));

    const exported = await admin('POST', '/admin/withdrawals/export?format=csv');
    const lines = (await exported.text()).trim().split('\r\n');
    assert.equal(lines[0], 'id,operator_account_id,amount,destination,created_at');
    assert.equal(lines.length, 3);
    const again = (await (await admin('POST', '/admin/withdrawals/export')).json()) as { data: unknown[] };
    assert.deepEqual(again.data, [], 'a request is exported once');
    assert.equal((await admin('POST', `/admin/operators/${operator}/withdrawals`, { amount: 1000, destination: '0xabc' })).status, 402);
  }));
