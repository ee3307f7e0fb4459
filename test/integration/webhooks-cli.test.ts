// `resultity admin webhook-*` and `namespace-notices` (src/cli/admin/webhooks.commands.ts), run as a separate
// process against this stack's engines while the stack's maintenance role delivers: create (secret shown
// once; private targets refused unless allowed), list, messages with attempts, redeliver, the disable
// after persistent failure seen in the list and in the namespace's notices, enable, delete.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestStack, TEST_MODEL } from '../helpers/stack.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';
import { runCli, type CliRun } from '../helpers/cli.js';

let stack: TestStack;
let receiver: WebhookReceiver;

before(async () => {
  stack = await TestStack.start({ config: { WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true', WEBHOOK_RETRY_SCHEDULE_MS: '100' } });
  await stack.model();
  await stack.node();
  receiver = await WebhookReceiver.start();
});

after(async () => {
  await receiver.close();
  await stack.close();
});

/** Runs `resultity admin <args>` against this stack's engines; kills it after 30 s. */
function admin(env: Record<string, string>, ...args: string[]): Promise<CliRun> {
  return runCli(stack.cliEnv(env), ['admin', ...args]);
}

const ALLOW = { WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true' };

/** A --json command that must succeed: its one line of output, parsed. */
async function adminJson<T = Record<string, unknown>>(...args: string[]): Promise<T> {
  const r = await admin(ALLOW, ...args, '--json');
  assert.equal(r.code, 0, `resultity admin ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, `one JSON line expected, got: ${r.stdout}`);
  return JSON.parse(lines[0]!) as T;
}

interface Endpoint {
  id: string;
  url: string;
  events: string[];
  enabled: boolean;
  disabled_at: string | null;
  disabled_reason: string | null;
  secret?: string;
}
interface Message {
  id: string;
  event_type: string;
  status: string;
  attempts: Array<{ response_status: number | null; error: string | null }>;
}

test('the webhook commands: create, list, messages, redeliver; disabled after failure with a notice; enable, delete', () =>
  stack.check(async () => {
    const t = await stack.tenant(10);
    const ns = t.namespaceId;

    // A private target is refused unless the operator allows it (this process's env, not the stack's).
    const refused = await admin({}, 'webhook-create', ns, 'http://127.0.0.1:9/hook');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /private or loopback/);
    const unknown = await admin(ALLOW, 'webhook-list', '00000000-0000-4000-8000-000000000000');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /Namespace not found/);
    const badEvent = await admin(ALLOW, 'webhook-create', ns, receiver.url('/cli'), '--events', 'job.exploded');
    assert.notEqual(badEvent.code, 0);
    assert.match(badEvent.stderr, /job\.completed, job\.failed, credits\.low/);

    const made = await adminJson<Endpoint>('webhook-create', ns, receiver.url('/cli'), '--events', 'job.completed,job.failed', '--description', 'from the CLI');
    assert.match(made.secret ?? '', /^whsec_/);
    assert.deepEqual(made.events, ['job.completed', 'job.failed']);
    receiver.expect('/cli', made.secret!);
    const text = await admin(ALLOW, 'webhook-list', ns);
    assert.match(text.stdout, new RegExp(`webhook ${made.id} .*enabled`));
    assert.doesNotMatch(text.stdout, /whsec_/, 'the secret is shown at creation only');

    const job = await t.client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 }).withResponse();
    const jobId = job.response.headers.get('x-resultity-job-id');
    const first = await stack.until('job.completed delivered', async () => receiver.of('/cli', 'job.completed')[0]);
    assert.equal(first.data.job_id, jobId);

    const messages = await adminJson<Message[]>('webhook-messages', ns, made.id);
    assert.equal(messages.length, 1);
    assert.equal(messages[0]!.id, first.id);
    assert.equal(messages[0]!.status, 'delivered');
    assert.deepEqual(messages[0]!.attempts.map((a) => a.response_status), [204]);

    assert.deepEqual(await adminJson('webhook-redeliver', ns, made.id, first.id), { queued: first.id });
    await stack.until('redelivered', async () => (receiver.of('/cli', 'job.completed').length === 2 ? true : undefined));
    assert.equal(receiver.of('/cli')[1]!.id, first.id, 'the same webhook-id');

    // The receiver fails for good: one retry, then the endpoint is disabled and the namespace gets a notice.
    receiver.mode('/cli', 'fail');
    await t.client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: 'user', content: 'again' }], max_tokens: 8 });
    const disabled = await stack.until('disabled', async () => {
      const [e] = await adminJson<Endpoint[]>('webhook-list', ns);
      return e && !e.enabled ? e : undefined;
    });
    assert.match(disabled.disabled_reason ?? '', /HTTP 503/);
    const notices = await adminJson<Array<{ kind: string; subject: string; message: string }>>('namespace-notices', ns);
    assert.equal(notices.length, 1);
    assert.equal(notices[0]!.kind, 'webhook_endpoint_disabled');
    assert.equal(notices[0]!.subject, made.id);
    assert.match((await admin(ALLOW, 'namespace-notices', ns)).stdout, /webhook_endpoint_disabled .*disabled after persistent delivery failure/);
    const failed = (await adminJson<Message[]>('webhook-messages', ns, made.id)).find((m) => m.status === 'failed')!;
    assert.deepEqual(failed.attempts.map((a) => a.error), ['HTTP 503', 'HTTP 503']);

    receiver.mode('/cli', 'accept');
    const redeliverWhileDisabled = await admin(ALLOW, 'webhook-redeliver', ns, made.id, failed.id);
    assert.equal(redeliverWhileDisabled.code, 1);
    assert.match(redeliverWhileDisabled.stderr, /disabled/);
    assert.equal((await adminJson<Endpoint>('webhook-enable', ns, made.id)).enabled, true);
    await adminJson('webhook-redeliver', ns, made.id, failed.id);
    await stack.until('the failed message delivered', async () => (receiver.of('/cli').some((r) => r.id === failed.id) ? true : undefined));

    assert.deepEqual(await adminJson('webhook-delete', ns, made.id), { deleted: made.id });
    assert.deepEqual(await adminJson('webhook-list', ns), []);
    assert.equal((await admin(ALLOW, 'webhook-delete', ns, made.id)).code, 1);
    assert.equal(receiver.rejected, 0);
  }));
