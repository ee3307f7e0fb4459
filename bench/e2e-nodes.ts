// The e2e benchmark's node fleet, in a process of its own (forked by bench/e2e.ts): simulated nodes at
// 0 ms latency, run by the real node agent (src/node-agent), connected to the backbone's gateway like any
// operator's nodes. Each runtime call is timed, so that the benchmark can subtract what the node itself
// spent from the latency the client saw.
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { startNodeAgent, type NodeAgent } from '../src/node-agent/agent.js';
import { SimulatedRuntime } from '../src/node-agent/runtime.simulated.js';
import type { InferenceRuntime } from '../src/node-agent/runtime.js';
import { serveParent } from './ipc.js';

export interface FleetParams {
  gatewayUrl: string;
  operator: string;
  /** One node per key, each enrolled to `operator` beforehand (a node binds only with its operator's consent). */
  privateKeys: string[];
  capacity: number;
  model: string;
  completionTokens: number;
}

/** Time spent inside the runtime (the node's own work) since the last take. */
export interface RuntimeTimes {
  calls: number;
  totalMs: number;
  maxMs: number;
}

let times: RuntimeTimes = { calls: 0, totalMs: 0, maxMs: 0 };
const agents: NodeAgent[] = [];

/** Wraps a runtime to time each completion (the node's own work, as the agent sees it). */
function timed(inner: InferenceRuntime): InferenceRuntime {
  return {
    name: inner.name,
    models: () => inner.models(),
    async complete(model, request, signal, onDelta) {
      const t0 = performance.now();
      try {
        return await inner.complete(model, request, signal, onDelta);
      } finally {
        const ms = performance.now() - t0;
        times.calls++;
        times.totalMs += ms;
        if (ms > times.maxMs) times.maxMs = ms;
      }
    },
  };
}

serveParent(
  {
    async start(p: FleetParams): Promise<string[]> {
      for (const privateKey of p.privateKeys) {
        const agent = await startNodeAgent({
          gatewayUrl: p.gatewayUrl,
          privateKey,
          operator: p.operator,
          runtime: timed(new SimulatedRuntime({ models: [p.model], latencyMs: 0, completionTokens: p.completionTokens })),
          capacity: p.capacity,
          logger: pino({ level: 'warn' }),
          reconnect: true,
        });
        agents.push(agent);
      }
      return agents.map((a) => a.nodeId);
    },
    takeRuntimeTimes(): RuntimeTimes {
      const t = times;
      times = { calls: 0, totalMs: 0, maxMs: 0 };
      return t;
    },
    async stop(): Promise<number> {
      await Promise.all(agents.map((a) => a.stop()));
      return agents.reduce((n, a) => n + a.completed, 0);
    },
  },
  () => {
    for (const a of agents) a.kill();
    process.exit(0);
  },
);
