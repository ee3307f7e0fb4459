// Eligibility (issue 4, part 2) against the real engines: jobs reach only nodes of their network, of the
// catalogue's model version, with GPU memory at or above the floor, of the region asked for, of their
// subcloud (and isolated subclouds' nodes serve nobody else), and a node runs up to its declared
// capacity at once. Each test uses a model of its own, so that the nodes of one test never serve another's.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';
import type { NodeAgent } from '../../src/node-agent/agent.js';
import { RedisKeys } from '../../src/redis/client.js';

let stack: TestStack;
let mainnet: Tenant;
let testnet: Tenant;
const check = (fn: () => Promise<void>) => stack.check(fn);
const TIMEOUT = { timeout: 120_000 };
const run = promisify(execFile);

before(async () => {
  stack = await TestStack.start({ config: { NO_NODE_GRACE_MS: 1500 } });
  await stack.model();
  mainnet = await stack.tenant(100);
  testnet = await stack.tenant(100, { network: 'testnet' });
});

after(async () => {
  await stack.close();
});

async function admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${stack.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${stack.config.ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function putModel(name: string, requirements: { version?: string; min_gpu_memory_mb?: number; content_hash?: string | null } = {}) {
  const r = await admin('PUT', `/admin/models/${encodeURIComponent(name)}`, { input_price: 10, output_price: 20, ...requirements });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

/** Submits a job (asynchronous mode); returns the HTTP answer. */
function submit(tenant: Tenant, model: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${stack.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json', prefer: 'respond-async', ...headers },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'where am I served?' }], max_tokens: 8 }),
  });
}

async function accepted(tenant: Tenant, model: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await submit(tenant, model, headers);
  const body = (await res.json()) as { id: string };
  assert.equal(res.status, 202, JSON.stringify(body));
  return body.id;
}

/** Submits `n` jobs at once and waits for each to complete; returns the node that served each. */
async function servedBy(tenant: Tenant, model: string, n: number, headers: Record<string, string> = {}): Promise<string[]> {
  const ids = await Promise.all(Array.from({ length: n }, () => accepted(tenant, model, headers)));
  return Promise.all(ids.map((id) => completedOn(id)));
}

async function completedOn(id: string): Promise<string> {
  const row = await stack.until(
    `job ${id} to end`,
    async () => {
      const j = await stack.job(id);
      return j && ['completed', 'failed', 'expired'].includes(j.status) ? j : undefined;
    },
    60_000,
  );
  assert.equal(row.status, 'completed', `job ${id} ended ${row.status}`);
  return row.node_id!;
}

/** Which of the named nodes served each job, as labels (a node outside the set shows as its id). */
function labels(served: string[], nodes: Record<string, NodeAgent>): Set<string> {
  const byId = new Map<string, string>(Object.entries(nodes).map(([label, n]) => [n.nodeId, label]));
  return new Set(served.map((id) => byId.get(id) ?? id));
}

async function expectUnavailable(res: Response, what: RegExp): Promise<void> {
  const body = (await res.json()) as { error: { code: string; message: string } };
  assert.equal(res.status, 503, JSON.stringify(body));
  assert.equal(body.error.code, 'model_unavailable');
  assert.match(body.error.message, what);
}

test('a testnet job never reaches a mainnet node, nor a mainnet job a testnet node; a testnet key gets 503 where only mainnet serves', TIMEOUT, () =>
  check(async () => {
    const nodes = {
      main1: await stack.node({ capacity: 2, latencyMs: 30 }),
      main2: await stack.node({ capacity: 2, latencyMs: 30 }),
      test1: await stack.node({ capacity: 2, latencyMs: 30, network: 'testnet' }),
      test2: await stack.node({ capacity: 2, latencyMs: 30, network: 'testnet' }),
    };
    const [onMain, onTest] = await Promise.all([servedBy(mainnet, TEST_MODEL, 24), servedBy(testnet, TEST_MODEL, 24)]);
    assert.deepEqual(labels(onMain, nodes), new Set(['main1', 'main2']));
    assert.deepEqual(labels(onTest, nodes), new Set(['test1', 'test2']));
    const rows = await stack.db.query<{ network: string; n: number }>(`SELECT network, count(*)::int AS n FROM jobs WHERE model = $1 GROUP BY network ORDER BY network`, [TEST_MODEL]);
    assert.deepEqual(rows.rows, [{ network: 'mainnet', n: 24 }, { network: 'testnet', n: 24 }], 'each job stores its network');

    const MAIN_ONLY = 'test/mainnet-only';
    await putModel(MAIN_ONLY);
    await stack.node({ models: [MAIN_ONLY] });
    await expectUnavailable(await submit(testnet, MAIN_ONLY), /on testnet/);
    const listed = await testnet.client.models.list();
    const entry = listed.data.find((m) => m.id === MAIN_ONLY) as unknown as { resultity: { available: boolean } };
    assert.equal(entry.resultity.available, false, 'not available to a testnet key');
    await completedOn(await accepted(mainnet, MAIN_ONLY));
  }));

test('a node below the GPU-memory floor never gets the model; a raised floor applies at the next job', TIMEOUT, () =>
  check(async () => {
    const BIG = 'test/big-model';
    await putModel(BIG, { min_gpu_memory_mb: 20_000 });
    const nodes = {
      small: await stack.node({ models: [BIG], capacity: 4, gpu: { name: 'rtx-3060', memoryMb: 12_288 } }),
      large: await stack.node({ models: [BIG], capacity: 4, gpu: { name: 'rtx-4090', memoryMb: 24_576 } }),
    };
    assert.deepEqual(labels(await servedBy(mainnet, BIG, 16), nodes), new Set(['large']));
    await putModel(BIG, { min_gpu_memory_mb: 40_000 });
    await expectUnavailable(await submit(mainnet, BIG), /big-model/);
    await putModel(BIG, { min_gpu_memory_mb: 0 });
    assert.deepEqual(labels(await servedBy(mainnet, BIG, 16), nodes), new Set(['small', 'large']));
  }));

test("a node running another version than the catalogue's is never chosen; a new version applies at the next job", TIMEOUT, () =>
  check(async () => {
    const M = 'test/versioned';
    const stored = await putModel(M, { version: '2', content_hash: 'ab'.repeat(32) });
    assert.equal(stored.version, '2');
    assert.equal(stored.content_hash, 'ab'.repeat(32));
    const nodes = {
      v1: await stack.node({ models: [M], capacity: 4 }),
      v2: await stack.node({ models: [M], capacity: 4, modelVersions: { [M]: '2' } }),
    };
    assert.deepEqual(labels(await servedBy(mainnet, M, 16), nodes), new Set(['v2']));
    // Repricing without a version keeps the version.
    assert.equal((await putModel(M)).version, '2');
    await putModel(M, { version: '1' });
    assert.deepEqual(labels(await servedBy(mainnet, M, 8), nodes), new Set(['v1']));
    const bad = await admin('PUT', `/admin/models/${encodeURIComponent(M)}`, { input_price: 1, output_price: 1, version: 'v 3' });
    assert.equal(bad.status, 400);
  }));

test('a region asked for is honoured; a malformed one is a 400, one nobody serves a 503', TIMEOUT, () =>
  check(async () => {
    const M = 'test/regional';
    await putModel(M);
    const nodes = {
      eu: await stack.node({ models: [M], capacity: 3, region: 'eu-west' }),
      us: await stack.node({ models: [M], capacity: 3, region: 'us-east' }),
      anywhere: await stack.node({ models: [M], capacity: 3 }),
    };
    assert.deepEqual(labels(await servedBy(mainnet, M, 12, { 'x-resultity-region': 'eu-west' }), nodes), new Set(['eu']));
    assert.deepEqual(labels(await servedBy(mainnet, M, 12, { 'x-resultity-region': 'us-east' }), nodes), new Set(['us']));
    assert.deepEqual(labels(await servedBy(mainnet, M, 24), nodes), new Set(['eu', 'us', 'anywhere']), 'no region asked: any node');
    const ids = await Promise.all([1, 2].map(() => accepted(mainnet, M, { 'x-resultity-region': 'eu-west' })));
    const rows = await stack.db.query<{ region: string }>(`SELECT region FROM jobs WHERE id = ANY($1)`, [ids]);
    assert.deepEqual(rows.rows.map((r) => r.region), ['eu-west', 'eu-west']);
    await Promise.all(ids.map((id) => completedOn(id)));

    const malformed = await submit(mainnet, M, { 'x-resultity-region': 'EU West' });
    const body = (await malformed.json()) as { error: { type: string; code: string; param: string } };
    assert.equal(malformed.status, 400);
    assert.equal(body.error.type, 'invalid_request_error');
    assert.equal(body.error.param, 'X-Resultity-Region');
    await expectUnavailable(await submit(mainnet, M, { 'x-resultity-region': 'ap-south' }), /in region ap-south/);
  }));

test('a job that no online node is eligible for fails with no_node_available, though other nodes serve its model', TIMEOUT, () =>
  check(async () => {
    const M = 'test/stranded';
    await putModel(M);
    const eu = await stack.node({ models: [M], capacity: 1, region: 'eu-north', latencyMs: 60_000 });
    await stack.node({ models: [M], capacity: 4, region: 'us-west' });
    const id = await accepted(mainnet, M, { 'x-resultity-region': 'eu-north' });
    await stack.until('the job to run on the eu node', async () => ((await stack.job(id))?.node_id === eu.nodeId ? true : undefined));
    eu.kill(); // its attempt fails; the us node may not take the job
    const row = await stack.until('the job to fail', async () => {
      const r = await stack.db.query<{ status: string; error_code: string | null; error_message: string | null }>(
        `SELECT status, error_code, error_message FROM jobs WHERE id = $1`,
        [id],
      );
      return r.rows[0]?.status === 'failed' ? r.rows[0] : undefined;
    }, 30_000);
    assert.equal(row.error_code, 'no_node_available');
    assert.match(row.error_message ?? '', /eu-north/);
    const attempts = await stack.db.query<{ node_id: string }>(`SELECT node_id FROM job_attempts WHERE job_id = $1`, [id]);
    assert.deepEqual(new Set(attempts.rows.map((a) => a.node_id)), new Set([eu.nodeId]));
  }));

test("a namespace bound to a subcloud runs only on its members; a non-isolated subcloud's members also serve public jobs", TIMEOUT, () =>
  check(async () => {
    const M = 'test/subcloud-open';
    await putModel(M);
    const nodes = {
      member: await stack.node({ models: [M], capacity: 3 }),
      public1: await stack.node({ models: [M], capacity: 3 }),
      public2: await stack.node({ models: [M], capacity: 3 }),
    };
    assert.equal((await admin('POST', '/admin/subclouds', { name: 'lab', network: 'mainnet', allowed_models: [M] })).status, 201);
    const added = await admin('PUT', `/admin/subclouds/lab/members/${nodes.member.nodeId}`);
    assert.equal(added.status, 200);
    assert.deepEqual(added.body.members, [nodes.member.nodeId]);
    const lab = await stack.tenant(100);
    assert.equal((await admin('PUT', `/admin/namespaces/${lab.namespaceId}/subcloud`, { subcloud: 'lab' })).status, 200);

    assert.deepEqual(labels(await servedBy(lab, M, 18), nodes), new Set(['member']));
    assert.deepEqual(labels(await servedBy(mainnet, M, 36), nodes), new Set(['member', 'public1', 'public2']));
    const rows = await stack.db.query<{ subcloud: string | null; n: number }>(
      `SELECT subcloud, count(*)::int AS n FROM jobs WHERE model = $1 GROUP BY subcloud ORDER BY subcloud NULLS LAST`,
      [M],
    );
    assert.deepEqual(rows.rows, [{ subcloud: 'lab', n: 18 }, { subcloud: null, n: 36 }]);

    // The subcloud allows only M: its namespace cannot use another model, even one its member could serve.
    await expectUnavailable(await submit(lab, TEST_MODEL), /subcloud lab/);
    // Admin rules: a testnet namespace cannot be bound to a mainnet subcloud; a bound subcloud cannot be deleted.
    assert.equal((await admin('PUT', `/admin/namespaces/${testnet.namespaceId}/subcloud`, { subcloud: 'lab' })).status, 400);
    assert.equal((await admin('DELETE', '/admin/subclouds/lab')).status, 409);
    assert.equal((await admin('PUT', `/admin/subclouds/lab/members/0x${'0'.repeat(40)}`)).status, 404);
  }));

test("an isolated subcloud's members refuse outside jobs; turning isolation off or on applies at the next job", TIMEOUT, () =>
  check(async () => {
    const M = 'test/subcloud-isolated';
    await putModel(M);
    const nodes = {
      vaultA: await stack.node({ models: [M], capacity: 2 }),
      vaultB: await stack.node({ models: [M], capacity: 2 }),
      outside: await stack.node({ models: [M], capacity: 2 }),
    };
    assert.equal((await admin('POST', '/admin/subclouds', { name: 'vault', network: 'mainnet', isolate: true, min_gpu_memory_mb: 0 })).status, 201);
    for (const n of [nodes.vaultA, nodes.vaultB]) assert.equal((await admin('PUT', `/admin/subclouds/vault/members/${n.nodeId}`)).status, 200);
    const vault = await stack.tenant(100);
    assert.equal((await admin('PUT', `/admin/namespaces/${vault.namespaceId}/subcloud`, { subcloud: 'vault' })).status, 200);

    const [inside, outside] = await Promise.all([servedBy(vault, M, 16), servedBy(mainnet, M, 16)]);
    assert.deepEqual(labels(inside, nodes), new Set(['vaultA', 'vaultB']));
    assert.deepEqual(labels(outside, nodes), new Set(['outside']), 'an isolated member served a public job');

    // Isolation also survives the loss of its Redis mirror: the next reservation rebuilds it first.
    const redis = new Redis(stack.config.REDIS_URL);
    try {
      const k = new RedisKeys(stack.config.REDIS_KEY_PREFIX);
      const [subcloudKeys, memberships] = k.eligibilityMirrorPatterns();
      const mirror = [...(await redis.keys(subcloudKeys!)), ...(await redis.keys(memberships!)), k.subclouds(), k.eligibilityRevision()];
      await redis.del(...mirror);
    } finally {
      redis.disconnect();
    }
    assert.deepEqual(labels(await servedBy(mainnet, M, 12), nodes), new Set(['outside']), 'an isolated member served a public job after the mirror was lost');

    // Without isolation its members serve public jobs too; their subcloud's jobs still stay with them.
    assert.equal((await admin('PATCH', '/admin/subclouds/vault', { isolate: false })).status, 200);
    assert.deepEqual(labels(await servedBy(mainnet, M, 36), nodes), new Set(['vaultA', 'vaultB', 'outside']));
    assert.deepEqual(labels(await servedBy(vault, M, 12), nodes), new Set(['vaultA', 'vaultB']));
    // Isolated again, with the only outside node gone: nobody serves the public.
    assert.equal((await admin('PATCH', '/admin/subclouds/vault', { isolate: true })).status, 200);
    nodes.outside.kill();
    await stack.until('the outside node to leave', async () => (Object.keys(await stack.presence(nodes.outside.nodeId)).length === 0 ? true : undefined));
    await expectUnavailable(await submit(mainnet, M), /subcloud-isolated/);
    await completedOn(await accepted(vault, M));
  }));

test('a node with capacity N runs N jobs at once, never N + 1', TIMEOUT, () =>
  check(async () => {
    const M = 'test/capacity';
    await putModel(M);
    const node = await stack.node({ models: [M], capacity: 3, latencyMs: 1_500 });
    const ids = await Promise.all(Array.from({ length: 5 }, () => accepted(mainnet, M)));
    let most = 0;
    let mostOnNode = 0;
    // Running as a reader sees it (an attempt in flight lives in Redis until it ends: stack.job).
    const running = async () => (await Promise.all(ids.map((id) => stack.job(id)))).filter((j) => j?.status === 'running').length;
    const sampler = (async () => {
      for (;;) {
        const [n, done] = [await running(), await stack.db.query(`SELECT 1 FROM jobs WHERE id = ANY($1) AND finished_at IS NULL`, [ids])];
        most = Math.max(most, n);
        mostOnNode = Math.max(mostOnNode, node.running());
        if ((done.rowCount ?? 0) === 0) return;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    for (const id of ids) assert.equal(await completedOn(id), node.nodeId);
    await sampler;
    assert.equal(most, 3, `at most 3 jobs running at once, and 3 reached (saw ${most})`);
    assert.ok(mostOnNode <= 3, `the node ran ${mostOnNode} at once`);
    const attempts = await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM job_attempts WHERE job_id = ANY($1)`, [ids]);
    assert.equal(attempts.rows[0]!.n, 5, 'no attempt was refused for capacity and retried');
  }));

test('the admin CLI sets the same rules, in force on the running backbone at once', TIMEOUT, () =>
  check(async () => {
    const env = stack.cliEnv();
    const cli = async (...args: string[]) => JSON.parse((await run(process.execPath, ['dist/src/cli/main.js', 'admin', ...args, '--json'], { env })).stdout) as Record<string, unknown>;
    const M = 'test/cli-rules';
    const model = await cli('model-put', M, '--input-price', '10', '--output-price', '20', '--version', '7', '--min-gpu-memory-mb', '1024');
    assert.deepEqual([model.version, model.min_gpu_memory_mb], ['7', 1024]);
    const nodes = {
      kept: await stack.node({ models: [M], capacity: 2, modelVersions: { [M]: '7' }, gpu: { name: 'l4', memoryMb: 23_034 } }),
      public: await stack.node({ models: [M], capacity: 2, modelVersions: { [M]: '7' }, gpu: { name: 'l4', memoryMb: 23_034 } }),
    };
    const account = await stack.backbone.admin.accounts.createAccount('cli tenant');
    const ns = await cli('namespace-create', account.id, 'cli', '--network', 'mainnet');
    assert.equal(ns.network, 'mainnet');
    await cli('subcloud-create', 'cli-sc', '--network', 'mainnet', '--isolate', 'true', '--allowed-models', M);
    const sc = await cli('subcloud-member-add', 'cli-sc', nodes.kept.nodeId);
    assert.deepEqual([sc.isolate, sc.members], [true, [nodes.kept.nodeId]]);
    assert.deepEqual(labels(await servedBy(mainnet, M, 12), nodes), new Set(['public']));
    await cli('subcloud-update', 'cli-sc', '--isolate', 'false');
    assert.deepEqual(labels(await servedBy(mainnet, M, 24), nodes), new Set(['kept', 'public']));
    const bound = await cli('namespace-bind', String(ns.id), 'cli-sc');
    assert.equal(bound.subcloud, 'cli-sc');
    await assert.rejects(run(process.execPath, ['dist/src/cli/main.js', 'admin', 'subcloud-delete', 'cli-sc'], { env }), /unbind them first/);
  }));

test('after a loss of Redis, the maintenance role mirrors the rules again by itself', TIMEOUT, () =>
  check(async () => {
    assert.equal((await admin('POST', '/admin/subclouds', { name: 'restored', network: 'testnet', isolate: true })).status, 201);
    const redis = new Redis(stack.config.REDIS_URL);
    try {
      const k = new RedisKeys(stack.config.REDIS_KEY_PREFIX);
      const mirrored = async () => ({ revision: await redis.get(k.eligibilityRevision()), subclouds: (await redis.smembers(k.subclouds())).sort() });
      const before = await mirrored();
      assert.ok(before.revision !== null && before.subclouds.length > 0);
      const keys = [...(await Promise.all(k.eligibilityMirrorPatterns().map((pattern) => redis.keys(pattern)))).flat(), k.eligibilityRevision()];
      await redis.del(...keys);
      // No job is submitted meanwhile: only maintenance (every SWEEP_INTERVAL_MS) can put it back.
      const after = await stack.until('the mirror to be back', async () => ((await redis.exists(k.eligibilityRevision())) ? mirrored() : undefined), 10_000);
      assert.deepEqual(after, before);
    } finally {
      redis.disconnect();
    }
  }));
