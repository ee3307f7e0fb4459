// Issue 9, the node gateway's edges, on the real engines: what a stranger or a node can send over /io/ws
// that once was parsed at any size, held sockets without limit, or left a job stuck until its deadline.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestStack, TEST_MODEL, type RawNode, type Tenant } from '../helpers/stack.js';
import { signMessage } from '../../src/domain/signatures.js';
import { outputHash, type JobOutput } from '../../src/domain/protocol.js';

const CONNECTIONS_PER_ADDRESS = 12;
const UNREGISTERED_MAX_BYTES = 64 * 1024;
const HEARTBEAT_TTL_MS = 4000;

let stack: TestStack;
let tenant: Tenant;
let operator: string;
const raws: RawNode[] = [];

before(async () => {
  stack = await TestStack.start({
    config: { IO_CONNECTIONS_PER_ADDRESS: CONNECTIONS_PER_ADDRESS, IO_UNREGISTERED_MAX_BYTES: UNREGISTERED_MAX_BYTES, HEARTBEAT_TTL_MS },
  });
  await stack.model();
  tenant = await stack.tenant(10);
  operator = await stack.operator();
});

after(async () => {
  await Promise.all(raws.map((r) => r.close()));
  await stack.close();
});

const check = (fn: () => Promise<void>) => stack.check(fn);

async function raw(): Promise<RawNode> {
  const node = await stack.rawNode();
  raws.push(node);
  return node;
}

async function submitAsync(model: string): Promise<string> {
  const res = await fetch(`${stack.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json', prefer: 'respond-async' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Say something' }], max_tokens: 50 }),
  });
  assert.equal(res.status, 202, await res.clone().text());
  return ((await res.json()) as { id: string }).id;
}

async function attempts(jobId: string) {
  const r = await stack.db.query<{ attempt: number; node_id: string; outcome: string | null; reason: string | null }>(
    `SELECT attempt, node_id, outcome, reason FROM job_attempts WHERE job_id = $1 ORDER BY attempt`,
    [jobId],
  );
  return r.rows;
}

test("a node's result carrying a NUL is an invalid result at once: the attempt fails, the job completes on another node, charged once", () =>
  check(async () => {
    const model = 'test/nul-result';
    await stack.model(model);
    const node = await raw();
    await node.registerAs(operator, { models: [model], capacity: 1 });
    const jobId = await submitAsync(model);
    const frame = await node.next('job', 15_000);
    const honest = await stack.node({ models: [model] });
    const output: JobOutput = { content: 'half an answer\u0000and the rest', finish_reason: 'stop' };
    const sentAt = Date.now();
    node.send(
      signMessage(node.privateKey, {
        type: 'result' as const,
        nodeId: node.nodeId,
        jobId,
        attempt: frame.attempt as number,
        ts: Date.now(),
        output,
        outputHash: outputHash(output),
        usage: { prompt_tokens: 5, completion_tokens: 5 },
      }),
    );
    const refused = await node.next('error');
    assert.equal(refused.code, 'invalid_message');
    const done = await stack.until('the job to complete elsewhere', async () => {
      const j = await stack.job(jobId);
      return j?.status === 'completed' ? j : undefined;
    });
    // Well inside the attempt timeout (5 s here): the attempt was failed, not left to time out.
    assert.ok(Date.now() - sentAt < 4_000, `took ${Date.now() - sentAt} ms`);
    assert.equal(done.node_id, honest.nodeId);
    const rows = await attempts(jobId);
    assert.deepEqual(rows.map((a) => [a.attempt, a.node_id, a.outcome]), [
      [1, node.nodeId, 'invalid_result'],
      [2, honest.nodeId, 'completed'],
    ]);
    assert.match(rows[0]!.reason ?? '', /malformed result/);
    await node.close();
  }));

test('a stranger may not send a large frame before registering: the socket is cut before the frame is parsed', () =>
  check(async () => {
    const node = await raw();
    node.socket.send('x'.repeat(1024 * 1024)); // not even JSON: parsed, it would be answered 'invalid_message'
    const closed = await node.waitClosed(5_000);
    assert.notEqual(closed.code, 1000);
    assert.deepEqual(
      node.pending().filter((f) => f.type === 'error'),
      [],
      'the gateway must not have parsed the frame',
    );
    // The gateway is unharmed: a node registers and a small junk frame before registration is still answered.
    const other = await raw();
    other.socket.send('not json');
    assert.equal((await other.next('error')).code, 'invalid_message');
    await other.registerAs(operator, { models: [TEST_MODEL] });
  }));

test('a registered node keeps the current frame limit (frames past the unregistered allowance are read)', () =>
  check(async () => {
    const node = await raw();
    await node.registerAs(operator, { models: [TEST_MODEL] });
    node.socket.send(' '.repeat(1024 * 1024) + 'not json');
    const answer = await node.next('error', 10_000);
    assert.equal(answer.code, 'invalid_message');
    assert.equal(node.closed, null, 'the socket stays open');
    node.send(node.heartbeat({ models: [TEST_MODEL] }));
    assert.equal((await node.next('heartbeat_ack')).type, 'heartbeat_ack');
    await node.close();
  }));

test('connections per address are limited; a closed one makes room', () =>
  check(async () => {
    const mine: RawNode[] = [];
    let refusal: Error | null = null;
    // Other sockets of this file may be open from the same address: open until the gateway refuses.
    for (let i = 0; i <= CONNECTIONS_PER_ADDRESS && !refusal; i++) {
      try {
        mine.push(await raw());
      } catch (err) {
        refusal = err as Error;
      }
    }
    assert.ok(refusal, `${mine.length} sockets from one address were all accepted`);
    assert.match(refusal.message, /1008 too many connections from this address/);
    await mine.pop()!.close();
    await stack.until('room for one more socket', async () => {
      try {
        mine.push(await raw());
        return true;
      } catch {
        return undefined;
      }
    }, 5_000);
    await Promise.all(mine.map((n) => n.close()));
  }));

test('a registered node silent for a whole heartbeat TTL is disconnected', () =>
  check(async () => {
    const node = await raw();
    await node.registerAs(operator, { models: [TEST_MODEL] });
    const closed = await node.waitClosed(HEARTBEAT_TTL_MS * 3);
    assert.equal(closed.code, 4004);
  }));
