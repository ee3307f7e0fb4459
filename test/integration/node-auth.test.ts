// Invariant 6 on the real engines: every node message is authenticated. The test speaks the node
// protocol itself (a bare WebSocket, see RawNode in helpers/stack.ts) to send what an honest agent never
// would: registrations signed by the wrong key or for the wrong challenge, replayed, stale and tampered
// heartbeats, forged results over HTTP, and a result whose output does not match its hash. Honest
// simulated nodes (stack.node) run alongside, and every job still ends once, on an honest node, charged once.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { balanceOf } from '../../src/postgres/ledger.repository.js';
import { TestStack, TEST_MODEL, type RawNode, type Tenant } from '../helpers/stack.js';
import { addressOf, generatePrivateKey, signMessage, verifyMessage } from '../../src/domain/signatures.js';
import { outputHash, type JobOutput } from '../../src/domain/protocol.js';
import { simulatedPromptTokens } from '../../src/node-agent/runtime.simulated.js';

let stack: TestStack;
let tenant: Tenant;
const raws: RawNode[] = [];

before(async () => {
  stack = await TestStack.start();
  await stack.model();
  tenant = await stack.tenant(10);
});

after(async () => {
  await Promise.all(raws.map((r) => r.close()));
  await stack.close();
});

const check = (fn: () => Promise<void>) => stack.check(fn);

async function raw(privateKey?: string, operator?: string | null): Promise<RawNode> {
  const node = await stack.rawNode(privateKey, operator);
  raws.push(node);
  return node;
}

const messages = [{ role: 'user' as const, content: 'What is the capital of France?' }];

