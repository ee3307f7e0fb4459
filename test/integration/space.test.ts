// Space's retention plans on the real engines (issue 10, part 1): the owner and the admin set a plan;
// `zero` leaves no payload bytes in MongoDB; `extended` files payloads under its own class, is metered
// once a day from what MongoDB holds and charged through the ledger (which still sums to zero); a
// namespace that cannot pay falls back to `standard` with an event its owner sees, and its payloads stay.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';
import { requestJson } from '../helpers/http.js';
import { INPUT_HOLD_MS, PayloadsRepository } from '../../src/mongo/payloads.repository.js';
import { jobBucket, parseBucketName } from '../../src/mongo/payload-buckets.js';
import { ledgerTotals } from '../../src/postgres/ledger.repository.js';
import { newJobId } from '../../src/domain/job-ids.js';

// A GiB-day costs 1,000 credits here, so that a few kilobytes stored cost a few micro-credits.
const PRICE = 1_000_000_000;

let stack: TestStack;

before(async () => {
  stack = await TestStack.start({ config: { SPACE_PRICE_MICRO_PER_GIB_DAY: PRICE, SPACE_MAX_RETENTION_DAYS: 90 } });
  await stack.model();
  await stack.node();
});

after(async () => {
  await stack.close();
});

const check = (fn: () => Promise<void>) => stack.check(fn);
const admin = (method: string, path: string, body?: unknown) => requestJson(stack.url, method, path, body, stack.config.ADMIN_TOKEN);

async function chat(t: Tenant, content: string): Promise<string> {
  const r = await t.client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: 'user', content }], max_tokens: 8 });
  assert.match(r.choices[0]?.message.content ?? '', /^simulated answer/);
  return r.id;
}

/** Documents of a namespace in every payload bucket, by bucket. */
async function storedFor(namespaceId: string): Promise<Record<string, number>> {
  const db = stack.backbone.mongo.db;
  const out: Record<string, number> = {};
  for (const c of await db.listCollections({}, { nameOnly: true }).toArray()) {
    if (!parseBucketName(c.name)) continue;
    const n = await db.collection(c.name).countDocuments({ namespaceId });
    if (n > 0) out[c.name] = n;
  }
  return out;
}

test('plans: the owner (session) and the admin set a plan; a bad plan or days past the maximum are refused; a stranger is not found', () =>
  check(async () => {
    const email = `space-${randomBytes(4).toString('hex')}@example.com`;
    const up = await requestJson(stack.url, 'POST', '/account/signup', { email, password: 'a long enough password' });
    assert.equal(up.status, 201, up.text);
    const token = up.body.token as string;
    const ns = await requestJson(stack.url, 'POST', '/account/namespaces', { name: 'kept' }, token);
    const id = ns.body.id as string;

    const fresh = await requestJson(stack.url, 'GET', `/account/namespaces/${id}/retention`, undefined, token);
    assert.equal(fresh.status, 200, fresh.text);
    assert.equal(fresh.body.retention_plan, 'standard');
    assert.equal(fresh.body.retention_hours, stack.config.PAYLOAD_RETENTION_HOURS);

    const ext = await requestJson(stack.url, 'PUT', `/account/namespaces/${id}/retention`, { plan: 'extended', days: 30 }, token);
    assert.equal(ext.status, 200, ext.text);
    assert.equal(ext.body.retention_plan, 'extended');
    assert.equal(ext.body.retention_hours, 720);
    assert.equal((ext.body.events as Array<{ kind: string }>)[0]?.kind, 'plan_changed');

    const tooLong = await requestJson(stack.url, 'PUT', `/account/namespaces/${id}/retention`, { plan: 'extended', days: 91 }, token);
    assert.equal(tooLong.status, 400, tooLong.text);
    assert.equal((tooLong.body.error as { type: string }).type, 'invalid_request_error');
    const noDays = await requestJson(stack.url, 'PUT', `/account/namespaces/${id}/retention`, { plan: 'standard', days: 3 }, token);
    assert.equal(noDays.status, 400, noDays.text);
    const unknown = await requestJson(stack.url, 'PUT', `/account/namespaces/${id}/retention`, { plan: 'forever' }, token);
    assert.equal(unknown.status, 400, unknown.text);

    // Another account's session sees no such namespace.
    const other = await requestJson(stack.url, 'POST', '/account/signup', { email: `x-${email}`, password: 'a long enough password' });
    const stranger = await requestJson(stack.url, 'GET', `/account/namespaces/${id}/retention`, undefined, other.body.token as string);
    assert.equal(stranger.status, 404, stranger.text);
    // Nor does a bad admin token get anywhere.
    const forged = await requestJson(stack.url, 'GET', `/admin/namespaces/${id}/retention`, undefined, 'not-the-token');
    assert.equal(forged.status, 401);

    const byAdmin = await admin('PUT', `/admin/namespaces/${id}/retention`, { plan: 'zero' });
    assert.equal(byAdmin.status, 200, byAdmin.text);
    assert.equal(byAdmin.body.retention_plan, 'zero');
    assert.equal(byAdmin.body.retention_hours, 0);
  }));

