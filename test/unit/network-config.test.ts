// The network config without engines: the document's digest and signature, what a node refuses, the
// participation rules, and the node agent's keeper (fetch, verify, keep the last good, file) against a
// small fake /io/config server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { addressOf, canonicalJson, generatePrivateKey, sha256Hex, signPersonal } from '../../src/domain/signatures.js';
import {
  buildNetworkConfig,
  compareDottedVersions,
  networkConfigDigest,
  parametersFromEnv,
  participationProblem,
  signingMessage,
  signNetworkConfig,
  verifyNetworkConfig,
  type NetworkConfig,
} from '../../src/domain/network-config.js';
import { NetworkConfigKeeper } from '../../src/node-agent/network-config.js';

const KEY = generatePrivateKey();
const NETWORK = addressOf(KEY);
const ENV = { MAX_TOKENS_DEFAULT: 1024, JOB_ATTEMPT_TIMEOUT_MS: 60_000, JOB_MAX_ATTEMPTS: 3, HEARTBEAT_TTL_MS: 30_000, NODE_START_SLOTS: 2 };

function doc(version: number, overrides: Partial<NetworkConfig> = {}): NetworkConfig {
  return buildNetworkConfig({
    version,
    issuedAt: '2026-01-02T03:04:05.000Z',
    previousDigest: null,
    models: [
      { name: 'zeta/b', version: '2', contentHash: 'ab'.repeat(32), requirements: { minGpuMemoryMb: 24_000 } },
      { name: 'alpha/a', version: '1', contentHash: null, requirements: { minGpuMemoryMb: 0 } },
    ],
    runtimes: [{ name: 'vllm', minVersion: '0.6.0' }],
    ...parametersFromEnv(ENV),
    ...overrides,
  });
}

void test('digest: sha256 of the canonical JSON, independent of key and model order', () => {
  const a = doc(1);
  assert.equal(networkConfigDigest(a), sha256Hex(canonicalJson(a)));
  assert.deepEqual(a.models.map((m) => m.name), ['alpha/a', 'zeta/b'], 'models sorted by name');
  // The same content with its keys in another order.
  const { defaultMaxTokens, ...restOfJobs } = a.jobs;
  const reordered = JSON.parse(JSON.stringify({ ...a, jobs: { ...restOfJobs, defaultMaxTokens } })) as NetworkConfig;
  assert.notEqual(JSON.stringify(reordered), JSON.stringify(a));
  assert.equal(networkConfigDigest(reordered), networkConfigDigest(a));
  assert.notEqual(networkConfigDigest(doc(1, { jobs: { ...a.jobs, maxTokens: 2048 } })), networkConfigDigest(a));
});

void test('genesis parameters come from the environment', () => {
  const p = parametersFromEnv(ENV);
  assert.deepEqual(p.jobs, { defaultMaxTokens: 1024, maxTokens: 10_000_000, executionTimeoutMs: 60_000, maxAttempts: 3 });
  assert.deepEqual(p.heartbeat, { intervalMs: 10_000, ttlMs: 30_000 });
  assert.deepEqual(p.participation, { networks: ['mainnet', 'testnet'], minAgentVersion: null });
});

void test('signed config verifies against the network address, and only against it', () => {
  const signed = signNetworkConfig(KEY, doc(3));
  const ok = verifyNetworkConfig(JSON.parse(JSON.stringify(signed)), NETWORK);
  assert.ok(ok.ok);
  assert.equal(ok.config.version, 3);
  assert.equal(ok.config.digest, signed.digest);
  // An EIP-191 signature over the tagged digest: any Ethereum library can check it.
  assert.equal(signed.signature, signPersonal(KEY, signingMessage(signed.digest)));

  const other = addressOf(generatePrivateKey());
  assert.deepEqual(verifyNetworkConfig(signed, other), { ok: false, reason: 'not signed by the network key' });
});

