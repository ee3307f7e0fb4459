// The network config on the real engines (issue 4, part 1): the genesis version made from the
// environment, publishing through the admin API, every version and admin change kept append-only in
// PostgreSQL, a connected node agent following a publish (digest in the heartbeat answer, fetch, verify),
// jobs accepted under the version in force, and the participation rules applied by the gateway.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { APIError } from 'openai';
import { TestStack, TEST_MODEL } from '../helpers/stack.js';
import { addressOf } from '../../src/domain/signatures.js';
import { verifyNetworkConfig, type NetworkConfig } from '../../src/domain/network-config.js';

let stack: TestStack;
let network: string;

before(async () => {
  stack = await TestStack.start();
  await stack.model();
  network = addressOf(stack.config.NETWORK_SIGNING_KEY!);
});

after(async () => {
  await stack.close();
});

const check = (fn: () => Promise<void>) => stack.check(fn);

interface Answer<T = Record<string, unknown>> {
  status: number;
  body: T;
  text: string;
}

interface Published {
  version: number;
  digest: string;
  document: NetworkConfig;
  signature: string;
  publishedBy: string;
}

async function call<T = Record<string, unknown>>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer<T>> {
  const h: Record<string, string> = { authorization: `Bearer ${stack.config.ADMIN_TOKEN}`, ...headers };
  if (body !== undefined) h['content-type'] = 'application/json';
  const res = await fetch(`${stack.url}${path}`, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as T, text };
}

async function publish(body: unknown, actor?: string): Promise<Published> {
  const a = await call<Published>('POST', '/admin/network-config', body, actor ? { 'x-admin-actor': actor } : {});
  assert.equal(a.status, 201, a.text);
  return a.body;
}

async function current(): Promise<Published> {
  const a = await call<{ data: Published[] }>('GET', '/admin/network-config?limit=1');
  assert.equal(a.status, 200, a.text);
  return a.body.data[0]!;
}

async function changes(action: string): Promise<Array<{ actor: string; subject: string; before: unknown; after: unknown }>> {
  const r = await stack.db.query<{ actor: string; subject: string; before: unknown; after: unknown }>(
    `SELECT actor, subject, before, after FROM admin_changes WHERE action = $1 ORDER BY id`,
    [action],
  );
  return r.rows;
}

void test('genesis: version 1 made from the environment, signed by the network key, served to nodes; idempotent', () =>
  check(async () => {
    const list = await call<{ data: Published[] }>('GET', '/admin/network-config');
    assert.equal(list.status, 200, list.text);
    assert.equal(list.body.data.length, 1);
    const v1 = list.body.data[0]!;
    assert.equal(v1.version, 1);
    assert.equal(v1.publishedBy, 'system');
    const verified = verifyNetworkConfig(v1, network);
    assert.ok(verified.ok, JSON.stringify(verified));
    assert.equal(v1.document.previousDigest, null);
    // The test stack's environment (helpers/stack.ts) is what genesis states.
    assert.deepEqual(v1.document.jobs, {
      defaultMaxTokens: stack.config.MAX_TOKENS_DEFAULT,
      maxTokens: 10_000_000,
      executionTimeoutMs: stack.config.JOB_ATTEMPT_TIMEOUT_MS,
      maxAttempts: stack.config.JOB_MAX_ATTEMPTS,
    });
    assert.deepEqual(v1.document.heartbeat, { intervalMs: Math.floor(stack.config.HEARTBEAT_TTL_MS / 3), ttlMs: stack.config.HEARTBEAT_TTL_MS });

    // What nodes fetch, without the admin token.
    const served = await fetch(`${stack.url}/io/config`);
    assert.equal(served.status, 200);
    const body = (await served.json()) as Published & { network: string };
    assert.equal(body.digest, v1.digest);
    assert.equal(body.network, network);
    assert.ok(verifyNetworkConfig(body, network).ok);

    // Another gate instance starting: no second genesis.
    const again = await stack.backbone.networkConfig.ensureGenesis();
    assert.equal(again.digest, v1.digest);
    assert.equal((await call<{ data: Published[] }>('GET', '/admin/network-config')).body.data.length, 1);
    const logged = await changes('network_config.publish');
    assert.deepEqual(logged, [{ actor: 'system', subject: '1', before: null, after: { version: 1, digest: v1.digest } }]);
  }));

