// Webhooks survive the crash of the process that sends them (issue 12, part 5: "written to an outbox in
// the same transaction as the event so none is lost"). The backbone runs here without its maintenance
// role; the delivery worker runs in a `resultity serve --roles maintenance` child process on the same
// engines, which is killed with SIGKILL while its deliveries are in flight (the receiver holds them open,
// unanswered). Every job's event is in the outbox from its commit, while no worker runs at all; after the
// kill nothing is recorded as attempted, and a second worker delivers every message once the first one's
// lease runs out, each with its webhook-id unchanged, signatures verified by the receiver.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';
import { WebhooksService } from '../../src/webhooks/webhooks.service.js';
import { webhooksStore } from '../../src/postgres/webhooks.store.js';
import { ROLES } from '../../src/config.js';

const CLI = 'dist/src/cli/main.js';
/** One delivery may take this long; a claimed message is leased for three times it (webhook-delivery.service.ts). */
const TIMEOUT_MS = 1500;

let stack: TestStack;
let receiver: WebhookReceiver;
const children: ChildProcess[] = [];

before(async () => {
  stack = await TestStack.start({
    roles: ROLES.filter((r) => r !== 'maintenance'),
    config: { WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true' },
  });
  await stack.model();
  await stack.node();
  receiver = await WebhookReceiver.start();
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await receiver.close();
  await stack.close();
});

/** A maintenance-only backbone in a process of its own, on this stack's engines; resolves once it serves. */
async function startWorker(): Promise<ChildProcess> {
  const child = spawn(process.execPath, [CLI, 'serve', '--roles', 'maintenance'], {
    env: stack.cliEnv({
      PORT: '0',
      HOST: '127.0.0.1',
      MONGODB_URL: stack.mongoUrl,
      NETWORK_SIGNING_KEY: stack.config.NETWORK_SIGNING_KEY!,
      LOG_LEVEL: 'info',
      SWEEP_INTERVAL_MS: '200',
      WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
      WEBHOOK_TIMEOUT_MS: String(TIMEOUT_MS),
      WEBHOOK_RETRY_SCHEDULE_MS: '200,200,200',
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await stack.until('the maintenance process serves', async () => {
    if (child.exitCode !== null) throw new Error(`the maintenance process exited (${child.exitCode}):\n${out}`);
    return /listening|Server listening/i.test(out) ? true : undefined;
  }, 60_000);
  return child;
}

async function completeJobs(t: Tenant, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await t.client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: 'user', content: `job ${i}` }], max_tokens: 8 }).withResponse();
    ids.push(r.response.headers.get('x-resultity-job-id')!);
  }
  return ids;
}

async function outbox(endpointId: string) {
  return (
    await stack.db.query<{ id: string; job_id: string; status: string; attempts: number; tried: number }>(
      `SELECT m.id, m.payload->'data'->>'job_id' AS job_id, m.status, m.attempts,
              (SELECT count(*)::int FROM webhook_attempts a WHERE a.message_id = m.id) AS tried
         FROM webhook_messages m WHERE m.endpoint_id = $1 ORDER BY m.created_at, m.id`,
      [endpointId],
    )
  ).rows;
}

test('a delivery worker killed mid-send loses nothing: every committed job event is delivered by the next one', () =>
  stack.check(async () => {
    const t = await stack.tenant(100);
    const made = await new WebhooksService({ store: webhooksStore(stack.db), allowPrivateTargets: true }).create(t.namespaceId, { url: receiver.url('/crash'), events: ['job.completed'] });
    receiver.expect('/crash', made.secret);
    const endpoint = made.endpoint.id;

    // No worker runs: each completed job's message is in the outbox, committed with it, one per job.
    const before = await completeJobs(t, 4);
    const queued = await outbox(endpoint);
    assert.deepEqual(queued.map((m) => m.job_id).sort(), [...before].sort());
    assert.ok(queued.every((m) => m.status === 'pending' && m.attempts === 0));

    // A worker takes them and sends; the receiver holds every request open; the worker is killed.
    receiver.mode('/crash', 'hang');
    const first = await startWorker();
    await stack.until('all four deliveries in flight', async () => ((receiver.hits.get('/crash') ?? 0) >= 4 ? true : undefined), 30_000);
    first.kill('SIGKILL');
    await once(first, 'exit');
    const afterKill = await outbox(endpoint);
    assert.ok(afterKill.every((m) => m.status === 'pending' && m.attempts === 0 && m.tried === 0), 'a send cut short records nothing');
    assert.equal(receiver.received.length, 0);

    // More jobs complete while no worker runs; then the receiver recovers and a new worker starts.
    const during = await completeJobs(t, 2);
    receiver.mode('/crash', 'accept');
    const second = await startWorker();
    const all = [...before, ...during];
    const delivered = await stack.until('every message delivered', async () => {
      const rows = await outbox(endpoint);
      return rows.length === all.length && rows.every((m) => m.status === 'delivered') ? rows : undefined;
    }, 30_000);
    second.kill('SIGTERM');
    await once(second, 'exit');

    assert.deepEqual(delivered.map((m) => m.job_id).sort(), [...all].sort(), 'one message per completed job, none lost');
    const received = receiver.of('/crash', 'job.completed');
    assert.deepEqual([...new Set(received.map((r) => r.data.job_id as string))].sort(), [...all].sort());
    // Each message arrived under its own webhook-id (the receiver's idempotency key), the one it was made with.
    assert.deepEqual([...new Set(received.map((r) => r.id))].sort(), delivered.map((m) => m.id).sort());
    for (const r of received) assert.equal(r.id, delivered.find((m) => m.job_id === r.data.job_id)!.id);
    assert.equal(receiver.rejected, 0);
  }));
