// Calls and events between the fleet benchmark (bench/fleet.ts) and the processes it forks (the gateway,
// bench/fleet-gateway.ts, and the load generators, bench/fleet-generator.ts), over Node's IPC channel.
// The children are forked with `serialization: 'advanced'`, so typed arrays and Maps cross as they are.
import { fork, type ChildProcess } from 'node:child_process';

interface Call {
  kind: 'call';
  id: number;
  method: string;
  params: unknown;
}
interface Answer {
  kind: 'answer';
  id: number;
  ok: boolean;
  value: unknown;
}
interface Emitted {
  kind: 'event';
  name: string;
  data: unknown;
}
type Wire = Call | Answer | Emitted;

/** The parent's end of a forked child: calls its methods, hears its events, notices it dying. */
export class Child {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<string, Array<(data: unknown) => void>>();
  /** Resolves with the exit code (or the signal's name) when the child has exited. */
  readonly exited: Promise<number | string>;

  private constructor(
    readonly name: string,
    readonly process: ChildProcess,
  ) {
    process.on('message', (m: Wire) => {
      if (m.kind === 'answer') {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.ok) p?.resolve(m.value);
        else p?.reject(new Error(`${name}: ${String(m.value)}`));
      } else if (m.kind === 'event') {
        for (const fn of this.listeners.get(m.name) ?? []) fn(m.data);
      }
    });
    this.exited = new Promise((resolve) => {
      process.once('exit', (code, signal) => {
        const how = code ?? signal ?? 'unknown';
        for (const p of this.pending.values()) p.reject(new Error(`${name} exited (${how}) before answering`));
        this.pending.clear();
        resolve(how);
      });
    });
  }

  /** Forks `module` (a compiled .js file) with the given node flags; its stderr and stdout are this process's. */
  static fork(name: string, module: URL, execArgv: string[] = []): Child {
    return new Child(name, fork(module, [], { execArgv, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  }

  get pid(): number {
    return this.process.pid ?? -1;
  }

  call<T>(method: string, params: unknown = null, timeoutMs = 120_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: ${method} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.process.send({ kind: 'call', id, method, params } satisfies Call);
    });
  }

  on(name: string, fn: (data: unknown) => void): void {
    this.listeners.set(name, [...(this.listeners.get(name) ?? []), fn]);
  }

  /** Resolves with the first `name` event's data. */
  once<T>(name: string, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no ${name} within ${timeoutMs} ms`)), timeoutMs);
      this.on(name, (data) => {
        clearTimeout(timer);
        resolve(data as T);
      });
      void this.exited.then((how) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (${how}) before ${name}`));
      });
    });
  }

  /** Kills the child outright (the run's deadline, or a failed start), unless it has exited already. */
  kill(): void {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill('SIGKILL');
  }
}

export type Handlers = Record<string, (params: never) => unknown>;

/**
 * The child's end: answers the parent's calls with `handlers` and sends events. When the parent goes
 * away (its IPC channel closes), `onOrphaned` runs: a child never outlives the benchmark that started it.
 */
export function serveParent(handlers: Handlers, onOrphaned: () => void): { emit(name: string, data?: unknown): void } {
  if (!process.send) throw new Error('this module runs as a child forked by bench/fleet.ts, not on its own');
  const send = (m: Wire) => {
    if (process.connected) process.send!(m);
  };
  process.on('message', (m: Wire) => {
    if (m.kind !== 'call') return;
    const handler = handlers[m.method];
    if (!handler) return send({ kind: 'answer', id: m.id, ok: false, value: `no method ${m.method}` });
    Promise.resolve()
      .then(() => (handler as (p: unknown) => unknown)(m.params))
      .then(
        (value) => send({ kind: 'answer', id: m.id, ok: true, value }),
        (err: unknown) => send({ kind: 'answer', id: m.id, ok: false, value: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
      );
  });
  process.once('disconnect', onOrphaned);
  return { emit: (name, data = null) => send({ kind: 'event', name, data }) };
}
