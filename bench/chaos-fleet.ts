// The chaos run's node fleet (forked by bench/chaos.ts): simulated nodes run by the real node agent,
// spread over the io instances, reconnecting on their own when their io process dies. `drop` is the
// run's "dropped node connections" fault: it kills some agents' sockets outright (no goodbye) and starts
// them again with the same key, as a node whose network blinked does.
import { pino } from 'pino';
import { startNodeAgent, type NodeAgent } from '../src/node-agent/agent.js';
import { SimulatedRuntime } from '../src/node-agent/runtime.simulated.js';
import { serveParent } from './ipc.js';

export interface ChaosFleetParams {
  /** One gateway URL per io instance; node i connects to gatewayUrls[i % n]. */
  gatewayUrls: string[];
  operator: string;
  privateKeys: string[];
  capacity: number;
  model: string;
  latencyMs: number;
  completionTokens: number;
}

let params: ChaosFleetParams | null = null;
const agents: NodeAgent[] = [];

function start(p: ChaosFleetParams, i: number): Promise<NodeAgent> {
  return startNodeAgent({
    gatewayUrl: p.gatewayUrls[i % p.gatewayUrls.length]!,
    privateKey: p.privateKeys[i]!,
    operator: p.operator,
    runtime: new SimulatedRuntime({ models: [p.model], latencyMs: p.latencyMs, completionTokens: p.completionTokens }),
    capacity: p.capacity,
    logger: pino({ level: 'silent' }),
    reconnect: true,
  });
}

serveParent(
  {
    async start(p: ChaosFleetParams): Promise<number> {
      params = p;
      for (let i = 0; i < p.privateKeys.length; i++) agents.push(await start(p, i));
      return agents.length;
    },
    /** Kills `count` random agents' connections and starts them again (same key); resolves with how many came back. */
    async drop(count: number): Promise<number> {
      const p = params!;
      const picked = [...agents.keys()].sort(() => Math.random() - 0.5).slice(0, count);
      for (const i of picked) agents[i]!.kill();
      let back = 0;
      for (const i of picked) {
        // The io that held it may be down at this moment (another fault): retried until it takes it.
        for (let tries = 0; tries < 50; tries++) {
          try {
            agents[i] = await start(p, i + tries);
            back++;
            break;
          } catch {
            await new Promise((r) => setTimeout(r, 200));
          }
        }
      }
      return back;
    },
    async stop(): Promise<number> {
      await Promise.all(agents.map((a) => a.stop().catch(() => undefined)));
      return agents.length;
    },
  },
  () => {
    for (const a of agents) a.kill();
    process.exit(0);
  },
);
