// Fast tier (docs/testing.md): the quality pass (blind jobs, verdicts, scores) on in-memory fakes of its
// store and collaborators. The same pass on the real engines: test/integration/blind-jobs.test.ts, trust.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { QualityService, type BlindJobIntake, type SystemTenants } from '../../src/network/quality.service.js';
import { loadConfig, type Config } from '../../src/config.js';
import { AppError } from '../../src/errors.js';
import { sha256Hex } from '../../src/domain/signatures.js';
import type { JobRequest } from '../../src/domain/protocol.js';
import type { PayloadDoc } from '../../src/mongo/payloads.repository.js';
import type { FlagChange } from '../../src/network/node-flags.service.js';
import { FakeQualityStore } from '../fakes/quality.store.js';

const MODEL = 'org/model-a';
const REQUEST = { messages: [{ role: 'user', content: 'What is 2+2?' }], max_tokens: 8 } as unknown as JobRequest;
const NODE = '0x' + '1'.repeat(40);

function setUp(overrides: Partial<Config> = {}) {
  const config = { ...loadConfig({}), BLIND_JOB_INTERVAL_MS: 60_000, BLIND_BUDGET_CREDITS: 100, BLIND_COOLDOWN_FAILURES: 2, ...overrides };
  const store = new FakeQualityStore();
  store.addModel(MODEL, 1024);
  const accepted: Array<{ namespaceId: string; model: string }> = [];
  let refuse: Error | null = null;
  const jobs: BlindJobIntake = {
    accept: (principal, models) => {
      if (refuse) return Promise.reject(refuse);
      accepted.push({ namespaceId: principal.namespaceId, model: models[0]! });
      return Promise.resolve({ job: { id: `job-${accepted.length}` } });
    },
  };
  const tenantCalls: string[] = [];
  let namespaces = 0;
  const admin: SystemTenants = {
    createAccount: () => {
      tenantCalls.push('createAccount');
      return Promise.resolve({ id: 'network-account' });
    },
    createNamespace: (accountId, name) => {
      tenantCalls.push(`createNamespace ${name}`);
      const id = `ns-${++namespaces}`;
      store.db.state.namespaces.set(id, accountId);
      return Promise.resolve({ id });
    },
    issueApiKey: (namespaceId) => Promise.resolve({ key: { id: `key-of-${namespaceId}` } }),
    topUp: (namespaceId, credits) => {
      tenantCalls.push(`topUp ${namespaceId} ${credits}`);
      store.db.state.availableMicro.set(namespaceId, (store.db.state.availableMicro.get(namespaceId) ?? 0) + credits * 1_000_000);
      return Promise.resolve();
    },
  };
  const answers = new Map<string, string>();
  const payloads = {
    find: (jobId: string) =>
      Promise.resolve(answers.has(jobId) ? ({ _id: jobId, results: { '1': { output: { content: answers.get(jobId)! } } } } as unknown as PayloadDoc) : null),
  };
  const flagged: Array<{ nodeId: string; change: FlagChange; reason: string }> = [];
  const flags = { set: (nodeId: string, change: FlagChange, reason = '') => (flagged.push({ nodeId, change, reason }), Promise.resolve({} as never)) };
  const mirrored: { scores: Map<string, number> | null; earned: Map<string, number> | null } = { scores: null, earned: null };
  const scores = {
    write: (m: ReadonlyMap<string, number>) => ((mirrored.scores = new Map(m)), Promise.resolve()),
    writeEarned: (m: ReadonlyMap<string, number>) => ((mirrored.earned = new Map(m)), Promise.resolve()),
  };
  const service = new QualityService({ config, store, payloads, jobs, admin, flags, scores, usageSamples: { ofModel: () => Promise.resolve([]) }, logger: pino({ level: 'silent' }) });
  return { config, store, service, accepted, tenantCalls, answers, flagged, mirrored, refuseWith: (e: Error | null) => (refuse = e) };
}

function endedBlindJob(jobId: string, status = 'completed', expected: { sha?: string; contains?: string } = { contains: '4' }, endedMsAgo = 120_000) {
  return { job_id: jobId, namespace_id: 'ns-1', status, attempt: 1, node_id: NODE, expected_sha256: expected.sha ?? null, expected_contains: expected.contains ?? null, ended_ms_ago: endedMsAgo };
}

