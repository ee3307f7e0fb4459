// Fast tier (docs/testing.md): QuarantineService on an in-memory fake of its store. The same service on
// the real engines: test/integration/quarantine.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QuarantineService, type Resubmit } from '../../src/gate/quarantine.service.js';
import { AppError } from '../../src/errors.js';
import type { JobRequest } from '../../src/domain/protocol.js';
import type { JobRow } from '../../src/postgres/jobs.repository.js';
import { FakeQuarantineStore } from '../fakes/quarantine.store.js';

const INPUT = { messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 } as unknown as JobRequest;

function setUp() {
  const store = new FakeQuarantineStore();
  const inputs = new Map<string, JobRequest>();
  const resubmitted: Array<Parameters<Resubmit>> = [];
  let refuse: Error | null = null;
  const resubmit: Resubmit = (...args) => {
    if (refuse) return Promise.reject(refuse);
    resubmitted.push(args);
    return Promise.resolve({ id: `fresh-${resubmitted.length}` } as JobRow);
  };
  const service = new QuarantineService({ store, payloads: { findInput: (id: string) => Promise.resolve(inputs.get(id) ?? null) }, resubmit });
  return { store, inputs, resubmitted, service, refuseWith: (e: Error) => (refuse = e) };
}

const code = (c: string) => (e: unknown) => e instanceof AppError && e.code === c;

test('a re-queue submits the same input on the same key, region and priority, and resolves the entry once', async () => {
  const { store, inputs, resubmitted, service } = setUp();
  store.quarantine({ id: 'job-1', api_key_id: 'key-1', region: 'eu', priority: 'bulk' }, { rate_limit_rps: 5, monthly_cap_micro: 7 });
  inputs.set('job-1', INPUT);
  const fresh = await service.requeue('job-1');
  assert.equal(fresh.id, 'fresh-1');
  const [principal, model, request, asked] = resubmitted[0]!;
  assert.deepEqual([principal.keyId, principal.namespaceId, principal.rateLimitRps, principal.monthlyCapMicro], ['key-1', 'ns-1', 5, 7]);
  assert.deepEqual([model, request, asked], ['org/m', INPUT, { region: 'eu', priority: 'bulk' }]);
  assert.deepEqual([store.db.state.entries.get('job-1')!.resolution, store.db.state.entries.get('job-1')!.requeuedJobId], ['requeued', 'fresh-1']);
  await assert.rejects(service.requeue('job-1'), code('not_found'), 'resolved: not re-queued twice');
  assert.equal(resubmitted.length, 1);
  assert.deepEqual(await service.list(), []);
});

test('an expired input or a key no longer active is a conflict, and the entry stays open', async () => {
  const { store, inputs, service, resubmitted } = setUp();
  store.quarantine({ id: 'no-input', api_key_id: 'k1' });
  await assert.rejects(service.requeue('no-input'), /input has expired/);
  store.quarantine({ id: 'revoked', api_key_id: 'k2' }, { revoked_at: new Date() });
  store.quarantine({ id: 'expired', api_key_id: 'k3' }, { expires_at: new Date(Date.now() - 1) });
  inputs.set('revoked', INPUT).set('expired', INPUT);
  await assert.rejects(service.requeue('revoked'), /no longer active/);
  await assert.rejects(service.requeue('expired'), /no longer active/);
  assert.equal(resubmitted.length, 0);
  assert.deepEqual((await service.list()).map((e) => e.job_id).sort(), ['expired', 'no-input', 'revoked']);
});

test('a refused resubmission (no credits) leaves the entry open', async () => {
  const { store, inputs, service, refuseWith } = setUp();
  store.quarantine({ id: 'job-1', api_key_id: 'k1' });
  inputs.set('job-1', INPUT);
  refuseWith(new Error('insufficient credits'));
  await assert.rejects(service.requeue('job-1'), /insufficient credits/);
  assert.equal(store.db.state.entries.get('job-1')!.resolution, null);
});

test('discard resolves an open entry once; the list is bounded to 1..1000', async () => {
  const { store, service } = setUp();
  store.quarantine({ id: 'job-1', api_key_id: 'k1' });
  store.quarantine({ id: 'job-2', api_key_id: 'k2' });
  await service.discard('job-1');
  await assert.rejects(service.discard('job-1'), code('not_found'));
  assert.deepEqual((await service.list(0)).map((e) => e.job_id), ['job-2'], 'a limit below 1 lists one');
  assert.equal(store.db.state.entries.get('job-1')!.resolution, 'discarded');
});