async function submitAsync(model: string): Promise<string> {
  const res = await fetch(`${stack.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json', prefer: 'respond-async' },
    body: JSON.stringify({ model, messages, max_tokens: 50 }),
  });
  assert.equal(res.status, 202, await res.clone().text());
  return ((await res.json()) as { id: string }).id;
}

async function postResult(body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${stack.url}/io/results`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function nodeRow(id: string): Promise<{ id: string; operator_account_id: string } | undefined> {
  return (await stack.db.query<{ id: string; operator_account_id: string }>(`SELECT id, operator_account_id FROM nodes WHERE id = $1`, [id])).rows[0];
}

async function captures(jobId: string): Promise<number> {
  const r = await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ledger_transactions WHERE job_id = $1 AND kind = 'capture'`, [jobId]);
  return r.rows[0]!.n;
}

async function attempts(jobId: string) {
  const r = await stack.db.query<{ attempt: number; node_id: string; outcome: string | null; reason: string | null }>(
    `SELECT attempt, node_id, outcome, reason FROM job_attempts WHERE job_id = $1 ORDER BY attempt`,
    [jobId],
  );
  return r.rows;
}

function untilStatus(jobId: string, status: string, timeoutMs = 20_000) {
  return stack.until(`job ${jobId} to be ${status}`, async () => {
    const j = await stack.job(jobId);
    return j?.status === status ? j : undefined;
  }, timeoutMs);
}

test('registration is refused when signed by another key, for another challenge, or naming an unknown operator', () =>
  check(async () => {
    const operator = await stack.operator();

    // The node claims key A's address but signs with key B. (Not enrolled, so that no row exists but a binding's.)
    const impostor = await raw(undefined, null);
    const other = generatePrivateKey();
    impostor.send(signMessage(other, { ...impostor.register(operator), signature: undefined }));
    const e1 = await impostor.next('error');
    assert.equal(e1.code, 'bad_signature');
    assert.equal((await impostor.waitClosed()).code, 4003);
    assert.equal(await nodeRow(impostor.nodeId), undefined, 'a refused node must not be recorded');

    // Signed by the right key, but over a challenge this socket was not given.
    const wrong = await raw();
    wrong.send(wrong.register(operator, { challenge: 'f'.repeat(64) }));
    assert.equal((await wrong.next('error')).code, 'bad_challenge');
    assert.equal((await wrong.waitClosed()).code, 4003);

    // A registration captured on one socket, replayed on another (whose challenge differs).
    const key = generatePrivateKey();
    const first = await raw(key, null);
    const captured = first.register(operator);
    const second = await raw(key, null);
    assert.notEqual(first.challenge, second.challenge);
    second.send(captured);
    assert.equal((await second.next('error')).code, 'bad_challenge');
    assert.equal((await second.waitClosed()).code, 4003);
    assert.equal(await nodeRow(first.nodeId), undefined);
    await first.close();

    // A timestamp outside the accepted window.
    const late = await raw();
    late.send(late.register(operator, { ts: Date.now() - stack.config.NODE_MESSAGE_MAX_SKEW_MS - 10_000 }));
    assert.equal((await late.next('error')).code, 'stale');
    await late.waitClosed();

    // Correctly signed, naming an operator account that does not exist (so cannot have enrolled it).
    const orphan = await raw(undefined, null);
    orphan.send(orphan.register(randomUUID()));
    assert.equal((await orphan.next('error')).code, 'not_enrolled');
    assert.equal((await orphan.waitClosed()).code, 4003);
    assert.equal(await nodeRow(orphan.nodeId), undefined);

    // Anything before registration is refused too.
    const eager = await raw();
    eager.send(eager.heartbeat());
    assert.equal((await eager.next('error')).code, 'not_registered');
    await eager.close();

    // And the honest path works on the same gateway.
    const good = await raw();
    await good.registerAs(operator);
    assert.ok(await nodeRow(good.nodeId));
    await good.close();

    // A node bound to one operator cannot re-register under another (existing) account.
    const other2 = (await stack.backbone.admin.accounts.createAccount('another operator')).id;
    const rebind = await raw(good.privateKey);
    rebind.send(rebind.register(other2));
    assert.equal((await rebind.next('error')).code, 'bound_to_other_operator');
    assert.equal((await rebind.waitClosed()).code, 4003);
    const owner = await stack.db.query<{ operator_account_id: string }>(`SELECT operator_account_id FROM nodes WHERE id = $1`, [good.nodeId]);
    assert.equal(owner.rows[0]?.operator_account_id, operator);
  }));

test('a node binds to an operator only with its consent: enrolled through the account API, or holding a token made for its address (issue 9, item 5)', () =>
  check(async () => {
    // An operator signs up; a node names it without its consent: refused, with a reason it can act on.
    const signup = await fetch(`${stack.url}/account/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: `op-${randomUUID()}@example.com`, password: 'correct horse battery' }),
    });
    const { account, token: session } = (await signup.json()) as { account: { id: string }; token: string };
    const asOperator = (path: string, body: unknown) =>
      fetch(`${stack.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${session}` }, body: JSON.stringify(body) });

    const squatter = await raw(undefined, null);
    squatter.send(squatter.register(account.id));
    const refused = await squatter.next('error');
    assert.equal(refused.code, 'not_enrolled');
    assert.match(String(refused.message), /not enrolled by operator .*enrol/);
    assert.equal((await squatter.waitClosed()).code, 4003);
    assert.equal(await nodeRow(squatter.nodeId), undefined, 'an unenrolled node must not be bound');

    // The operator enrols the address (any case): the same node now registers, bound to it.
    const enrolled = await asOperator('/account/nodes/enrolments', { node: squatter.nodeId.toUpperCase().replace('0X', '0x') });
    assert.equal(enrolled.status, 201);
    const again = await raw(squatter.privateKey, null);
    await again.registerAs(account.id);
    assert.equal((await nodeRow(again.nodeId))?.operator_account_id, account.id);
    await again.close();

    // Another operator cannot enrol a node already enrolled.
    const other = (await stack.backbone.admin.accounts.createAccount('other operator')).id;
    await assert.rejects(stack.enrolled(again.nodeId, other), /enrolled by another operator/);

    // A token made for one address binds that node, and no other; a token for another operator or a forged one does not.
    const keyed = generatePrivateKey();
    const issued = await asOperator('/account/nodes/enrolment-tokens', { node: addressOf(keyed), ttl_hours: 1 });
    assert.equal(issued.status, 201);
    const { token } = (await issued.json()) as { token: string };
    const thief = await raw(undefined, null);
    thief.send(thief.register(account.id, { enrolmentToken: token }));
    assert.match(String((await thief.next('error')).message), /another node address/);
    const holder = await raw(keyed, null);
    await holder.registerAs(account.id, { enrolmentToken: token });
    assert.equal((await nodeRow(holder.nodeId))?.operator_account_id, account.id);
    await holder.close();
    const wrongOperator = await raw(keyed, null);
    wrongOperator.send(wrongOperator.register(other, { enrolmentToken: token }));
    assert.match(String((await wrongOperator.next('error')).message), /another operator/);
    const forged = await raw(undefined, null);
    forged.send(forged.register(account.id, { enrolmentToken: `ret1.${Buffer.from(JSON.stringify({ type: 'node_enrolment', node: forged.nodeId, operator: account.id, expiresAt: Date.now() + 60_000, signature: '0x' + '1'.repeat(130) })).toString('base64url')}` }));
    assert.match(String((await forged.next('error')).message), /not signed by this network/);
  }));