test('a probe must name a known model and fit its context; a retired probe is gone from the active ones', async () => {
  const { store, service } = setUp();
  await assert.rejects(service.addProbe({ model: 'org/nope', request: REQUEST, expected_contains: '4' }), (e: unknown) => e instanceof AppError && e.code === 'not_found');
  await assert.rejects(service.addProbe({ model: MODEL, request: { ...REQUEST, max_tokens: 2048 }, expected_contains: '4' }), /exceeds the model's context of 1024/);
  const probe = await service.addProbe({ model: MODEL, request: REQUEST, expected_contains: '4' });
  assert.equal(store.db.state.probes.length, 1);
  await service.retireProbe(probe.id);
  assert.deepEqual(await store.listBlindProbes(true), []);
  await assert.rejects(service.retireProbe(probe.id), (e: unknown) => e instanceof AppError && e.code === 'not_found');
});

test('when another instance holds the lock the pass does nothing', async () => {
  const { store, service, accepted } = setUp();
  await service.addProbe({ model: MODEL, request: REQUEST, expected_contains: '4' });
  store.lockedElsewhere = true;
  assert.equal(await service.pass(), false);
  assert.equal(accepted.length, 0);
  assert.equal(store.db.calls.includes('listEndedUnevaluated'), false);
});

test('blind jobs go out once per interval, one per model and network, from one network account funded to its budget', async () => {
  const { store, service, accepted, tenantCalls } = setUp();
  await service.addProbe({ model: MODEL, request: REQUEST, expected_contains: '4' });
  assert.equal(await service.pass(), true);
  assert.deepEqual(accepted.map((a) => a.model), [MODEL, MODEL], 'one per network (mainnet, testnet)');
  assert.notEqual(accepted[0]!.namespaceId, accepted[1]!.namespaceId, 'each network has its own namespace');
  assert.equal(tenantCalls.filter((c) => c === 'createAccount').length, 1, 'one network account owns both');
  assert.deepEqual(tenantCalls.filter((c) => c.startsWith('topUp')), ['topUp ns-1 100', 'topUp ns-2 100']);
  assert.equal(store.db.state.blindJobs.size, 2);
  await service.pass();
  assert.equal(accepted.length, 2, 'not due again within the interval');
});

test('the budget is topped up only when below half', async () => {
  const { store, service, tenantCalls } = setUp({ BLIND_JOB_INTERVAL_MS: 1 });
  await service.addProbe({ model: MODEL, request: REQUEST, expected_contains: '4' });
  await service.pass();
  store.db.state.availableMicro.set('ns-1', 60_000_000);
  store.db.state.availableMicro.set('ns-2', 40_000_000);
  await service.pass(new Date(Date.now() + 1_000));
  assert.deepEqual(tenantCalls.filter((c) => c.startsWith('topUp')), ['topUp ns-1 100', 'topUp ns-2 100', 'topUp ns-2 60']);
});

test('a refused blind job (no node, no budget) is skipped, not recorded, and tried at the next interval', async () => {
  const { store, service, refuseWith } = setUp();
  await service.addProbe({ model: MODEL, request: REQUEST, expected_contains: '4' });
  refuseWith(new Error('no node online'));
  assert.equal(await service.pass(), true);
  assert.equal(store.db.state.blindJobs.size, 0);
});

test('verdicts: a right answer passes, a wrong or missing one is named, and two failures in a row bench the node', async () => {
  const { config, store, service, answers, flagged } = setUp({ BLIND_JOB_INTERVAL_MS: 0 });
  answers.set('b1', 'It is 4.');
  answers.set('b2', 'It is five.');
  answers.set('b4', 'something else');
  store.db.state.ended.push(
    endedBlindJob('b1'),
    endedBlindJob('b2', 'completed', { sha: sha256Hex('4') }),
    endedBlindJob('b3', 'completed'),
    endedBlindJob('b5', 'failed'),
  );
  await service.pass();
  const v = store.db.state.verdicts;
  assert.deepEqual([v.get('b1')!.passed, v.get('b1')!.detail], [true, 'ok']);
  assert.deepEqual([v.get('b2')!.passed, v.get('b2')!.detail], [false, 'fingerprint mismatch']);
  assert.deepEqual([v.get('b3')!.passed, v.get('b3')!.detail], [null, 'the answer expired before it was judged']);
  assert.deepEqual([v.get('b5')!.passed, v.get('b5')!.detail], [null, 'the job ended failed without an answer']);
  assert.equal(flagged.length, 0, 'one failure after a pass is not a streak');
  store.db.state.ended.push(endedBlindJob('b4'));
  await service.pass();
  assert.deepEqual(flagged.map((f) => [f.nodeId, f.change.cooldownSeconds]), [[NODE, config.NODE_COOLDOWN_SECONDS]]);
  assert.match(flagged[0]!.reason, /2 blind jobs failed in a row \(expected answer missing\)/);
});

test('a completed job whose answer is not stored yet waits for a later pass, within the grace only', async () => {
  const { store, service, answers } = setUp({ BLIND_JOB_INTERVAL_MS: 0 });
  store.db.state.ended.push(endedBlindJob('b1', 'completed', undefined, 50), endedBlindJob('b2', 'failed', undefined, 50));
  await service.pass();
  assert.equal(store.db.state.verdicts.has('b1'), false, 'no verdict while the answer may be on its way');
  assert.equal(store.db.state.verdicts.get('b2')!.detail, 'the job ended failed without an answer');
  answers.set('b1', 'It is 4.');
  await service.pass();
  assert.deepEqual([store.db.state.verdicts.get('b1')!.passed, store.db.state.verdicts.get('b1')!.detail], [true, 'ok']);
});

test('a verdict recorded by another pass is not judged twice', async () => {
  const { store, service, answers, flagged } = setUp({ BLIND_JOB_INTERVAL_MS: 0 });
  answers.set('b1', 'wrong');
  store.db.state.ended.push(endedBlindJob('b1'));
  store.db.state.verdicts.set('b0', { nodeId: NODE, passed: false, detail: 'earlier' });
  store.db.failNext('recordBlindVerdict', new Error('gone'));
  await assert.rejects(service.pass(), /gone/);
  assert.equal(flagged.length, 0, 'no cooldown from a verdict that was not recorded');
  store.db.state.verdicts.set('b1', { nodeId: NODE, passed: true, detail: 'judged elsewhere' });
  await service.pass();
  assert.equal(flagged.length, 0);
  assert.equal(store.db.state.verdicts.get('b1')!.detail, 'judged elsewhere');
});

test('scores: every node of the window is scored and stored, the mirror gets the whole table and the earned counts', async () => {
  const { store, service, mirrored } = setUp({ BLIND_JOB_INTERVAL_MS: 0 });
  const other = '0x' + '2'.repeat(40);
  store.db.state.scores.set('0xold', { node_id: '0xold', score: 0.5, success_rate: 0.5, latency_factor: 1, blind_accuracy: 1, usage_factor: 1, attempts: 1, blind_jobs: 0, updated_at: new Date() });
  store.db.state.attemptStats = [
    { node_id: NODE, model: MODEL, completed: 98, failed: 2, latency_ms: 100 },
    { node_id: other, model: MODEL, completed: 50, failed: 50, latency_ms: 100 },
  ];
  store.db.state.blindStats = [{ node_id: other, passed: 0, evaluated: 4 }];
  await service.pass();
  const good = store.db.state.scores.get(NODE)!;
  const bad = store.db.state.scores.get(other)!;
  assert.equal(good.attempts, 100);
  assert.equal(bad.blind_jobs, 4);
  assert.ok(good.score > bad.score, `a node that succeeds and passes blind jobs scores higher (${good.score} vs ${bad.score})`);
  assert.deepEqual([...mirrored.scores!.keys()].sort(), ['0xold', NODE, other].sort(), 'the whole table, not just the window');
  assert.deepEqual(Object.fromEntries(mirrored.earned!), { [NODE]: 98, [other]: 50 });
});
