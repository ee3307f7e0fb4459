// The `resultity` executable as a newcomer meets it: `demo` comes up and its printed curl line works as
// printed; the engine pre-flight names the command to run for an engine that is down; a bad
// configuration is reported whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { promisify } from 'node:util';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { configSchema } from '../../src/config.js';
import { checkEngines } from '../../src/cli/engines.js';
import { dropTestData, testMongoBase, withDatabase } from '../helpers/stack.js';

const CLI = 'dist/src/cli/main.js';

async function freePort(): Promise<number> {
  const srv = net.createServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as net.AddressInfo).port;
  srv.close();
  return port;
}

test('demo: comes up, prints a curl line that works as printed, and stops cleanly on SIGINT', async () => {
  const id = `rt_test_cli_${randomBytes(4).toString('hex')}`;
  const mongoUrl = withDatabase(testMongoBase(), id);
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, 'demo'], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${id}`,
      MONGODB_URL: mongoUrl,
      REDIS_KEY_PREFIX: `${id}:`,
      RABBITMQ_PREFIX: id,
      ADMIN_TOKEN: '',
      NETWORK_SIGNING_KEY: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  try {
    const deadline = Date.now() + 60_000;
    while (!out.includes('Ctrl-C stops')) {
      if (child.exitCode !== null) throw new Error(`demo exited early (${child.exitCode}):\n${out}`);
      if (Date.now() > deadline) throw new Error(`demo did not come up:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(out, /Generated for this run only: ADMIN_TOKEN, PAYLOAD_MASTER_KEYS, NETWORK_SIGNING_KEY/);
    // The two printed lines of the curl command, joined as a shell would join them.
    const lines = out.split('\n');
    const start = lines.findIndex((l) => l.trimStart().startsWith('curl '));
    assert.ok(start >= 0, 'a curl line is printed');
    const command = `${lines[start]!.replace(/\\$/, '')} ${lines[start + 1]!}`;
    const { stdout } = await promisify(execFile)('bash', ['-c', command]);
    const body = JSON.parse(stdout) as { object: string; choices: Array<{ message: { content: string } }>; usage: { total_tokens: number } };
    assert.equal(body.object, 'chat.completion');
    assert.match(body.choices[0]?.message.content ?? '', /^simulated answer/);
    assert.ok(body.usage.total_tokens > 0);
    // The openai snippet, saved as printed into a .mjs file where the `openai` package resolves.
    const snippetStart = lines.findIndex((l) => l.includes("import OpenAI from 'openai'"));
    assert.ok(snippetStart >= 0, 'an openai snippet is printed');
    const snippet = lines.slice(snippetStart, snippetStart + 4).map((l) => l.trim()).join('\n');
    assert.ok(snippet.includes(`baseURL: 'http://127.0.0.1:${port}/v1'`), 'the openai snippet names the same server');
    const file = path.resolve(`test-demo-snippet-${id}.mjs`);
    await writeFile(file, snippet);
    try {
      const r = await promisify(execFile)(process.execPath, [file]);
      assert.match(r.stdout, /simulated answer/);
    } finally {
      await rm(file, { force: true });
    }
    // The web addresses: the explorer answers with the app, and the consoles' printed credentials sign in.
    assert.equal(/Explorer:\s+(\S+)/.exec(out)?.[1], `http://127.0.0.1:${port}/app/`);
    const page = await fetch(`http://127.0.0.1:${port}/app/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    for (const role of ['Console', 'Operator']) {
      const creds = new RegExp(`${role}:\\s+(\\S+)\\s+sign in as (\\S+) / (\\S+)`).exec(out);
      assert.ok(creds, `${role} line printed`);
      assert.equal(creds[1], `http://127.0.0.1:${port}/app/${role.toLowerCase()}`);
      const login = await fetch(`http://127.0.0.1:${port}/account/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: creds[2], password: creds[3] }),
      });
      assert.equal(login.status, 200, `${role}: ${await login.text()}`);
    }
  } finally {
    child.kill('SIGINT');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, `demo exits 0 on SIGINT:\n${out.slice(-2000)}`);
    await dropTestData(id, mongoUrl, ['resultity/demo-sim']);
  }
});

test('the engine pre-flight names what to run for an engine that is down', async () => {
  const problems = await checkEngines(configSchema.parse({ REDIS_URL: 'redis://127.0.0.1:1', RABBITMQ_URL: 'amqp://guest:guest@127.0.0.1:1' }));
  assert.equal(problems.length, 2, problems.join('\n'));
  assert.match(problems[0]!, /Redis .* not reachable .*Start it: redis-server/);
  assert.match(problems[1]!, /RabbitMQ .* not reachable .*Start it: rabbitmq-server -detached/);
});

test('serve with a bad configuration exits 2 and names every bad key', async () => {
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: { ...process.env, PORT: 'x', ADMIN_TOKEN: 'short', NETWORK_SIGNING_KEY: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 2);
  for (const key of ['PORT', 'ADMIN_TOKEN', 'NETWORK_SIGNING_KEY']) assert.match(err, new RegExp(key));
});
