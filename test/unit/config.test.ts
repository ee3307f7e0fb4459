import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig, parseRoles } from '../../src/config.js';
import { parseRedisUrl } from '../../src/redis/redis-url.js';

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

test('REDIS_URL: one server, or a cluster by its seed nodes (credentials and TLS for every node); anything else refused with the form', () => {
  assert.deepEqual(parseRedisUrl('redis://127.0.0.1:6379/2'), { kind: 'server', url: 'redis://127.0.0.1:6379/2' });
  assert.deepEqual(parseRedisUrl('redis+cluster://10.0.0.1:7000,redis-b.internal:7001,[::1]:7002'), {
    kind: 'cluster',
    nodes: [
      { host: '10.0.0.1', port: 7000 },
      { host: 'redis-b.internal', port: 7001 },
      { host: '::1', port: 7002 },
    ],
    username: undefined,
    password: undefined,
    tls: false,
  });
  assert.deepEqual(parseRedisUrl('rediss+cluster://app:p%40ss@h:6380/'), { kind: 'cluster', nodes: [{ host: 'h', port: 6380 }], username: 'app', password: 'p@ss', tls: true });
  assert.equal(loadConfig({ REDIS_URL: 'redis+cluster://h1:7000,h2:7001' }).REDIS_URL, 'redis+cluster://h1:7000,h2:7001');
  for (const bad of ['redis+cluster://', 'redis+cluster://h1', 'redis+cluster://h1:7000,h2', 'redis+cluster://h1:99999', 'cluster://h1:7000']) {
    assert.throws(() => loadConfig({ REDIS_URL: bad }), (err: unknown) => err instanceof ConfigError && /REDIS_URL: .*(redis\+cluster|host:port)/.test(err.message), bad);
  }
});
