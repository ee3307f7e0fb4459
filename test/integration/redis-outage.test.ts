// Degraded mode (issue 13, part 4): Redis is killed outright (a private redis-server, SIGKILL) under a
// running backbone. /v1 keeps serving what does not need Redis: keys authenticate from the catalogue
// (PostgreSQL), rate limits come from in-process buckets, asynchronous jobs are accepted and wait in
// RabbitMQ, job reads answer from their rows; streamed completions, whose chunks travel through Redis,
// are refused with a 503 and Retry-After before anything is held. /readyz reports Redis down and the
// instance degraded. When Redis comes back (empty), the process recovers by itself: the shared limits
// are used again, nodes re-register, the jobs accepted during the outage complete, and the ledger balances.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestStack, TEST_MODEL } from '../helpers/stack.js';
import { PrivateRedis } from '../helpers/private-redis.js';

let stack: TestStack;
let redis: PrivateRedis;

before(async () => {
  redis = await PrivateRedis.start();
  stack = await TestStack.start({ config: { REDIS_URL: redis.url, HEARTBEAT_TTL_MS: 3000, JOB_DEADLINE_MS: 60_000 } });
  await stack.model();
  await stack.node({ capacity: 4 });
});

after(async () => {
  await redis.boot();
  await stack.close();
  await redis.kill();
});

const body = (extra: Record<string, unknown> = {}) => JSON.stringify({ model: TEST_MODEL, messages: [{ role: 'user', content: 'hello' }], max_tokens: 20, ...extra });

async function readyz(): Promise<{ code: number; body: Record<string, string> }> {
  const res = await fetch(`${stack.url}/readyz`);
  return { code: res.status, body: (await res.json()) as Record<string, string> };
}

test('Redis killed: /v1 serves from PostgreSQL with in-process limits, refuses streams with 503, and recovers by itself', () =>
  stack.check(async () => {
    const tenant = await stack.tenant(10);
    const limited = await stack.tenant(10, { rateLimitRps: 1, rateLimitBurst: 3 });
    const auth = (t: { apiKey: string }) => ({ authorization: `Bearer ${t.apiKey}`, 'content-type': 'application/json' });

    assert.deepEqual(await readyz(), { code: 200, body: { status: 'ready', postgres: 'ok', redis: 'ok', mongodb: 'ok', rabbitmq: 'ok' } });
    // Healthy first: a synchronous job completes.
    assert.equal((await fetch(`${stack.url}/v1/chat/completions`, { method: 'POST', headers: auth(tenant), body: body() })).status, 200);

    await redis.kill();
    const down = await stack.until('the backbone to see Redis down', async () => {
      const r = await readyz();
      return r.body.redis === 'down' ? r : undefined;
    });
    assert.deepEqual(down, { code: 200, body: { status: 'degraded', postgres: 'ok', redis: 'down', mongodb: 'ok', rabbitmq: 'ok' } });

    // Authentication still works (a wrong key is still refused), and so does listing models.
    const wrong = await fetch(`${stack.url}/v1/models`, { headers: { authorization: 'Bearer rk_live_nope' } });
    assert.equal(wrong.status, 401);
    const models = await fetch(`${stack.url}/v1/models`, { headers: auth(tenant) });
    assert.equal(models.status, 200);
    const listed = ((await models.json()) as { data: Array<{ id: string; resultity: { available: boolean | null } }> }).data;
    assert.equal(listed.find((m) => m.id === TEST_MODEL)?.resultity.available, null, 'availability is unknown without Redis');

    // An asynchronous job is accepted (it waits in RabbitMQ) and readable.
    const accepted = await fetch(`${stack.url}/v1/chat/completions`, { method: 'POST', headers: { ...auth(tenant), prefer: 'respond-async' }, body: body() });
    assert.equal(accepted.status, 202);
    const jobId = ((await accepted.json()) as { id: string }).id;
    const read = await fetch(`${stack.url}/v1/jobs/${jobId}`, { headers: auth(tenant) });
    assert.equal(read.status, 200);
    assert.equal(((await read.json()) as { status: string }).status, 'queued');

    // A stream needs Redis: a clear 503 with Retry-After, nothing held.
    const heldBefore = (await stack.db.query<{ n: string }>(`SELECT count(*) AS n FROM jobs`)).rows[0]!.n;
    const stream = await fetch(`${stack.url}/v1/chat/completions`, { method: 'POST', headers: auth(tenant), body: body({ stream: true }) });
    assert.equal(stream.status, 503);
    assert.ok(Number(stream.headers.get('retry-after')) >= 1);
    assert.equal(((await stream.json()) as { error: { code: string } }).error.code, 'engine_unavailable');
    assert.equal((await stack.db.query<{ n: string }>(`SELECT count(*) AS n FROM jobs`)).rows[0]!.n, heldBefore, 'a refused stream creates no job');

    // The key's limit still holds, from this process's buckets: a burst of 3, then 429.
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await fetch(`${stack.url}/v1/models`, { headers: auth(limited) })).status);
    assert.deepEqual(statuses, [200, 200, 200, 429]);

    // Metrics say what was done instead.
    const metrics = await (await fetch(`${stack.url}/metrics`)).text();
    assert.match(metrics, /resultity_degraded_total\{action="rate_limit_local"\} [1-9]/);
    assert.match(metrics, /resultity_engine_up\{engine="redis"\} 0/);

    // Redis returns, empty: the process recovers without a restart.
    await redis.boot();
    await stack.until('the backbone to see Redis back', async () => ((await readyz()).body.status === 'ready' ? true : undefined), 20_000);
    // Nodes whose connection the outage cost come back the way a real node does: by connecting again.
    if ((await fetch(`${stack.url}/v1/models`, { headers: auth(tenant) }).then((r) => r.json()) as { data: Array<{ resultity: { available: boolean | null } }> }).data.every((m) => m.resultity.available !== true)) {
      await stack.node({ capacity: 4 });
    }
    const final = await stack.until(
      'the job accepted during the outage to complete',
      async () => {
        const j = await stack.job(jobId);
        return j && ['completed', 'failed', 'expired'].includes(j.status) ? j : undefined;
      },
      45_000,
    );
    assert.equal(final.status, 'completed');
    const sync = await fetch(`${stack.url}/v1/chat/completions`, { method: 'POST', headers: auth(tenant), body: body() });
    assert.equal(sync.status, 200);
    const streamed = await fetch(`${stack.url}/v1/chat/completions`, { method: 'POST', headers: auth(tenant), body: body({ stream: true }) });
    assert.equal(streamed.status, 200);
    assert.match(await streamed.text(), /data: \[DONE\]/);
  }));
