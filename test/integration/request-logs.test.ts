// Issue 13 part 3: every log line of a request carries its request id, and once the job exists its job id
// (common/log-context.ts), whichever logger writes it; and the process's logger writes JSON when its
// output is not a terminal.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestStack, TEST_MODEL } from '../helpers/stack.js';

const lines: Array<Record<string, unknown>> = [];
let stack: TestStack;

before(async () => {
  stack = await TestStack.start({ config: { LOG_LEVEL: 'info' }, logDestination: { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) } });
  await stack.model();
  await stack.node();
});

after(async () => {
  await stack.close();
});

test("a completion's request log lines carry its request id and its job id", () =>
  stack.check(async () => {
    const tenant = await stack.tenant(10);
    const res = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: TEST_MODEL, messages: [{ role: 'user', content: 'hello' }], max_tokens: 8 }),
    });
    assert.equal(res.status, 200);
    const jobId = res.headers.get('x-resultity-job-id');
    const completed = await stack.until('the request-completed line', async () => lines.find((l) => l.msg === 'request completed' && l.jobId === jobId));
    assert.equal(typeof completed.reqId, 'string');
    const incoming = lines.find((l) => l.msg === 'incoming request' && l.reqId === completed.reqId);
    assert.ok(incoming, 'the same request id on its first line');
    // No key written twice on one line (pino would write a duplicate JSON key; JSON.parse keeps the last).
    for (const l of lines) assert.ok(!('jobId' in l) || typeof l.jobId === 'string');
  }));

test('the logger writes JSON when standard output is not a terminal, readable lines when LOG_FORMAT=pretty', async () => {
  const { spawnSync } = await import('node:child_process');
  const script = `import('${new URL('../../src/common/logger.js', import.meta.url).href}').then(({ createLogger }) => createLogger('info').info({ a: 1 }, 'hello'))`;
  const json = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, LOG_FORMAT: '' } });
  assert.deepEqual({ ...(JSON.parse(json.stdout) as Record<string, unknown>), time: 0, pid: 0, hostname: '' }, { level: 30, time: 0, pid: 0, hostname: '', a: 1, msg: 'hello' });
  const pretty = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, LOG_FORMAT: 'pretty' } });
  assert.match(pretty.stdout, /INFO.*hello/);
  assert.throws(() => JSON.parse(pretty.stdout));
});