void test('tampering is refused: document, digest, signature, envelope version', () => {
  const signed = signNetworkConfig(KEY, doc(2));
  const tamperedDoc = { ...signed, document: { ...signed.document, jobs: { ...signed.document.jobs, maxTokens: 1 } } };
  const r1 = verifyNetworkConfig(tamperedDoc, NETWORK);
  assert.ok(!r1.ok && /digest mismatch/.test(r1.reason), JSON.stringify(r1));

  // Digest recomputed to match the tampered document: the signature no longer covers it.
  const r2 = verifyNetworkConfig({ ...tamperedDoc, digest: networkConfigDigest(tamperedDoc.document) }, NETWORK);
  assert.ok(!r2.ok && /not signed/.test(r2.reason), JSON.stringify(r2));

  // Signed by another key over the right digest.
  const r3 = verifyNetworkConfig({ ...signed, signature: signPersonal(generatePrivateKey(), signingMessage(signed.digest)) }, NETWORK);
  assert.ok(!r3.ok && /not signed/.test(r3.reason));

  // A job-style signature over the digest without the domain tag is not a config signature.
  const r4 = verifyNetworkConfig({ ...signed, signature: signPersonal(KEY, signed.digest) }, NETWORK);
  assert.ok(!r4.ok);

  const r5 = verifyNetworkConfig({ ...signed, version: 7 }, NETWORK);
  assert.ok(!r5.ok && /version 7/.test(r5.reason));

  const r6 = verifyNetworkConfig({ ...signed, signature: 'nope' }, NETWORK);
  assert.ok(!r6.ok && /malformed/.test(r6.reason));
});

void test('a signed document that breaks the schema is refused', () => {
  // Signed by the genuine key, but not a valid config (as a buggy publisher might produce).
  const bad = { ...doc(1), heartbeat: { intervalMs: 20_000, ttlMs: 30_000 } };
  const digest = networkConfigDigest(bad);
  const r = verifyNetworkConfig({ version: 1, digest, document: bad, signature: signPersonal(KEY, signingMessage(digest)) }, NETWORK);
  assert.ok(!r.ok && /heartbeat\.ttlMs/.test(r.reason), JSON.stringify(r));
});

void test('schema rules: default within maximum, TTL over two intervals, models once', () => {
  const base = doc(1);
  assert.throws(() => doc(1, { jobs: { ...base.jobs, defaultMaxTokens: 10, maxTokens: 5 } }), /defaultMaxTokens/);
  assert.throws(() => doc(1, { heartbeat: { intervalMs: 1000, ttlMs: 1500 } }), /ttlMs/);
  assert.throws(() => doc(1, { models: [base.models[0]!, base.models[0]!] }), /each model at most once/);
  assert.throws(() => doc(0), /version/);
});

