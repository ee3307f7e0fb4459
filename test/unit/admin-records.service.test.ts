// Fast tier (docs/testing.md): AdminRecordsService hands the admin change log's filter and the epochs'
// count to its store unchanged. The same service on the real engines: test/integration/admin.test.ts, rcp.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdminRecordsService, type AdminChangeFilter, type AdminRecordsStore } from '../../src/gate/admin-records.service.js';

test('the change log\'s filter and the points\' epochs reach the store as given', async () => {
  const asked: unknown[] = [];
  const store: AdminRecordsStore = {
    listAdminChanges: (f: AdminChangeFilter) => (asked.push(f), Promise.resolve([])),
    rcpByEpoch: (nodeId: string, limit: number) => (asked.push([nodeId, limit]), Promise.resolve([])),
  };
  const records = new AdminRecordsService({ store });
  await records.changes({ limit: 10, action: 'model.put', beforeId: 7 });
  await records.contributionPoints('0xnode', 30);
  assert.deepEqual(asked, [{ limit: 10, action: 'model.put', beforeId: 7 }, ['0xnode', 30]]);
});
