// Usage reports by day, model and key: what a namespace was charged adds up to its ledger, in JSON and
// CSV, through the public API (own namespace only), the admin API and the CLI.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TestStack, TEST_MODEL } from '../helpers/stack.js';
import { withTransaction } from '../../src/postgres/db.js';

let stack: TestStack;
const check = (fn: () => Promise<void>) => stack.check(fn);

before(async () => {
  stack = await TestStack.start();
  await stack.model();
  await stack.model('test/other', 5, 5);
  await stack.node({ models: [TEST_MODEL, 'test/other'] });
});

after(async () => {
  await stack.close();
});

interface Row {
  day: string;
  model: string;
  api_key_id: string;
  requests: number;
  completed: number;
  prompt_tokens: number;
  completion_tokens: number;
  credits_charged: string;
}

test('usage by day, model and key adds up to the credits the namespace spent; CSV says the same; no one else sees it', () =>
  check(async () => {
    const alice = await stack.tenant(5);
    const second = await stack.backbone.admin.apiKeys.issueApiKey(alice.namespaceId, { name: 'second', rateLimitRps: 100, rateLimitBurst: 100 });
    const ask = (model: string) => ({ model, messages: [{ role: 'user' as const, content: 'count me' }], max_tokens: 8 });
    await alice.client.chat.completions.create(ask(TEST_MODEL));
    await alice.client.chat.completions.create(ask(TEST_MODEL));
    await alice.client.chat.completions.create(ask('test/other'));
    const r = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${second.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify(ask(TEST_MODEL)),
    });
    assert.equal(r.status, 200);

    const res = await fetch(`${stack.url}/v1/usage`, { headers: { authorization: `Bearer ${alice.apiKey}` } });
    assert.equal(res.status, 200);
    const report = (await res.json()) as { from: string; to: string; data: Row[] };
    const today = new Date().toISOString().slice(0, 10);
    assert.equal(report.to, today);
    const byKeyModel = new Map(report.data.map((x) => [`${x.api_key_id}/${x.model}`, x]));
    assert.equal(byKeyModel.get(`${alice.keyId}/${TEST_MODEL}`)?.completed, 2);
    assert.equal(byKeyModel.get(`${alice.keyId}/test/other`)?.completed, 1);
    assert.equal(byKeyModel.get(`${second.key.id}/${TEST_MODEL}`)?.requests, 1);
    assert.ok(report.data.every((x) => x.day === today));
    const spent = 5 - (await stack.balance(alice.namespaceId)).available / 1e6;
    const reported = report.data.reduce((s, x) => s + Number(x.credits_charged), 0);
    assert.ok(Math.abs(spent - reported) < 1e-9, `reported ${reported}, spent ${spent}`);

    const csv = await fetch(`${stack.url}/v1/usage?format=csv&from=${today}&to=${today}`, { headers: { authorization: `Bearer ${alice.apiKey}` } });
    assert.match(csv.headers.get('content-type') ?? '', /^text\/csv/);
    const lines = (await csv.text()).trim().split('\r\n');
    assert.equal(lines[0], 'day,model,api_key_id,key_prefix,requests,completed,failed,expired,prompt_tokens,completion_tokens,credits_charged');
    assert.equal(lines.length, 1 + report.data.length);

    // Another namespace's report is its own (empty), and bad ranges are 400s.
    const bob = await stack.tenant(1);
    const bobs = (await (await fetch(`${stack.url}/v1/usage`, { headers: { authorization: `Bearer ${bob.apiKey}` } })).json()) as { data: Row[] };
    assert.deepEqual(bobs.data, []);
    for (const q of ['from=2026-13-01', 'from=2026-02-01&to=2026-01-01', 'from=2020-01-01&to=2026-01-01', 'format=xml']) {
      assert.equal((await fetch(`${stack.url}/v1/usage?${q}`, { headers: { authorization: `Bearer ${bob.apiKey}` } })).status, 400, q);
    }

    // The admin API and the CLI give the platform the same report for any namespace.
    const viaAdmin = await fetch(`${stack.url}/admin/namespaces/${alice.namespaceId}/usage`, { headers: { authorization: `Bearer ${stack.config.ADMIN_TOKEN}` } });
    assert.deepEqual(((await viaAdmin.json()) as { data: Row[] }).data, report.data);
    const { stdout } = await promisify(execFile)(process.execPath, ['dist/src/cli/main.js', 'admin', 'usage', alice.namespaceId, '--csv'], {
      env: stack.cliEnv(),
    });
    assert.deepEqual(stdout.trim().split('\r\n'), lines);
  }));

test('a snapshot transaction (reports, rollups) really runs at REPEATABLE READ, read-only when asked', async () => {
  const modes = await withTransaction(
    stack.db,
    async (tx) => (await tx.query<{ iso: string; ro: string }>(`SELECT current_setting('transaction_isolation') AS iso, current_setting('transaction_read_only') AS ro`)).rows[0],
    { isolation: 'snapshot', readOnly: true },
  );
  assert.deepEqual(modes, { iso: 'repeatable read', ro: 'on' });
  const plain = await withTransaction(stack.db, async (tx) => (await tx.query<{ iso: string }>(`SELECT current_setting('transaction_isolation') AS iso`)).rows[0]);
  assert.deepEqual(plain, { iso: 'read committed' });
});