void test('publish: a model change then a publish states the model; a new digest chained to the previous; bad input refused', () =>
  check(async () => {
    const v1 = await current();
    const big = 'test/netcfg-big';
    const put = await call('PUT', `/admin/models/${encodeURIComponent(big)}`, { input_price: 1, output_price: 2, version: '7', content_hash: 'ab'.repeat(32), min_gpu_memory_mb: 24_000 }, {
      'x-admin-actor': 'alice',
    });
    assert.equal(put.status, 200, put.text);

    const v2 = await publish({ heartbeat: { intervalMs: 250 } }, 'alice');
    assert.equal(v2.version, 2);
    assert.notEqual(v2.digest, v1.digest);
    assert.equal(v2.document.previousDigest, v1.digest);
    assert.equal(v2.publishedBy, 'admin-api:alice');
    assert.ok(verifyNetworkConfig(v2, network).ok);
    assert.deepEqual(
      v2.document.models.find((m) => m.name === big),
      { name: big, version: '7', contentHash: 'ab'.repeat(32), requirements: { minGpuMemoryMb: 24_000 } },
    );
    assert.ok(v2.document.models.some((m) => m.name === TEST_MODEL));
    assert.deepEqual(v2.document.heartbeat, { intervalMs: 250, ttlMs: v1.document.heartbeat.ttlMs }, 'fields not given keep the previous version');
    assert.deepEqual(v2.document.jobs, v1.document.jobs);

    const read = await call<Published>('GET', '/admin/network-config/2');
    assert.equal(read.body.digest, v2.digest);
    assert.equal((await call('GET', '/admin/network-config/99')).status, 404);

    for (const [bad, param] of [
      [{ jobs: { defaultMaxTokens: 10, maxTokens: 5 } }, 'jobs.defaultMaxTokens'],
      [{ heartbeat: { intervalMs: 20_000 } }, 'heartbeat.ttlMs'],
      [{ participation: { networks: ['moonnet'] } }, 'participation.networks.0'],
      [{ colour: 'blue' }, ''],
    ] as const) {
      const a = await call<{ error: { param: string | null; type: string } }>('POST', '/admin/network-config', bad);
      assert.equal(a.status, 400, `${JSON.stringify(bad)}: ${a.text}`);
      if (param) assert.equal(a.body.error.param, param, a.text);
    }
    assert.equal((await current()).version, 2, 'a refused publish stores nothing');

    const modelLog = (await changes('model.put')).filter((c) => c.subject === big);
    assert.equal(modelLog.length, 1);
    assert.equal(modelLog[0]!.actor, 'admin-api:alice');
    assert.equal(modelLog[0]!.before, null);
    assert.equal((modelLog[0]!.after as { version: string }).version, '7');
    const publishLog = await changes('network_config.publish');
    assert.deepEqual(publishLog.at(-1), { actor: 'admin-api:alice', subject: '2', before: { version: 1, digest: v1.digest }, after: { version: 2, digest: v2.digest } });
  }));