test('a register frame sent twice on one socket registers the node once, and a closed socket leaves no presence behind', () =>
  check(async () => {
    const node = await raw();
    const reg = node.register(await stack.operator(), { models: ['test/never-used'] });
    // Back to back, before the gateway answered the first (an impatient or buggy agent, or a replay).
    node.send(reg);
    node.send(reg);
    await node.next('registered');
    const second = await stack.until('the second register to be answered or the socket closed', async () =>
      node.closed ? 'closed' : node.pending().length > 0 ? 'answered' : undefined,
    );
    if (second === 'closed') {
      // Closing is acceptable; leaving the node online without a socket is not: jobs would be sent to nobody.
      assert.deepEqual(await stack.presence(node.nodeId), {}, `socket closed (${JSON.stringify(node.closed)}) but the node is still present in Redis`);
    } else {
      assert.deepEqual(node.pending().map((f) => [f.type, f.code]), [['error', 'already_registered']]);
      assert.notDeepEqual(await stack.presence(node.nodeId), {});
    }
    await node.close();
    await stack.until('the presence to be removed after the socket closed', async () =>
      Object.keys(await stack.presence(node.nodeId)).length === 0 ? true : undefined,
    3_000).catch(async () => assert.fail(`presence left after close: ${JSON.stringify(await stack.presence(node.nodeId))}`));
  }));

