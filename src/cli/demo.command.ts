// `resultity demo` (or `serve --demo`): the backbone plus everything needed to call it at once: a demo
// account and namespace with credits and an API key, a model, an operator account, and two SIMULATED
// nodes (deterministic fake inference; see node-agent/runtime.simulated.ts). Secrets missing from the
// environment are generated for this run only and never written anywhere.
import { randomBytes } from 'node:crypto';
import type { Role } from '../config.js';
import { addressOf, generatePrivateKey } from '../domain/signatures.js';
import { startNodeAgent, type NodeAgent } from '../node-agent/agent.js';
import { SimulatedRuntime } from '../node-agent/runtime.simulated.js';
import { runServe } from './serve.command.js';

export const DEMO_MODEL = 'resultity/demo-sim';

export async function runDemo(roles: readonly Role[]): Promise<void> {
  const generated: string[] = [];
  if (!process.env.ADMIN_TOKEN) {
    process.env.ADMIN_TOKEN = randomBytes(24).toString('base64url');
    generated.push('ADMIN_TOKEN');
  }
  if (!process.env.PAYLOAD_MASTER_KEYS) {
    process.env.PAYLOAD_MASTER_KEYS = `1:${randomBytes(32).toString('base64')}`;
    generated.push('PAYLOAD_MASTER_KEYS');
  }
  if (!process.env.NETWORK_SIGNING_KEY) {
    process.env.NETWORK_SIGNING_KEY = generatePrivateKey();
    generated.push('NETWORK_SIGNING_KEY');
  }
  // A demo's key is made per run unless given: a database kept from an earlier run holds configs signed by
  // that run's key, so the next version is published under this one (a real network refuses to start).
  const { backbone, url, logger, onShutdown } = await runServe(roles, { republishForeignConfig: true });
  const admin = backbone.admin;
  const stamp = new Date().toISOString().replace(/[-:.TZ]/g, '').slice(0, 14);
  const base = url.replace('0.0.0.0', '127.0.0.1');
  // Both accounts sign in to the web consoles with an email and a password made for this run.
  const consumer = await demoAccount(base, `consumer-${stamp}@example.com`);
  const ns = await admin.accounts.createNamespace(consumer.id, 'demo');
  await admin.credits.topUp(ns.id, 100, 'demo credits');
  await admin.models.putModel({ name: DEMO_MODEL, inputPricePerMtok: 100, outputPricePerMtok: 200, contextTokens: 8192 });
  const { secret } = await admin.apiKeys.issueApiKey(ns.id, { name: 'demo' });
  const operator = await demoAccount(base, `operator-${stamp}@example.com`);
  const nodes: NodeAgent[] = [];
  for (let i = 0; i < 2; i++) {
    const privateKey = generatePrivateKey();
    await enrolDemoNode(base, operator, addressOf(privateKey));
    nodes.push(
      await startNodeAgent({
        gatewayUrl: base,
        privateKey,
        operator: operator.id,
        runtime: new SimulatedRuntime({ models: [DEMO_MODEL], latencyMs: 150, completionTokens: 24 }),
        capacity: 4,
        logger: logger.child({ node: i + 1 }),
      }),
    );
  }
  onShutdown(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  });

  const lines = [
    '',
    '=== Resultity demo is up ===',
    `API:        ${base}/v1   (model: ${DEMO_MODEL}, two simulated nodes)`,
    `Namespace:  ${ns.id} with 100 credits`,
    `API key:    ${secret}   (shown once; stored only as a hash)`,
    '',
    `Explorer:   ${base}/app/   (public: the network live, mainnet beside testnet)`,
    `Console:    ${base}/app/console    sign in as ${consumer.email} / ${consumer.password}`,
    `Operator:   ${base}/app/operator   sign in as ${operator.email} / ${operator.password}   (the two nodes' operator)`,
    generated.length ? `Generated for this run only: ${generated.join(', ')} (set them in the environment to keep them).` : '',
    '',
    'Try it with curl:',
    `  curl -s ${base}/v1/chat/completions -H 'Authorization: Bearer ${secret}' -H 'Content-Type: application/json' \\`,
    `    -d '{"model":"${DEMO_MODEL}","messages":[{"role":"user","content":"Hello!"}],"max_tokens":32}'`,
    '',
    'Or with the official openai npm client (npm install openai), saved as demo.mjs and run with node demo.mjs:',
    `  import OpenAI from 'openai';`,
    `  const client = new OpenAI({ baseURL: '${base}/v1', apiKey: '${secret}' });`,
    `  const r = await client.chat.completions.create({ model: '${DEMO_MODEL}', messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 32 });`,
    `  console.log(r.choices[0].message.content, r.usage);`,
    '',
    'Ctrl-C stops the backbone, the nodes and the embedded FerretDB.',
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

/** Signs up a demo account through the account API (so that it can sign in to the consoles); its id, email and password. */
async function demoAccount(base: string, email: string): Promise<{ id: string; email: string; password: string; session: string }> {
  const password = randomBytes(12).toString('base64url');
  const res = await fetch(`${base}/account/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) });
  if (res.status !== 201) throw new Error(`demo: signing up ${email} failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { account: { id: string }; token: string };
  return { id: body.account.id, email, password, session: body.token };
}

/** Enrols a node's address to the demo operator through the account API, as an operator would. */
async function enrolDemoNode(base: string, operator: { session: string }, node: string): Promise<void> {
  const res = await fetch(`${base}/account/nodes/enrolments`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${operator.session}` },
    body: JSON.stringify({ node }),
  });
  if (res.status !== 201) throw new Error(`demo: enrolling node ${node} failed: ${res.status} ${await res.text()}`);
}