void test('versions and the admin change log are append-only: UPDATE, DELETE and TRUNCATE fail', () =>
  check(async () => {
    for (const sql of [
      `UPDATE network_configs SET published_by = 'mallory'`,
      `DELETE FROM network_configs WHERE version = 1`,
      `TRUNCATE network_configs`,
      `UPDATE admin_changes SET actor = 'mallory'`,
      `DELETE FROM admin_changes`,
      `TRUNCATE admin_changes`,
    ]) {
      await assert.rejects(stack.db.query(sql), /append-only/, sql);
    }
    const r = await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM network_configs WHERE published_by = 'mallory'`);
    assert.equal(r.rows[0]!.n, 0);
  }));

void test('a connected node agent sees a new digest in its heartbeat answer, fetches and verifies it, and reports it', () =>
  check(async () => {
    const before = await current();
    const node = await stack.node();
    await stack.until('the node holds the config in force', async () => (node.networkConfig()?.digest === before.digest ? true : undefined));

    const next = await publish({ runtimes: [{ name: 'simulated', minVersion: '0.1' }] });
    assert.equal(next.version, before.version + 1);
    // The node's heartbeats run every 250 ms (the interval published above): well inside the wait.
    await stack.until('the node adopts the new version', async () => (node.networkConfig()?.digest === next.digest ? true : undefined), 10_000);
    assert.equal(node.networkConfig()?.version, next.version);

    // The node reports what it runs in its signed heartbeats; the admin sees nobody behind.
    await stack.until('the adoption report shows the node current', async () => {
      const a = await call<{ version: number; online: number; current: number; behind: Array<{ nodeId: string }> }>('GET', '/admin/network-config/adoption');
      return a.body.version === next.version && a.body.current >= 1 && !a.body.behind.some((b) => b.nodeId === node.nodeId) ? true : undefined;
    });
  }));

void test('a job accepted after a publish follows the new version: maximum and default tokens, attempts and timeout on its row', () =>
  check(async () => {
    const tenant = await stack.tenant(100);
    const messages = [{ role: 'user' as const, content: 'hello' }];
    // Under the version in force, 100 tokens are fine.
    await tenant.client.chat.completions.create({ model: TEST_MODEL, messages, max_tokens: 100 });

    const v = await publish({ jobs: { defaultMaxTokens: 40, maxTokens: 64, maxAttempts: 2, executionTimeoutMs: 4_000 } });
    const refused = await tenant.client.chat.completions.create({ model: TEST_MODEL, messages, max_tokens: 100 }).then(
      () => null,
      (err: unknown) => err,
    );
    assert.ok(refused instanceof APIError, String(refused));
    assert.equal(refused.status, 400);
    assert.equal(refused.param, 'max_tokens');
    assert.match(refused.message, /network's maximum of 64/);

    const done = await tenant.client.chat.completions.create({ model: TEST_MODEL, messages });
    const row = await stack.db.query<{ max_tokens: number; max_attempts: number; attempt_timeout_ms: number; config_version: number; status: string }>(
      `SELECT max_tokens, max_attempts, attempt_timeout_ms, config_version, status FROM jobs WHERE id = $1`,
      [done.id.replace(/^chatcmpl-/, '')],
    );
    assert.deepEqual(row.rows[0], { max_tokens: 40, max_attempts: 2, attempt_timeout_ms: 4_000, config_version: v.version, status: 'completed' });
  }));

void test('admin changes: node flags and subcloud changes are logged with who, before and after', () =>
  check(async () => {
    const node = stack.nodes[0]!;
    const paused = await call('PUT', `/admin/nodes/${node.nodeId}/flags`, { paused: true, reason: 'maintenance' }, { 'x-admin-actor': 'bob' });
    assert.equal(paused.status, 200, paused.text);
    const reinstated = await call('DELETE', `/admin/nodes/${node.nodeId}/flags`);
    assert.equal(reinstated.status, 200, reinstated.text);
    const flags = (await changes('node_flags.set')).filter((c) => c.subject === node.nodeId);
    assert.equal(flags.length, 2);
    assert.equal(flags[0]!.actor, 'admin-api:bob');
    assert.equal(flags[0]!.before, null);
    assert.equal((flags[0]!.after as { paused: boolean }).paused, true);
    assert.equal(flags[1]!.actor, 'admin-api');
    assert.equal((flags[1]!.before as { paused: boolean }).paused, true);
    assert.equal((flags[1]!.after as { paused: boolean }).paused, false);

    assert.equal((await call('POST', '/admin/subclouds', { name: 'netcfg-sc', network: 'mainnet', isolate: false })).status, 201);
    assert.equal((await call('PATCH', '/admin/subclouds/netcfg-sc', { min_gpu_memory_mb: 8_000 })).status, 200);
    assert.equal((await call('DELETE', '/admin/subclouds/netcfg-sc')).status, 204);
    const log = await call<{ data: Array<{ action: string; subject: string; before: { min_gpu_memory_mb?: number } | null; after: { min_gpu_memory_mb?: number } | null }> }>(
      'GET',
      '/admin/changes?subject=netcfg-sc',
    );
    assert.deepEqual(log.body.data.map((c) => c.action), ['subcloud.delete', 'subcloud.update', 'subcloud.create']);
    assert.equal(log.body.data[1]!.before?.min_gpu_memory_mb, 0);
    assert.equal(log.body.data[1]!.after?.min_gpu_memory_mb, 8_000);
    assert.equal(log.body.data[0]!.after, null);
    assert.equal((await call('GET', '/admin/changes?before=abc')).status, 400);
  }));

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** Runs `resultity admin <args>` against this stack's engines. */
function cli(args: string[], withKey: boolean): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = stack.cliEnv(withKey && stack.config.NETWORK_SIGNING_KEY ? { NETWORK_SIGNING_KEY: stack.config.NETWORK_SIGNING_KEY } : {});
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'admin', ...args], { env, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

void test('cli: config-publish signs the next version with the network key and logs the local user; config-show reads it', () =>
  check(async () => {
    const before = await current();
    const refused = await cli(['config-publish', '--max-tokens', '5000'], false);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /NETWORK_SIGNING_KEY/);

    const run = await cli(['config-publish', '--max-tokens', '5000', '--default-max-tokens', '100', '--runtimes', 'vllm=0.6.0', '--json'], true);
    assert.equal(run.code, 0, run.stderr);
    const published = JSON.parse(run.stdout) as Published;
    assert.equal(published.version, before.version + 1);
    assert.match(published.publishedBy, /^cli:/);
    assert.ok(verifyNetworkConfig(published, network).ok);
    assert.deepEqual(published.document.jobs, { ...before.document.jobs, maxTokens: 5000, defaultMaxTokens: 100 });
    assert.deepEqual(published.document.runtimes, [{ name: 'vllm', minVersion: '0.6.0' }]);

    const shown = await cli(['config-show', String(published.version), '--json'], false);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal((JSON.parse(shown.stdout) as Published).digest, published.digest);
  }));

void test('participation rules: once mainnet is no longer accepted, mainnet nodes are refused and disconnected', () =>
  check(async () => {
    const node = stack.nodes[0]!;
    assert.notDeepEqual(await stack.presence(node.nodeId), {});
    await publish({ participation: { networks: ['testnet'] } });
    try {
      const raw = await stack.rawNode();
      raw.send(raw.register(await stack.operator(), { network: 'mainnet' }));
      const answer = await raw.next('error');
      assert.equal(answer.code, 'not_accepted');
      assert.match(String(answer.message), /does not accept nodes of mainnet/);
      await raw.waitClosed();
      // The connected agent is told at its next heartbeat, and leaves rotation.
      await stack.until('the mainnet node is disconnected', async () => (Object.keys(await stack.presence(node.nodeId)).length === 0 ? true : undefined), 10_000);
      const testnet = await stack.rawNode();
      await testnet.registerAs(await stack.operator(), { network: 'testnet' });
      await testnet.close();
    } finally {
      await publish({ participation: { networks: ['mainnet', 'testnet'] } });
    }
  }));