test('heartbeats: a replayed frame, a stale timestamp and a tampered field are refused', () =>
  check(async () => {
    const node = await raw();
    await node.registerAs(await stack.operator(), { capacity: 2 });

    const hb = node.heartbeat({ capacity: 2 });
    node.send(hb);
    await node.next('heartbeat_ack');

    // The exact same signed frame again.
    node.send(hb);
    const replay = await node.next((f) => f.type === 'error' || f.type === 'heartbeat_ack');
    assert.deepEqual({ type: replay.type, code: replay.code }, { type: 'error', code: 'replay' });

    // Properly signed, but older than the accepted skew (and, separately, too far in the future).
    node.send(node.heartbeat({ capacity: 2, ts: Date.now() - stack.config.NODE_MESSAGE_MAX_SKEW_MS - 5_000 }));
    const stale = await node.next((f) => f.type === 'error' || f.type === 'heartbeat_ack');
    assert.deepEqual({ type: stale.type, code: stale.code }, { type: 'error', code: 'stale' });
    node.send(node.heartbeat({ capacity: 2, ts: Date.now() + stack.config.NODE_MESSAGE_MAX_SKEW_MS + 5_000 }));
    const future = await node.next((f) => f.type === 'error' || f.type === 'heartbeat_ack');
    assert.deepEqual({ type: future.type, code: future.code }, { type: 'error', code: 'stale' });

    // Signed, then a field changed: the signature no longer covers the message.
    const tampered = { ...node.heartbeat({ capacity: 2 }), capacity: 1000, models: [{ name: TEST_MODEL, version: '1' }] };
    node.send(tampered);
    const badCapacity = await node.next((f) => f.type === 'error' || f.type === 'heartbeat_ack');
    assert.deepEqual({ type: badCapacity.type, code: badCapacity.code }, { type: 'error', code: 'bad_signature' });
    // The eligibility declaration is signed too: a bigger GPU or another network cannot be slipped in.
    const promoted = { ...node.heartbeat({ capacity: 2 }), gpu: { name: 'h100', memoryMb: 81_920 }, network: 'testnet' };
    node.send(promoted);
    const badGpu = await node.next((f) => f.type === 'error' || f.type === 'heartbeat_ack');
    assert.deepEqual({ type: badGpu.type, code: badGpu.code }, { type: 'error', code: 'bad_signature' });
    // Out of bounds, signed or not: refused by the schema before anything else.
    node.send(node.heartbeat({ capacity: 2, region: 'EU WEST!', gpu: { name: 'x', memoryMb: -1 } }));
    const bad = await node.next((f) => f.type === 'error' || f.type === 'heartbeat_ack');
    assert.deepEqual({ type: bad.type, code: bad.code }, { type: 'error', code: 'invalid_message' });
    const presence = await stack.presence(node.nodeId);
    assert.equal(presence.capacity, '2', 'a tampered heartbeat must not change the presence');
    assert.equal(presence.models, '');
    assert.equal(presence.gpu_mem, '0');
    assert.equal(presence.network, 'mainnet');

    // A heartbeat claiming another node id on this socket.
    node.send(signMessage(generatePrivateKey(), { ...node.heartbeat(), nodeId: addressOf(generatePrivateKey()), signature: undefined }));
    assert.equal((await node.next('error')).code, 'wrong_node');

    // None of that closed the socket: the next honest heartbeat is acknowledged.
    node.send(node.heartbeat({ capacity: 2 }));
    await node.next('heartbeat_ack');
    assert.equal(node.closed, null);
    assert.deepEqual(node.pending(), []);
    await node.close();
  }));

