import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command, CommanderError } from 'commander';
import { addressOf, generatePrivateKey } from '../../src/domain/signatures.js';
import { backoffDelay } from '../../src/node-agent/backoff.js';
import { registerNodeCommand } from '../../src/node-agent/cli.js';
import { gatewayUrls } from '../../src/node-agent/gateway-urls.js';

void test('gateway URLs: socket and results endpoints, path prefixes kept', () => {
  assert.deepEqual(gatewayUrls('http://127.0.0.1:8080'), {
    socket: 'ws://127.0.0.1:8080/io/ws',
    results: 'http://127.0.0.1:8080/io/results',
    config: 'http://127.0.0.1:8080/io/config',
  });
  assert.deepEqual(gatewayUrls('https://gw.example.com/resultity/?x=1'), {
    socket: 'wss://gw.example.com/resultity/io/ws',
    results: 'https://gw.example.com/resultity/io/results',
    config: 'https://gw.example.com/resultity/io/config',
  });
  assert.throws(() => gatewayUrls('ws://127.0.0.1:8080'), /http\(s\)/);
});

void test('backoff: grows exponentially, stays capped, and is jittered within the upper half', () => {
  const opts = { baseMs: 100, maxMs: 1_000 };
  assert.equal(backoffDelay(0, opts, () => 1), 100);
  assert.equal(backoffDelay(0, opts, () => 0), 50);
  assert.equal(backoffDelay(3, opts, () => 1), 800);
  assert.equal(backoffDelay(10, opts, () => 1), 1_000);
  assert.equal(backoffDelay(1_000, opts, () => 0), 500);
});

/** A program whose exits and output are captured instead of ending the test process. */
function program(): { cmd: Command; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const cmd = new Command('resultity').exitOverride().configureOutput({ writeOut: (s) => out.push(s), writeErr: (s) => err.push(s) });
  registerNodeCommand(cmd);
  return { cmd, out, err };
}

void test('cli: node keygen --json prints a key and its address', async () => {
  const { cmd } = program();
  const written: string[] = [];
  const original = process.stdout.write.bind(process.stdout);
  process.stdout.write = (chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  };
  try {
    await cmd.parseAsync(['node', 'keygen', '--json'], { from: 'user' });
  } finally {
    process.stdout.write = original;
  }
  const parsed = JSON.parse(written.join('')) as { privateKey: string; address: string };
  assert.match(parsed.privateKey, /^[0-9a-f]{64}$/);
  assert.equal(parsed.address, addressOf(parsed.privateKey));
});

void test('cli: node run refuses to start without a key, an operator or (simulated) models', async () => {
  const saved = process.env.NODE_PRIVATE_KEY;
  delete process.env.NODE_PRIVATE_KEY;
  const operator = '6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b';
  const key = generatePrivateKey();
  try {
    const cases: [string[], RegExp][] = [
      [['node', 'run', '--operator', operator, '--models', 'm'], /private key is required/],
      [['node', 'run', '--key', key, '--models', 'm'], /--operator/],
      [['node', 'run', '--key', key, '--operator', operator], /--models is required/],
      [['node', 'run', '--key', key, '--operator', operator, '--runtime', 'openai'], /--runtime-url is required/],
      [['node', 'run', '--key', key, '--operator', operator, '--models', 'm', '--capacity', '0'], /integer from 1 to 1024/],
    ];
    for (const [args, expected] of cases) {
      const { cmd, err } = program();
      await assert.rejects(cmd.parseAsync(args, { from: 'user' }), CommanderError);
      assert.match(err.join(''), expected);
      assert.doesNotMatch(err.join(''), new RegExp(key));
    }
  } finally {
    if (saved !== undefined) process.env.NODE_PRIVATE_KEY = saved;
  }
});
