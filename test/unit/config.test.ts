import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig, parseRoles } from '../../src/config.js';

test('every bad or missing key is reported in one error; secrets have no default', () => {
  assert.throws(
    () => loadConfig({ PORT: 'eighty', REDIS_URL: 'http://x', OPERATOR_SHARE_BPS: '12000' }, { adminToken: true, networkKey: true }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      const keys = err.problems.map((p) => p.split(':')[0]);
      for (const k of ['PORT', 'REDIS_URL', 'OPERATOR_SHARE_BPS', 'ADMIN_TOKEN', 'NETWORK_SIGNING_KEY']) assert.ok(keys.includes(k), `${k} reported in ${err.message}`);
      return true;
    },
  );
});

test('defaults for the engines, validated key formats', () => {
  const c = loadConfig({ NETWORK_SIGNING_KEY: '0x' + 'ab'.repeat(32) }, { networkKey: true });
  assert.equal(c.PORT, 8080);
  assert.equal(c.NETWORK_SIGNING_KEY, 'ab'.repeat(32));
  assert.equal(c.MONGODB_URL, undefined);
  assert.throws(() => loadConfig({ NETWORK_SIGNING_KEY: 'abc' }), ConfigError);
  assert.throws(() => loadConfig({ ADMIN_TOKEN: 'short' }), ConfigError);
});

test('roles parse strictly', () => {
  assert.deepEqual(parseRoles('cloud, io'), ['cloud', 'io']);
  assert.throws(() => parseRoles('cloud,banana'), ConfigError);
});