test('a forged result over HTTP is refused (401 bad signature, 409 not dispatched to the signer); the honest result wins, charged once', () =>
  check(async () => {
    await stack.node({ latencyMs: 1500 });
    const before = await stack.balance(tenant.namespaceId);
    const jobId = await submitAsync(TEST_MODEL);
    const running = await untilStatus(jobId, 'running', 10_000);
    const honestId = running.node_id!;
    const attacker = generatePrivateKey();
    const forgedOutput: JobOutput = { content: 'forged answer', finish_reason: 'stop' };
    const result = {
      type: 'result' as const,
      jobId,
      attempt: running.attempt,
      ts: Date.now(),
      output: forgedOutput,
      outputHash: outputHash(forgedOutput),
      usage: { prompt_tokens: 1, completion_tokens: 5000 },
    };

    // Claims the honest node's id, signed by another key.
    const impersonation = await postResult(signMessage(attacker, { ...result, nodeId: honestId }));
    assert.equal(impersonation.status, 401);
    assert.equal((impersonation.body.error as { code: string }).code, 'bad_signature');
    // The honest node's id with a signature copied from another message.
    const copied = signMessage(attacker, { ...result, nodeId: addressOf(attacker) });
    assert.equal((await postResult({ ...copied, nodeId: honestId })).status, 401);

    // Honestly signed by the attacker's own key, for a job that was not dispatched to it.
    const own = await postResult(signMessage(attacker, { ...result, nodeId: addressOf(attacker) }));
    assert.equal(own.status, 409);
    assert.deepEqual(own.body, { accepted: false, reason: 'stale_attempt' });

    // Nor can an attacker fail the honest attempt with a job_error.
    const jobError = { type: 'job_error' as const, jobId, attempt: running.attempt, ts: Date.now(), message: 'give up' };
    assert.equal((await postResult(signMessage(attacker, { ...jobError, nodeId: honestId }))).status, 401);
    assert.equal((await postResult(signMessage(attacker, { ...jobError, nodeId: addressOf(attacker) }))).status, 409);
    // Malformed messages are a 400, not a 500.
    assert.equal((await postResult({ ...result, nodeId: honestId })).status, 400);

    const done = await untilStatus(jobId, 'completed');
    assert.equal(done.node_id, honestId);
    assert.equal(done.attempt, 1);
    const view = (await (await fetch(`${stack.url}/v1/jobs/${jobId}`, { headers: { authorization: `Bearer ${tenant.apiKey}` } })).json()) as {
      result: { choices: Array<{ message: { content: string } }>; usage: { prompt_tokens: number; completion_tokens: number } };
    };
    assert.match(view.result.choices[0]!.message.content, /^simulated answer/);
    assert.deepEqual(
      { prompt: view.result.usage.prompt_tokens, completion: view.result.usage.completion_tokens },
      { prompt: simulatedPromptTokens(messages), completion: 16 },
    );
    assert.deepEqual(
      (await attempts(jobId)).map((a) => [a.attempt, a.node_id, a.outcome]),
      [[1, honestId, 'completed']],
    );
    assert.equal(await captures(jobId), 1);
    const expected = simulatedPromptTokens(messages) * 10 + 16 * 20;
    assert.equal(done.charged_micro, expected);
    const after = await stack.balance(tenant.namespaceId);
    assert.equal(before.available - after.available, expected);
    assert.equal(after.held, 0);

    // Once the job is done, a result for it is still refused and nothing is charged twice.
    assert.equal((await postResult(signMessage(attacker, { ...result, nodeId: addressOf(attacker) }))).status, 409);
    assert.equal(await captures(jobId), 1);
  }));

test('a raw node checks the network signature on its job; a result whose hash does not match its output fails the attempt (invalid_result) and the job completes elsewhere', () =>
  check(async () => {
    const model = 'test/raw-hash';
    await stack.model(model);
    const rawOperator = (await stack.backbone.admin.accounts.createAccount('raw operator')).id;
    const node = await raw(undefined, rawOperator);
    await node.registerAs(rawOperator, { models: [model], capacity: 1 });
    const jobId = await submitAsync(model);

    const frame = await node.next('job', 15_000);
    assert.equal(frame.jobId, jobId);
    assert.equal(frame.attempt, 1);
    assert.equal(frame.model, model);
    assert.ok(verifyMessage(frame as Parameters<typeof verifyMessage>[0], node.network), 'the job must be signed by the network key');
    assert.ok(!verifyMessage({ ...(frame as Parameters<typeof verifyMessage>[0]), attempt: 2 }, node.network));
    assert.equal(node.network, addressOf(stack.config.NETWORK_SIGNING_KEY!));
    // The node learns what to run and nothing about who asked.
    assert.deepEqual(Object.keys(frame).sort(), ['attempt', 'deadline', 'jobId', 'model', 'request', 'signature', 'ts', 'type']);
    assert.deepEqual((frame.request as { messages: unknown }).messages, messages);

    // An honest node joins before the raw node answers, so the retry has somewhere to go.
    const honest = await stack.node({ models: [model] });

    const claimed: JobOutput = { content: 'what the hash covers', finish_reason: 'stop' };
    const bad = signMessage(node.privateKey, {
      type: 'result' as const,
      nodeId: node.nodeId,
      jobId,
      attempt: 1,
      ts: Date.now(),
      output: { content: 'something else entirely', finish_reason: 'stop' as const },
      outputHash: outputHash(claimed),
      usage: { prompt_tokens: 10, completion_tokens: 10 },
    });
    node.send(bad);
    const ack = await node.next('result_ack');
    assert.deepEqual(ack, { type: 'result_ack', jobId, attempt: 1, accepted: false, reason: 'output_hash_mismatch' });

    const done = await untilStatus(jobId, 'completed');
    assert.equal(done.node_id, honest.nodeId);
    assert.equal(done.attempt, 2);
    const rows = await attempts(jobId);
    assert.deepEqual(
      rows.map((a) => [a.attempt, a.node_id, a.outcome]),
      [
        [1, node.nodeId, 'invalid_result'],
        [2, honest.nodeId, 'completed'],
      ],
    );
    assert.equal(rows[0]!.reason, 'output_hash_mismatch');
    assert.equal(await captures(jobId), 1);

    // A late, now well-formed result for the failed attempt is stale; the raw node's operator earned nothing.
    const good: JobOutput = { content: 'late but valid', finish_reason: 'stop' };
    node.send(signMessage(node.privateKey, { ...bad, output: good, outputHash: outputHash(good), ts: Date.now(), signature: undefined }));
    assert.deepEqual(await node.next('result_ack'), { type: 'result_ack', jobId, attempt: 1, accepted: false, reason: 'stale_attempt' });
    assert.equal(await captures(jobId), 1);
    assert.equal(await balanceOf(stack.db, 'operator_earnings', rawOperator), 0);
    await node.close();
  }));

