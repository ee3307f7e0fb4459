// PostgreSQL restarted and stopped under a running backbone (a private cluster, helpers/private-postgres.ts;
// never the machine's own). The process must outlive it: a pool client checked out at that moment (a
// transaction in flight, or one held idle while a maintenance task runs, postgres/advisory-lock.ts) sees
// its connection cut, and an 'error' event nobody listens to would kill the process ("Connection
// terminated unexpectedly"). While the server is down, /v1 answers 503 in OpenAI's error shape; once it is
// back, requests are served again and the catalogue listener LISTENs again (a key revoked by another
// connection is refused within seconds, well inside the catalogue's 60 s cache).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { withTransaction } from '../../src/postgres/db.js';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';
import { PrivatePostgres } from '../helpers/private-postgres.js';

let server: PrivatePostgres;
let stack: TestStack;
let tenant: Tenant;
/** Lets the first test's held transaction go on (after() calls it too, in case that test failed first). */
let resume: (() => void) | undefined;

const DATABASE = 'rt_test_pg_restart';
const auth = () => ({ authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json' });
const chat = () =>
  fetch(`${stack.url}/v1/chat/completions`, {
    method: 'POST',
    headers: auth(),
    body: JSON.stringify({ model: TEST_MODEL, messages: [{ role: 'user', content: 'outlive a restart' }], max_tokens: 8 }),
  });

// What would have killed a production process (an 'error' event with no listener is thrown): recorded, so
// that the test says so, not only the runner's report on the file.
const crashes: string[] = [];
const recordCrash = (err: Error) => crashes.push(err.message);

before(async () => {
  process.on('uncaughtException', recordCrash);
  server = await PrivatePostgres.start();
  stack = await TestStack.start({ config: { DATABASE_URL: `${server.url}/${DATABASE}` } });
  await stack.model();
  await stack.node({ capacity: 2 });
  tenant = await stack.tenant(10);
});

after(async () => {
  process.off('uncaughtException', recordCrash);
  resume?.(); // a failed first test may have left its transaction waiting: the pool's end would wait for it
  // Up again if a failed test left it down, so that the stack closes cleanly; the cluster goes either way,
  // and a close that hangs is given up on: the runner would exit with this hook unfinished, the cluster left.
  try {
    await server.boot().catch(() => undefined);
    const closing = stack?.close({ keepData: false }).catch((err: unknown) => console.error('stack close failed', err));
    await Promise.race([closing, new Promise((r) => setTimeout(r, 30_000))]);
  } finally {
    await server.destroy();
  }
});

/** Served again: the first 200 from a request that needs the database (the key's lookup, then the job's rows). */
async function servedAgain(): Promise<void> {
  await stack.until('GET /v1/models to answer 200 again', async () => ((await fetch(`${stack.url}/v1/models`, { headers: auth() })).status === 200 ? true : undefined), 30_000);
  const res = await chat();
  assert.equal(res.status, 200, await res.text());
}

test('PostgreSQL restarted under checked-out clients (a query in flight, an idle transaction): no crash, the callers get errors, service resumes', { timeout: 90_000 }, () =>
  stack.check(async () => {
    assert.equal((await chat()).status, 200);
    // A statement running when the server goes, and a transaction held idle as runExclusive holds its lock.
    const inFlight = withTransaction(stack.db, (tx) => tx.query('SELECT pg_sleep(60)'));
    const gate = new Promise<void>((r) => (resume = r));
    const idle = withTransaction(stack.db, async (tx) => {
      await tx.query('SELECT 1');
      await gate;
      await tx.query('SELECT 2');
    });
    await stack.until('both clients to be checked out', async () => (stack.db.idleCount + 2 <= stack.db.totalCount && stack.db.totalCount >= 2 ? true : undefined));
    await new Promise((r) => setTimeout(r, 300)); // the sleep reaches the server

    // Their failures are read after the restart: caught now, so that an early one is not an unhandled rejection.
    const outcome = (p: Promise<unknown>) => p.then(() => 'succeeded', (err: Error) => err.message);
    const inFlightOutcome = outcome(inFlight);
    const idleOutcome = outcome(idle);

    // Requests all through the restart: each is served or refused with a 503 (shutting down, starting up,
    // connection cut: all "unreachable"), never a 500.
    const statuses = new Set<number>();
    let restarting = true;
    const poller = (async () => {
      while (restarting) {
        const [models, job] = await Promise.all([fetch(`${stack.url}/v1/models`, { headers: auth() }), chat()]);
        for (const r of [models, job]) {
          statuses.add(r.status);
          await r.arrayBuffer();
        }
      }
    })();
    await server.restart('fast').finally(() => (restarting = false));
    await poller;
    assert.notEqual(await inFlightOutcome, 'succeeded', 'the statement in flight fails');
    resume!();
    assert.notEqual(await idleOutcome, 'succeeded', 'the held transaction fails on its next statement');

    await servedAgain();
    assert.deepEqual(crashes, [], 'no uncaught exception (each would have crashed the process)');
    assert.deepEqual([...statuses].filter((s) => s !== 200 && s !== 503), [], `statuses seen during the restart: ${[...statuses].join(', ')}`);
  }));

test('PostgreSQL down: /v1 answers 503 in the OpenAI error shape, then serves again once it is back', { timeout: 90_000 }, () =>
  stack.check(async () => {
    await server.stop();
    const down = await stack.until('a request to fail while PostgreSQL is down', async () => {
      const res = await fetch(`${stack.url}/v1/models`, { headers: auth() });
      return res.status === 200 ? undefined : res;
    });
    const body = (await down.json()) as { error?: { type?: string; code?: string; message?: string } };
    assert.equal(down.status, 503, JSON.stringify(body));
    assert.equal(body.error?.type, 'server_error');
    assert.equal(body.error?.code, 'engine_unavailable');
    assert.ok(down.headers.get('retry-after'), 'a Retry-After header');
    const job = await chat();
    assert.equal(job.status, 503, await job.text());

    await server.boot();
    await servedAgain();
  }));

test('after the restarts, catalogue changes are heard again: a key revoked by another connection is refused within seconds', { timeout: 60_000 }, () =>
  stack.check(async () => {
    const other = new pg.Client({ connectionString: `${server.url}/${DATABASE}` });
    await other.connect();
    try {
      await stack.until('the catalogue listener to LISTEN again', async () => {
        const r = await other.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'resultity:catalog' AND query ILIKE 'LISTEN%'`);
        return r.rowCount ? true : undefined;
      });
      assert.equal((await fetch(`${stack.url}/v1/models`, { headers: auth() })).status, 200, 'the key is cached');
      await other.query(`UPDATE api_keys SET revoked_at = now() WHERE id = $1`, [tenant.keyId]);
      await stack.until(
        'the revoked key to be refused (only the notification can tell: the cached copy lives 60 s)',
        async () => ((await fetch(`${stack.url}/v1/models`, { headers: auth() })).status === 401 ? true : undefined),
        5_000,
      );
    } finally {
      await other.end();
    }
  }));
