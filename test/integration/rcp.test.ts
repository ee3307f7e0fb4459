// Contribution points: an append-only record per completed job, and per node and closed epoch its
// uptime from heartbeats; the epoch length is configured (3 s here).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestStack, TEST_MODEL } from '../helpers/stack.js';

let stack: TestStack;
const check = (fn: () => Promise<void>) => stack.check(fn);

before(async () => {
  stack = await TestStack.start({ config: { RCP_EPOCH_SECONDS: 3, RCP_UPTIME_SLOT_SECONDS: 1, HEARTBEAT_TTL_MS: 3000 } });
  await stack.model();
});

after(async () => {
  await stack.close();
});

test('completed jobs and uptime become append-only contribution records per node and epoch', () =>
  check(async () => {
    const node = await stack.node();
    const tenant = await stack.tenant(5);
    for (let i = 0; i < 3; i++) await tenant.client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: 'user', content: `p${i}` }], max_tokens: 4 });

    type Row = { epoch: number; job_points: number; uptime_points: number };
    const rcp = async () =>
      ((await (await fetch(`${stack.url}/admin/nodes/${node.nodeId}/rcp`, { headers: { authorization: `Bearer ${stack.config.ADMIN_TOKEN}` } })).json()) as { data: Row[] }).data;
    // Wait for an epoch in which the node was up to close (at most 3 s plus a sweep).
    const rows = await stack.until('uptime points for a closed epoch', async () => {
      const r = await rcp();
      return r.some((x) => Number(x.uptime_points) > 0) ? r : undefined;
    }, 10_000);
    assert.equal(rows.reduce((s, r) => s + Number(r.job_points), 0), 3, 'one point per completed job');
    for (const r of rows) assert.ok(Number(r.uptime_points) <= 3, 'never more uptime than the epoch is long');

    const jobRows = await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM rcp_records WHERE node_id = $1 AND kind = 'job'`, [node.nodeId]);
    assert.equal(jobRows.rows[0]?.n, 3);
    await assert.rejects(stack.db.query(`UPDATE rcp_records SET points = points + 1 WHERE node_id = $1`, [node.nodeId]), /append-only/);
    await assert.rejects(stack.db.query(`DELETE FROM rcp_records WHERE node_id = $1`, [node.nodeId]), /append-only/);
  }));