test('zero: the job is answered and charged, and no prompt or output is written to MongoDB', () =>
  check(async () => {
    const t = await stack.tenant(10);
    assert.equal((await admin('PUT', `/admin/namespaces/${t.namespaceId}/retention`, { plan: 'zero' })).status, 200);
    await chat(t, 'forget me');
    await chat(t, 'forget me too');
    // Past the input's hold, when a held-back input would have been written.
    await new Promise((resolve) => setTimeout(resolve, INPUT_HOLD_MS + 500));
    const charged = await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE namespace_id = $1 AND status = 'completed' AND charged_micro > 0`, [t.namespaceId]);
    assert.equal(charged.rows[0]!.n, 2, 'metadata, usage and charges are still kept');
    assert.deepEqual(await storedFor(t.namespaceId), {}, 'no payload bytes in MongoDB');
  }));

test('extended: payloads filed under its class, kept past the standard retention, metered once a day through a balanced ledger', () =>
  check(async () => {
    const t = await stack.tenant(10);
    assert.equal((await admin('PUT', `/admin/namespaces/${t.namespaceId}/retention`, { plan: 'extended', days: 10 })).status, 200);
    const id = await chat(t, 'keep me for ten days');
    const jobId = id.replace(/^chatcmpl-/, '');
    const results = jobBucket('job_results', jobId, 240);
    await stack.until('the result to be stored under the ten-day class', async () => ((await storedFor(t.namespaceId))[results] ? true : undefined));

    // Read back four days on (past the standard 72 hours), not at eleven.
    const reader = new PayloadsRepository(stack.backbone.mongo.db, stack.backbone.payloadKeys);
    const inFourDays = new Date(Date.now() + 4 * 86_400_000);
    assert.ok(await reader.find(jobId, t.namespaceId, inFourDays), 'kept past the standard retention');
    assert.equal(await reader.find(jobId, t.namespaceId, new Date(Date.now() + 11 * 86_400_000)), null);

    const before = await stack.balance(t.namespaceId);
    const day = '2000-01-01';
    const metered = (await stack.backbone.retention.meterDay(day)).find((m) => m.namespaceId === t.namespaceId);
    assert.ok(metered && metered.storedBytes > 0 && metered.chargedMicro > 0 && !metered.fellBack, JSON.stringify(metered));
    const after = await stack.balance(t.namespaceId);
    assert.equal(before.available - after.available, metered.chargedMicro, 'charged what was metered');
    const again = (await stack.backbone.retention.meterDay(day)).find((m) => m.namespaceId === t.namespaceId);
    assert.equal(again, undefined, 'a day is metered once');
    assert.equal((await stack.balance(t.namespaceId)).available, after.available);
    const txn = await stack.db.query<{ kind: string }>(
      `SELECT t.kind FROM space_meterings m JOIN ledger_transactions t ON t.id = m.ledger_txn_id WHERE m.namespace_id = $1 AND m.day = $2`,
      [t.namespaceId, day],
    );
    assert.equal(txn.rows[0]?.kind, 'storage');
    const totals = await ledgerTotals(stack.db);
    assert.equal(totals.entriesTotal, 0);
    assert.equal(totals.balancesTotal, 0);
    const view = await admin('GET', `/admin/namespaces/${t.namespaceId}/retention`);
    assert.equal((view.body.meterings as Array<{ day: string; charged_micro: number }>)[0]?.charged_micro, metered.chargedMicro);
  }));

test('extended, unpaid: the namespace falls back to standard with an event, is charged nothing, and its payloads stay for the days they were written under', () =>
  check(async () => {
    const t = await stack.tenant(0);
    assert.equal((await admin('PUT', `/admin/namespaces/${t.namespaceId}/retention`, { plan: 'extended', days: 30 })).status, 200);
    const payloads = new PayloadsRepository(stack.backbone.mongo.db, stack.backbone.payloadKeys);
    const jobId = newJobId();
    await payloads.saveResult({
      jobId,
      namespaceId: t.namespaceId,
      model: TEST_MODEL,
      attempt: 1,
      output: { content: 'x'.repeat(50_000), finish_reason: 'stop' },
      usage: { prompt_tokens: 1, completion_tokens: 1 },
      nodeId: '0x0000000000000000000000000000000000000000',
      retentionHours: 720,
    });
    const metered = (await stack.backbone.retention.meterDay('2000-01-02')).find((m) => m.namespaceId === t.namespaceId);
    assert.ok(metered?.fellBack, JSON.stringify(metered));
    assert.equal(metered.chargedMicro, 0);
    assert.deepEqual(await stack.balance(t.namespaceId), { available: 0, held: 0 });
    const view = await admin('GET', `/admin/namespaces/${t.namespaceId}/retention`);
    assert.equal(view.body.retention_plan, 'standard');
    assert.equal((view.body.events as Array<{ kind: string }>)[0]?.kind, 'fell_back', view.text);
    // Written under thirty days: still there twenty days on, whatever the plan is now.
    assert.ok(await payloads.find(jobId, t.namespaceId, new Date(Date.now() + 20 * 86_400_000)));
    const totals = await ledgerTotals(stack.db);
    assert.equal(totals.entriesTotal, 0);
  }));

test("search: GET /v1/jobs pages through the namespace's jobs newest first with a cursor, filters on status, model, key and time, and never shows another namespace", () =>
  check(async () => {
    const t = await stack.tenant(10);
    const other = await stack.tenant(10);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await chat(t, `search ${i}`)).replace(/^chatcmpl-/, ''));
    await chat(other, 'not yours');
    const get = (query: string, key = t.apiKey) => requestJson(stack.url, 'GET', `/v1/jobs${query}`, undefined, key);

    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const page = await get(`?limit=2${after ? `&after=${after}` : ''}`);
      assert.equal(page.status, 200, page.text);
      const data = page.body.data as Array<{ id: string; status: string; node_id?: unknown }>;
      for (const j of data) assert.equal('node_id' in j, false, 'no node identity');
      seen.push(...data.map((j) => j.id));
      after = page.body.next_cursor as string | null;
      assert.equal(page.body.has_more, after !== null);
      pages++;
    } while (after && pages < 10);
    assert.equal(pages, 3);
    assert.deepEqual(seen, [...ids].reverse(), 'every job once, newest first');

    assert.equal(((await get('?status=completed&limit=100')).body.data as unknown[]).length, 5);
    assert.equal(((await get('?status=failed')).body.data as unknown[]).length, 0);
    assert.equal(((await get('?model=test/none')).body.data as unknown[]).length, 0);
    assert.equal(((await get(`?api_key_id=${t.keyId}&limit=100`)).body.data as unknown[]).length, 5);
    assert.equal(((await get(`?api_key_id=${other.keyId}`)).body.data as unknown[]).length, 0, "another namespace's key finds nothing here");
    const future = Math.floor(Date.now() / 1000) + 3600;
    assert.equal(((await get(`?since=${future}`)).body.data as unknown[]).length, 0);
    assert.equal(((await get(`?until=${new Date(Date.now() + 60_000).toISOString()}&limit=100`)).body.data as unknown[]).length, 5);
    const bad = await get('?status=lost');
    assert.equal(bad.status, 400, bad.text);
    assert.equal((bad.body.error as { type: string }).type, 'invalid_request_error');
  }));

test("export: GET /v1/jobs/export streams the namespace's retained results as NDJSON or CSV, and nothing of another namespace's", () =>
  check(async () => {
    const t = await stack.tenant(10);
    const other = await stack.tenant(10);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await chat(t, `export, "quoted", ${i}`)).replace(/^chatcmpl-/, ''));
    await chat(other, 'not yours');
    const nd = await fetch(`${stack.url}/v1/jobs/export`, { headers: { authorization: `Bearer ${t.apiKey}` } });
    assert.equal(nd.status, 200);
    assert.match(nd.headers.get('content-type') ?? '', /ndjson/);
    const lines = (await nd.text()).trim().split('\n').map((l) => JSON.parse(l) as { job_id: string; output: { content: string }; input: { messages: Array<{ content: string }> } | null; node_id?: unknown });
    assert.deepEqual(lines.map((l) => l.job_id).sort(), [...ids].sort());
    for (const l of lines) {
      assert.match(l.output.content, /^simulated answer/);
      assert.equal('node_id' in l, false, 'no node identity');
    }
    const csv = await fetch(`${stack.url}/v1/jobs/export?format=csv`, { headers: { authorization: `Bearer ${t.apiKey}` } });
    assert.equal(csv.status, 200);
    const rows = (await csv.text()).trim().split('\r\n');
    assert.equal(rows[0], 'job_id,attempt,model,at,prompt_tokens,completion_tokens,input,output');
    assert.equal(rows.length, 4);
    const bad = await fetch(`${stack.url}/v1/jobs/export?format=xml`, { headers: { authorization: `Bearer ${t.apiKey}` } });
    assert.equal(bad.status, 400);
  }));
