// GET /readyz: each engine's state as this process sees it, and what that means for serving. Every probe
// is bounded (an engine that hangs reads as down, instead of hanging the probe), and one whose client
// already knows its connection is gone is not sent at all.
//
//   ready      200  every engine answered
//   degraded   200  PostgreSQL answered, another engine did not: the process still serves what it can
//                   (Redis down: rate limits in process, streaming refused with 503; RabbitMQ down: jobs
//                   accepted wait in the outbox; MongoDB down: inputs and outputs are written behind).
//                   Every instance shares the engines, so taking this one out of rotation would gain nothing.
//   not_ready  503  PostgreSQL did not answer: no job can be accepted or settled.
import { ENGINES, setEngineUp, type Engine } from '../metrics/degraded.js';

export type EngineState = 'ok' | 'down';
export type Readiness = { status: 'ready' | 'degraded' | 'not_ready' } & Record<Engine, EngineState>;

/** A probe per engine: a promise-returning check, or false when the client already knows it is disconnected. */
export type EngineProbes = Record<Engine, (() => Promise<unknown>) | false>;

export async function probeEngines(probes: EngineProbes, timeoutMs: number): Promise<Readiness> {
  const states = await Promise.all(ENGINES.map(async (engine) => [engine, await probeOne(probes[engine], timeoutMs)] as const));
  const byEngine = Object.fromEntries(states) as Record<Engine, EngineState>;
  for (const [engine, state] of states) setEngineUp(engine, state === 'ok');
  const status = byEngine.postgres === 'down' ? 'not_ready' : states.every(([, s]) => s === 'ok') ? 'ready' : 'degraded';
  return { status, ...byEngine };
}

async function probeOne(probe: (() => Promise<unknown>) | false, timeoutMs: number): Promise<EngineState> {
  if (probe === false) return 'down';
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<EngineState>((resolve) => (timer = setTimeout(() => resolve('down'), timeoutMs)));
  try {
    return await Promise.race([probe().then((): EngineState => 'ok', (): EngineState => 'down'), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