void test('participation: networks accepted and minimum agent version', () => {
  const rules = { networks: ['testnet' as const], minAgentVersion: '0.10.0' };
  assert.match(participationProblem(rules, { agentVersion: 'resultity-node/1.0.0', network: 'mainnet' }) ?? '', /does not accept nodes of mainnet/);
  assert.equal(participationProblem(rules, { agentVersion: 'resultity-node/0.10.0', network: 'testnet' }), null);
  assert.match(participationProblem(rules, { agentVersion: 'resultity-node/0.9.3', network: 'testnet' }) ?? '', /below the network's minimum/);
  assert.match(participationProblem(rules, { agentVersion: 'custom-build', network: 'testnet' }) ?? '', /below/);
  assert.equal(participationProblem({ networks: ['mainnet', 'testnet'], minAgentVersion: null }, { agentVersion: 'anything', network: 'mainnet' }), null);
  assert.equal(compareDottedVersions('1.10', '1.9'), 1);
  assert.equal(compareDottedVersions('1.0', '1'), 0);
  assert.equal(compareDottedVersions('0.1.0', '0.2'), -1);
});

// ---- the agent's keeper against a fake /io/config ------------------------------------------------

/** Serves whatever `body` holds at the moment (a status of its own when `status` is set). */
async function fakeGateway(): Promise<{ url: string; serve: (body: unknown, status?: number) => void; hits: () => number; close: () => Promise<void>; server: Server }> {
  let body: unknown = null;
  let status = 200;
  let hits = 0;
  const server = createServer((req, res) => {
    hits++;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/io/config`,
    serve: (b, s = 200) => {
      body = b;
      status = s;
    },
    hits: () => hits,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    server,
  };
}

const silent = pino({ level: 'silent' });
const ref = (c: { version: number; digest: string }) => ({ version: c.version, digest: c.digest });

void test('keeper: adopts a genuine config, refuses tampered ones and keeps the last good, survives an unreachable network', async () => {
  const gw = await fakeGateway();
  const adopted: number[] = [];
  const keeper = new NetworkConfigKeeper({ url: gw.url, logger: silent, onAdopt: (c) => adopted.push(c.version) });
  try {
    const v1 = signNetworkConfig(KEY, doc(1));
    gw.serve(v1);
    assert.equal(await keeper.follow(ref(v1), NETWORK), 'adopted');
    assert.equal(keeper.digest, v1.digest);
    assert.equal(await keeper.follow(ref(v1), NETWORK), 'current', 'no fetch when the digest matches');
    assert.equal(gw.hits(), 1);

    const v2 = signNetworkConfig(KEY, doc(2, { previousDigest: v1.digest }));
    // Tampered document under v2's digest and signature.
    gw.serve({ ...v2, document: { ...v2.document, jobs: { ...v2.document.jobs, maxAttempts: 1 } } });
    assert.equal(await keeper.follow(ref(v2), NETWORK), 'kept');
    assert.match(keeper.lastProblem ?? '', /digest mismatch/);
    assert.equal(keeper.digest, v1.digest);
    // Signed by someone else.
    const forged = signNetworkConfig(generatePrivateKey(), doc(2));
    gw.serve(forged);
    assert.equal(await keeper.follow(ref(forged), NETWORK), 'kept');
    assert.match(keeper.lastProblem ?? '', /not signed by the network key/);
    // The gateway answers an error, then is gone altogether.
    gw.serve({ error: 'down' }, 503);
    assert.equal(await keeper.follow(ref(v2), NETWORK), 'kept');
    assert.match(keeper.lastProblem ?? '', /503/);
    await gw.close();
    assert.equal(await keeper.follow(ref(v2), NETWORK), 'kept');
    assert.match(keeper.lastProblem ?? '', /failed/);
    assert.equal(keeper.digest, v1.digest, 'the last good config is kept through every failure');
    assert.deepEqual(adopted, [1]);
  } finally {
    gw.server.closeAllConnections();
    if (gw.server.listening) await gw.close();
  }
});

void test('keeper: refuses a rollback to an older genuinely signed version', async () => {
  const gw = await fakeGateway();
  const keeper = new NetworkConfigKeeper({ url: gw.url, logger: silent });
  try {
    const v1 = signNetworkConfig(KEY, doc(1));
    const v2 = signNetworkConfig(KEY, doc(2, { previousDigest: v1.digest }));
    gw.serve(v2);
    assert.equal(await keeper.follow(ref(v2), NETWORK), 'adopted');
    gw.serve(v1);
    assert.equal(await keeper.follow(ref(v1), NETWORK), 'kept');
    assert.match(keeper.lastProblem ?? '', /older than the version 2/);
    assert.equal(keeper.current?.version, 2);
    // Without a pinned network address nothing can be verified, so nothing is adopted.
    const blind = new NetworkConfigKeeper({ url: gw.url, logger: silent });
    assert.equal(await blind.follow(ref(v1), undefined), 'kept');
    assert.equal(blind.current, null);
  } finally {
    await gw.close();
  }
});

void test('keeper: the last good config is saved to its file and read back, checked, after a restart', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rt-netcfg-'));
  const file = join(dir, 'state', 'network-config.json');
  const gw = await fakeGateway();
  try {
    const v4 = signNetworkConfig(KEY, doc(4));
    gw.serve(v4);
    const first = new NetworkConfigKeeper({ url: gw.url, file, logger: silent });
    assert.equal(await first.follow(ref(v4), NETWORK), 'adopted');
    assert.equal((JSON.parse(await readFile(file, 'utf8')) as { digest: string }).digest, v4.digest);

    // Restarted with the network unreachable: the file is all it has.
    await gw.close();
    const restarted = new NetworkConfigKeeper({ url: gw.url, file, logger: silent });
    await restarted.load();
    assert.equal(restarted.current, null, 'not used before the network address is known');
    restarted.trust(NETWORK);
    assert.equal(restarted.digest, v4.digest);
    assert.equal(await restarted.follow({ version: 5, digest: 'cd'.repeat(32) }, NETWORK), 'kept');
    assert.equal(restarted.digest, v4.digest);

    // A file edited by hand (or for another network) is not trusted.
    const edited = { ...v4, document: { ...v4.document, jobs: { ...v4.document.jobs, maxTokens: 5 } } };
    await writeFile(file, JSON.stringify(edited));
    const suspicious = new NetworkConfigKeeper({ url: gw.url, file, logger: silent });
    await suspicious.load();
    suspicious.trust(NETWORK);
    assert.equal(suspicious.current, null);
  } finally {
    if (gw.server.listening) await gw.close();
    await rm(dir, { recursive: true, force: true });
  }
});
