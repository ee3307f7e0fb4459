import { after, before, test } from 'node:test';
import { TestStack, TEST_MODEL, type Tenant } from '../helpers/stack.js';
import { requestJson } from '../helpers/http.js';
let stack: TestStack; let t: Tenant;
before(async () => { stack = await TestStack.start(); await stack.model(); await stack.node(); t = await stack.tenant(10); });
after(async () => { await stack.close({ keepData: false }); });
test('probe', async () => {
  const N = 'a\u0000b';
  const adminTok = stack.config.ADMIN_TOKEN!;
  const tries: Array<[string, string, unknown, string | null]> = [
    ['POST', '/v1/chat/completions', { model: TEST_MODEL, messages: [{ role: 'user', content: N }], max_tokens: 5 }, t.apiKey],
    ['POST', '/v1/chat/completions', { model: N, messages: [{ role: 'user', content: 'x' }], max_tokens: 5 }, t.apiKey],
    ['POST', '/v1/chat/completions', { model: TEST_MODEL, messages: [{ role: 'user', content: 'x', name: N }], max_tokens: 5 }, t.apiKey],
    ['POST', '/v1/chat/completions', { model: TEST_MODEL, messages: [{ role: 'user', content: 'x' }], stop: ['x'.repeat(100000)], max_tokens: 5 }, t.apiKey],
    ['GET', '/v1/jobs/----', undefined, t.apiKey],
    ['GET', '/v1/jobs/' + '-'.repeat(36), undefined, t.apiKey],
    ['GET', '/v1/jobs/%00', undefined, t.apiKey],
    ['POST', '/account/signup', { email: 'a@b.co', password: 'x'.repeat(12), name: N }, null],
    ['POST', '/account/signup', { email: 'a@b.co', password: N + 'x'.repeat(12) }, null],
    ['POST', '/admin/accounts', { name: N }, adminTok],
    ['POST', `/admin/namespaces/${t.namespaceId}/credits`, { amount: 1, memo: N }, adminTok],
    ['POST', `/admin/namespaces/${t.namespaceId}/credits`, { amount: true }, adminTok],
    ['POST', `/admin/namespaces/${t.namespaceId}/keys`, { name: N }, adminTok],
    ['GET', `/admin/subclouds/${encodeURIComponent(N)}`, undefined, adminTok],
    ['PUT', `/admin/models/${encodeURIComponent(N)}`, { input_price: 1, output_price: 1 }, adminTok],
    ['GET', `/admin/ledger/total`, undefined, null],
    ['GET', `/admin`, undefined, null],
    ['GET', `/admin/nope`, undefined, null],
    ['GET', `/account/nodes/zz`, undefined, null],
    ['POST', '/v1/chat/completions', '{bad json', t.apiKey],
  ];
  for (const [m, p, b, tok] of tries) {
    const r = await requestJson(stack.url, m, p, b, tok).catch((e: Error) => ({ status: -1, text: e.message }));
    console.log(m, p.slice(0, 50), r.status, r.text.slice(0, 200));
  }
});
