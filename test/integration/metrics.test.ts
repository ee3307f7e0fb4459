// GET /metrics: the engine counters move when a job runs, every series the issue lists (issue 13, part 2)
// is exported with the values the fleet has, and no label carries an id.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';
import { parseExposition, sumSamples, type Sample } from '../../src/metrics/exposition.js';
import { PRIORITY_CLASSES } from '../../src/domain/priority.js';

let stack: TestStack;
let alice: Tenant;

before(async () => {
  stack = await TestStack.start();
  await stack.model();
  await stack.node();
  alice = await stack.tenant(10);
});

after(async () => {
  await stack.close();
});

async function scrape(): Promise<Sample[]> {
  const res = await fetch(`${stack.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  return parseExposition(await res.text());
}

const ENGINE_COUNTERS = [
  'resultity_pg_statements_total',
  'resultity_pg_transactions_total',
  'resultity_redis_commands_total',
  'resultity_mongo_commands_total',
  'resultity_rabbitmq_publishes_total',
  'resultity_rabbitmq_deliveries_total',
] as const;

test('a completed job moves every engine counter', () =>
  stack.check(async () => {
    const a = await scrape();
    const r = await alice.client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: 'user', content: 'count me' }], max_tokens: 8 });
    assert.match(r.choices[0]?.message.content ?? '', /^simulated answer/);
    // The settlement and the last writes may land just after the answer: wait until the delivery is settled.
    const b = await stack.until('the delivery to be acked', async () => {
      const s = await scrape();
      return sumSamples(s, 'resultity_rabbitmq_deliveries_total', { outcome: 'ack' }) > sumSamples(a, 'resultity_rabbitmq_deliveries_total', { outcome: 'ack' }) ? s : undefined;
    });
    const delta = (name: string, where: Record<string, string> = {}) => sumSamples(b, name, where) - sumSamples(a, name, where);
    for (const name of ENGINE_COUNTERS) assert.ok(delta(name) > 0, `${name} did not move`);
    // The job's accept and settlement each commit; inserts go to the job row, and the publish was confirmed.
    assert.ok(delta('resultity_pg_transactions_total', { kind: 'explicit' }) + delta('resultity_pg_transactions_total', { kind: 'implicit' }) >= 2);
    // The accept and the settlement are one statement each (SELECT of accept_jobs and settle_jobs).
    assert.ok(delta('resultity_pg_statements_total', { kind: 'select' }) >= 2);
    assert.ok(delta('resultity_rabbitmq_publishes_total', { confirm: 'true', outcome: 'ok' }) >= 1);
    assert.ok(delta('resultity_mongo_commands_total', { command: 'insert' }) + delta('resultity_mongo_commands_total', { command: 'update' }) >= 1);
    assert.ok(delta('resultity_http_responses_total', { route: '/v1/chat/completions', method: 'POST', status: '2xx' }) >= 1);
  }));

test('labels are bounded: no id, key, address or URL in any label value', () =>
  stack.check(async () => {
    await alice.client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: 'user', content: 'again' }], max_tokens: 8 });
    const res = await fetch(`${stack.url}/v1/jobs/00000000-0000-4000-8000-000000000000`, { headers: { authorization: `Bearer ${alice.apiKey}` } });
    await res.text();
    const samples = (await scrape()).filter((s) => s.name.startsWith('resultity_') && !s.name.startsWith('resultity_process_'));
    assert.ok(samples.length > 0);
    const ids = [alice.namespaceId, alice.keyId, alice.apiKey, stack.id, stack.nodes[0]!.nodeId.toLowerCase()];
    for (const s of samples) {
      for (const [k, v] of Object.entries(s.labels)) {
        assert.ok(v.length <= 64, `${s.name}{${k}} is long: ${v}`);
        assert.doesNotMatch(v, /[0-9a-f]{8}-[0-9a-f]{4}-|0x[0-9a-f]{40}|rk_/i, `${s.name}{${k}="${v}"} looks like an id`);
        for (const id of ids) assert.ok(!v.toLowerCase().includes(id.toLowerCase()), `${s.name}{${k}} carries ${id}`);
      }
    }
    // The job lookup is counted by its route pattern, not its URL.
    assert.ok(samples.some((s) => s.name === 'resultity_http_responses_total' && s.labels.route === '/v1/jobs/:id'));
    const labelSets = new Set(samples.map((s) => `${s.name}|${Object.keys(s.labels).sort().join(',')}`));
    assert.ok(labelSets.size < 100, `too many distinct label sets: ${labelSets.size}`);
  }));

test('every series an operator watches: requests and latency by route, job stages, ledger batches, queue depths, nodes and free slots by model, engine errors, event-loop lag', () =>
  stack.check(async () => {
    const a = await scrape();
    const r = await alice.client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: 'user', content: 'stages' }], max_tokens: 8 });
    assert.match(r.choices[0]?.message.content ?? '', /^simulated answer/);
    // A statement PostgreSQL refuses: an engine error of kind 'operation'.
    await assert.rejects(stack.db.query('SELECT 1 / 0'));
    const b = await stack.until('the job settled and the fleet idle again', async () => {
      const s = await scrape();
      const settled = sumSamples(s, 'resultity_ledger_batch_items_count', { operation: 'settle' }) > sumSamples(a, 'resultity_ledger_batch_items_count', { operation: 'settle' });
      return settled && sumSamples(s, 'resultity_free_slots', { model: TEST_MODEL }) === 4 ? s : undefined;
    });
    const delta = (name: string, where: Record<string, string> = {}) => sumSamples(b, name, where) - sumSamples(a, name, where);

    // Requests by route and status class, and their latency histogram by route.
    assert.ok(delta('resultity_http_request_seconds_count', { route: '/v1/chat/completions', method: 'POST' }) >= 1);
    assert.ok(b.some((x) => x.name === 'resultity_http_request_seconds_bucket' && x.labels.route === '/v1/chat/completions' && x.labels.le === '+Inf'));
    // Every stage of a synchronous job, each observed by the process that runs it (here one process runs them all).
    for (const stage of ['accept_checks', 'accept_commit', 'publish', 'queued', 'place', 'dispatch', 'node', 'verify', 'store_result', 'settle', 'complete']) {
      assert.ok(delta('resultity_job_stage_seconds_count', { stage }) >= 1, `stage ${stage} not observed`);
    }
    // Ledger batch sizes: the hold at accept and the settlement, each in a grouped statement.
    assert.ok(delta('resultity_ledger_batch_items_count', { operation: 'hold' }) >= 1);
    assert.ok(delta('resultity_ledger_batch_items_sum', { operation: 'settle' }) >= 1);
    // Queue depths per model and priority class: every class of the model, none left waiting.
    const depths = b.filter((x) => x.name === 'resultity_queue_depth' && x.labels.model === TEST_MODEL);
    assert.deepEqual(depths.map((x) => x.labels.priority).sort(), [...PRIORITY_CLASSES].sort());
    assert.ok(depths.every((x) => x.value === 0));
    // The one node online, its four slots free again.
    assert.equal(sumSamples(b, 'resultity_nodes_online', { model: TEST_MODEL }), 1);
    assert.equal(sumSamples(b, 'resultity_free_slots', { model: TEST_MODEL }), 4);
    // Engine errors: every engine's series exists from the start, and the refused statement was counted.
    for (const engine of ['postgres', 'redis', 'mongodb', 'rabbitmq']) {
      for (const kind of ['connection', 'operation']) assert.ok(b.some((x) => x.name === 'resultity_engine_errors_total' && x.labels.engine === engine && x.labels.kind === kind), `${engine}/${kind}`);
    }
    assert.ok(delta('resultity_engine_errors_total', { engine: 'postgres', kind: 'operation' }) >= 1);
    // Event-loop lag (Node's default metrics, under the process prefix).
    assert.ok(b.some((x) => x.name === 'resultity_process_nodejs_eventloop_lag_p99_seconds'));
  }));
