// Fast tier (docs/testing.md): JobLogsService's rules (a consumer never sees a node's identity; each reader
// is scoped to its own jobs or nodes, and another's is not found like none) on in-memory fakes of its
// store, job log and node stats. The same service on the real engines: test/integration/job-logs.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JobLogsService } from '../../src/space/job-logs.service.js';
import type { NodeStatsDoc } from '../../src/domain/node-stats.js';
import { AppError } from '../../src/errors.js';
import { FakeJobLogs, FakeJobLogsStore } from '../fakes/job-logs.store.js';

const NS = '00000000-0000-4000-8000-00000000000a';
const OTHER_NS = '00000000-0000-4000-8000-00000000000b';
const JOB = '00000000-0000-4000-8000-000000000001';
const NODE = '0x' + 'ab'.repeat(20);
const OTHER_NODE = '0x' + 'cd'.repeat(20);
const OPERATOR = 'operator-a';
const OTHER_OPERATOR = 'operator-b';
const AT = new Date('2026-03-30T10:00:00Z');
const RANGE = { since: new Date('2026-03-30T00:00:00Z'), until: new Date('2026-03-31T00:00:00Z'), limit: 10 };

function windowOf(nodeId: string, minute: number, completed: number, tokens: number, busyMs: number): NodeStatsDoc {
  const windowStart = new Date(AT.getTime() + minute * 60_000);
  return {
    nodeId, windowStart, windowEnd: new Date(windowStart.getTime() + 60_000), heartbeats: 4, loadAvg: 0.5, loadMax: 1, capacity: 2, completed,
    failures: { failed: 1, timeout: 0, disconnected: 0, invalid_result: 0, other: 0 },
    models: [{ model: 'm', completed, completionTokens: tokens, busyMs, tokensPerSecond: null }],
  };
}

function setUp() {
  const store = new FakeJobLogsStore();
  const logs = new FakeJobLogs();
  store.jobs.set(JOB, NS);
  store.operatorNodes.add(`${OPERATOR}/${NODE}`);
  store.operatorNodes.add(`${OTHER_OPERATOR}/${OTHER_NODE}`);
  const base = { jobId: JOB, namespaceId: NS, expireAt: new Date(AT.getTime() + 86_400_000) };
  logs.entries.push(
    { ...base, _id: 'e1', kind: 'accepted', at: AT, stageMs: { queue: 1.5 } },
    { ...base, _id: 'e2', kind: 'attempt_failed', at: new Date(AT.getTime() + 1000), attempt: 1, nodeId: NODE, outcome: 'failed', reason: `node ${NODE} ran out of memory`, stageMs: { queue: 2.25, run: 10 } },
    { ...base, _id: 'e3', kind: 'completed', at: new Date(AT.getTime() + 2000), attempt: 2, nodeId: OTHER_NODE, model: 'm', usage: { prompt_tokens: 3, completion_tokens: 5 } },
  );
  logs.windows.push(windowOf(NODE, 0, 2, 100, 1000), windowOf(NODE, 1, 3, 200, 1000), windowOf(OTHER_NODE, 0, 7, 70, 700));
  return { store, logs, service: new JobLogsService({ store, jobLogs: logs, nodeStats: logs }) };
}

const code = (c: string) => (e: unknown) => e instanceof AppError && e.code === c;

test("consumer events: no node id anywhere, and a node's address in a reason is scrubbed", async () => {
  const { service } = setUp();
  const list = await service.consumerEvents(JOB, NS);
  assert.deepEqual(list.data.map((e) => e.id), ['e1', 'e2', 'e3']);
  assert.ok(list.data.every((e) => !('node_id' in e)));
  assert.equal(list.data[1]?.reason, 'node [node] ran out of memory');
  const text = JSON.stringify(list);
  assert.ok(!text.includes(NODE.slice(2)) && !text.includes(OTHER_NODE.slice(2)), 'no node identity in the whole answer');
  assert.deepEqual([list.first_id, list.last_id, list.stage_ms], ['e1', 'e3', { queue: 3.75, run: 10 }]);
});

test("admin events: each attempt's node and the reason as written", async () => {
  const { service } = setUp();
  const list = await service.adminEvents(JOB);
  assert.deepEqual(list.data.map((e) => e.node_id), [undefined, NODE, OTHER_NODE]);
  assert.equal(list.data[1]?.reason, `node ${NODE} ran out of memory`);
});

test("consumer events: another namespace's job is not found exactly like none; a malformed id costs no query", async () => {
  const { store, service } = setUp();
  const missing = '00000000-0000-4000-8000-0000000000ff';
  const errs: unknown[] = [];
  for (const [job, ns] of [[JOB, OTHER_NS], [missing, NS]] as const) await service.consumerEvents(job, ns).catch((e: unknown) => errs.push(e));
  assert.ok(errs.every(code('job_not_found')) && errs.length === 2);
  const [a, b] = errs as AppError[];
  assert.equal(a?.message.replace(JOB, 'ID'), b?.message.replace(missing, 'ID'), 'the same answer');
  const before = store.calls.length;
  await assert.rejects(service.consumerEvents('not-a-uuid', NS), code('job_not_found'));
  await assert.rejects(service.adminEvents('not-a-uuid'), code('job_not_found'));
  assert.equal(store.calls.length, before);
  await assert.rejects(service.adminEvents(missing), code('job_not_found'));
});

test("operator stats: its own node's windows and totals (any case of address); another operator's node is not found", async () => {
  const { store, service } = setUp();
  const list = await service.operatorNodeStats(OPERATOR, NODE.toUpperCase().replace('0X', '0x'), RANGE);
  assert.equal(list.node_id, NODE);
  assert.equal(list.data.length, 2);
  assert.ok(list.data.every((w) => !('node_id' in w)), 'one node: its windows need not name it');
  assert.deepEqual(list.summary, { completed: 5, failures: { failed: 2, timeout: 0, disconnected: 0, invalid_result: 0, other: 0 }, models: [{ model: 'm', completed: 5, completion_tokens: 300, tokens_per_second: 150 }] });
  await assert.rejects(service.operatorNodeStats(OPERATOR, OTHER_NODE, RANGE), code('not_found'));
  const before = store.calls.length;
  await assert.rejects(service.operatorNodeStats(OPERATOR, 'node-1', RANGE), code('not_found'));
  assert.equal(store.calls.length, before, 'a malformed address costs no query');
});

test("admin stats: any node's, or every node's with each window naming its node; the limit is reported", async () => {
  const { service } = setUp();
  assert.equal((await service.adminNodeStats(OTHER_NODE, RANGE)).summary.completed, 7);
  const all = await service.adminNodeStats(null, RANGE);
  assert.deepEqual(all.data.map((w) => w.node_id), [NODE, NODE, OTHER_NODE]);
  assert.equal((await service.adminNodeStats(null, { ...RANGE, limit: 2 })).has_more, true);
  await assert.rejects(service.adminNodeStats('nope', RANGE), code('not_found'));
});
