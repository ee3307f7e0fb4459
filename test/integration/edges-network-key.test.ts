// Issue 9: at start the backbone checks that the network config in force is signed by its network key.
// A backbone started with another key (a demo restarted with a new one) would serve a config its own
// nodes refuse; it refuses to start instead, unless told to publish the next version under its key.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createBackbone } from '../../src/app.js';
import { configSchema } from '../../src/config.js';
import { addressOf, generatePrivateKey } from '../../src/domain/signatures.js';
import { verifyNetworkConfig } from '../../src/domain/network-config.js';
import { TestStack } from '../helpers/stack.js';

let stack: TestStack;

before(async () => {
  stack = await TestStack.start();
});

after(async () => {
  await stack.close();
});

test('a backbone whose key did not sign the config in force refuses to start; the demo publishes the next version under its own key', () =>
  stack.check(async () => {
    const newKey = generatePrivateKey();
    const config = configSchema.parse({ ...stackEnv(), NETWORK_SIGNING_KEY: newKey });
    const start = (republishForeignConfig: boolean) =>
      createBackbone({ config, roles: ['gate'], logger: pino({ level: 'silent' }), mongoUrl: stack.mongoUrl, migrate: false, republishForeignConfig });

    await assert.rejects(start(false), (err: Error) => {
      assert.match(err.message, /network config in force \(version 1\) is signed by 0x[0-9a-f]{40}, not by NETWORK_SIGNING_KEY/);
      assert.ok(err.message.includes(addressOf(stack.config.NETWORK_SIGNING_KEY!)));
      return true;
    });

    const demo = await start(true);
    try {
      const current = demo.networkConfig.current()!;
      assert.equal(current.version, 2);
      assert.ok(verifyNetworkConfig(current, addressOf(newKey)).ok, 'the new version is signed by the new key');
    } finally {
      await demo.close();
    }
    // And the backbone that started with the old key would now be refused in turn.
    const oldKeyConfig = configSchema.parse(stackEnv());
    await assert.rejects(createBackbone({ config: oldKeyConfig, roles: ['gate'], logger: pino({ level: 'silent' }), mongoUrl: stack.mongoUrl, migrate: false }), /is signed by/);
  }));

/**
 * The stack's own configuration as an environment (same database, prefixes and key): its plain values
 * (parsed structures such as PAYLOAD_MASTER_KEYS are left out; the gate role does not need them).
 */
function stackEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(stack.config)
      .filter((e): e is [string, string | number | boolean] => ['string', 'number', 'boolean'].includes(typeof e[1]))
      .map(([k, v]) => [k, String(v)]),
  );
}
