// Two backbone instances on the same engines: a job accepted by one is scheduled and dispatched to a
// node whose socket the other holds, and the first wakes up with the result. Nothing may depend on
// process memory shared between roles.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createBackbone, type Backbone } from '../../src/app.js';
import { generatePrivateKey } from '../../src/domain/signatures.js';
import { startNodeAgent } from '../../src/node-agent/agent.js';
import { SimulatedRuntime } from '../../src/node-agent/runtime.simulated.js';
import { TestStack, TEST_MODEL } from '../helpers/stack.js';

let stack: TestStack;
let gatewayOnly: Backbone;

before(async () => {
  // Instance A (the stack): cloud, gate and maintenance only: no gateway, no scheduler.
  stack = await TestStack.start({ roles: ['cloud', 'gate', 'maintenance'] });
  // Instance B: the node gateway and the scheduler.
  gatewayOnly = await createBackbone({ config: stack.config, roles: ['io', 'scheduler'], logger: pino({ level: 'warn' }), mongoUrl: stack.mongoUrl, migrate: false });
  await stack.model();
});

after(async () => {
  await gatewayOnly.close();
  await stack.close();
});

test('a job accepted on one instance runs on a node connected to another', () =>
  stack.check(async () => {
    const gatewayUrl = await gatewayOnly.listen();
    const operator = await stack.operator();
    const node = await startNodeAgent({
      gatewayUrl,
      privateKey: await stack.enrolled(generatePrivateKey(), operator),
      operator,
      runtime: new SimulatedRuntime({ models: [TEST_MODEL], completionTokens: 7 }),
      capacity: 2,
      logger: pino({ level: 'silent' }),
      reconnect: false,
    });
    stack.nodes.push(node);
    const tenant = await stack.tenant(5);
    const results = await Promise.all(
      [1, 2, 3].map(() => tenant.client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 20 })),
    );
    for (const r of results) assert.equal(r.usage?.completion_tokens, 7);
    const served = await stack.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE status = 'completed' AND node_id = $1`, [node.nodeId]);
    assert.equal(served.rows[0]?.n, 3);
  }));