/** Sends a correctly signed and hashed result frame from a raw node. */
function sendResult(node: RawNode, jobId: string, attempt: number, output: JobOutput, usage: { prompt_tokens: number; completion_tokens: number }): void {
  node.send(signMessage(node.privateKey, { type: 'result' as const, nodeId: node.nodeId, jobId, attempt, ts: Date.now(), output, outputHash: outputHash(output), usage }));
}

test('usage beyond what the request allowed is an invalid result, not a bigger bill; the job completes elsewhere', () =>
  check(async () => {
    const model = 'test/raw-usage';
    await stack.model(model);
    const greedy = (await stack.backbone.admin.accounts.createAccount('greedy operator')).id;
    const node = await raw(undefined, greedy);
    await node.registerAs(greedy, { models: [model], capacity: 1 });
    const jobId = await submitAsync(model);
    const frame = await node.next('job', 15_000);
    const honest = await stack.node({ models: [model] });
    const output: JobOutput = { content: 'a very long answer, supposedly', finish_reason: 'length' };
    sendResult(node, jobId, frame.attempt as number, output, { prompt_tokens: 10, completion_tokens: 51 }); // max_tokens was 50
    assert.deepEqual(await node.next('result_ack'), { type: 'result_ack', jobId, attempt: 1, accepted: false, reason: 'usage_out_of_bounds' });
    const done = await untilStatus(jobId, 'completed');
    assert.equal(done.node_id, honest.nodeId);
    const rows = await attempts(jobId);
    assert.deepEqual(rows.map((a) => [a.attempt, a.outcome]), [
      [1, 'invalid_result'],
      [2, 'completed'],
    ]);
    assert.equal(await captures(jobId), 1);
    await node.close();
  }));

test('an empty output completes the job and is not charged', () =>
  check(async () => {
    const model = 'test/raw-empty';
    await stack.model(model);
    const node = await raw();
    await node.registerAs(await stack.operator(), { models: [model], capacity: 1 });
    const before = await stack.balance(tenant.namespaceId);
    const jobId = await submitAsync(model);
    const frame = await node.next('job', 15_000);
    const output: JobOutput = { content: '', finish_reason: 'stop' };
    sendResult(node, jobId, frame.attempt as number, output, { prompt_tokens: 10, completion_tokens: 0 });
    assert.equal((await node.next('result_ack')).accepted, true);
    const done = await untilStatus(jobId, 'completed');
    assert.equal(done.charged_micro, 0);
    assert.equal(await captures(jobId), 0);
    assert.deepEqual(await stack.balance(tenant.namespaceId), before);
    await node.close();
  }));
