// Which request and job a log line belongs to, wherever in the code it is written: an AsyncLocalStorage
// store opened for each HTTP request (app.ts) and given the job's id once the job exists
// (cloud/routes.ts), read by the logger's mixin (common/logger.ts) on every line. Fastify's request
// logger binds `reqId` itself; service loggers (the process's root logger) get it from here, and both get
// `jobId`. A line written outside any request carries neither.
import { AsyncLocalStorage } from 'node:async_hooks';

interface LogContext {
  reqId: string;
  jobId?: string;
}

const context = new AsyncLocalStorage<LogContext>();

/** Runs `fn` (the rest of the request's handling) with the request's id in context. */
export function withRequestContext(reqId: string, fn: () => void): void {
  context.run({ reqId }, fn);
}

/** From now on, this request's log lines carry the job's id. */
export function bindJobToLogContext(jobId: string): void {
  const store = context.getStore();
  if (store) store.jobId = jobId;
}

/** pino's mixin: the context's ids that the logger does not bind already (no key twice in one line). */
export function logContextMixin(_merge: object, _level: number, logger: { bindings(): Record<string, unknown> }): Record<string, string> {
  const store = context.getStore();
  if (!store) return {};
  const bound = logger.bindings();
  const out: Record<string, string> = {};
  if (bound.reqId === undefined) out.reqId = store.reqId;
  if (store.jobId !== undefined && bound.jobId === undefined) out.jobId = store.jobId;
  return out;
}
