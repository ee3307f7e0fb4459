// The one place domain errors become HTTP responses, in OpenAI's error shape:
//   { "error": { "message", "type", "param", "code" } }
// so that the official clients raise their usual exception classes (AuthenticationError, RateLimitError...).
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, ERROR_CATALOGUE, errors, isErrorCode, type ErrorKind } from '../errors.js';

const STATUS: Record<ErrorKind, number> = {
  invalid_request: 400,
  unauthenticated: 401,
  insufficient_credits: 402,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  rate_limited: 429,
  internal: 500,
  job_failed: 502,
  unavailable: 503,
  job_expired: 504,
};

const TYPE: Record<ErrorKind, string> = {
  invalid_request: 'invalid_request_error',
  unauthenticated: 'authentication_error',
  insufficient_credits: 'insufficient_quota',
  forbidden: 'permission_error',
  not_found: 'invalid_request_error',
  conflict: 'invalid_request_error',
  too_large: 'invalid_request_error',
  rate_limited: 'rate_limit_error',
  internal: 'server_error',
  job_failed: 'server_error',
  unavailable: 'server_error',
  job_expired: 'server_error',
};

/** The HTTP status of a code: its kind's, unless the catalogue names its own (408, 431). */
export function httpStatusOfCode(code: string, kind: ErrorKind): number {
  const entry = isErrorCode(code) ? ERROR_CATALOGUE[code] : undefined;
  return entry && 'status' in entry ? entry.status : STATUS[kind];
}

export function openAiError(kind: ErrorKind, code: string, message: string, param: string | null = null) {
  return { error: { message, type: TYPE[kind], param, code } };
}

export function sendAppError(reply: FastifyReply, err: AppError): FastifyReply {
  if (err.details.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.details.retryAfterSeconds));
  // A failed or expired job was a real job: the official clients retry 5xx (and 409) by default, which
  // would submit (and possibly pay for) it again, or repeat a request that cannot succeed. This header
  // tells them not to.
  if (err.kind === 'job_failed' || err.kind === 'job_expired' || err.kind === 'conflict') reply.header('x-should-retry', 'false');
  return reply.code(httpStatusOfCode(err.code, err.kind)).send(openAiError(err.kind, err.code, err.message, err.details.param ?? null));
}

/**
 * The node protocol's HTTP answer (io: /io/config, /io/results): the same codes and statuses as every
 * interface (ERROR_CATALOGUE), in the shape the node agent reads, `{error: {code, message}}`.
 */
export function sendNodeError(reply: FastifyReply, err: AppError): FastifyReply {
  return reply.code(httpStatusOfCode(err.code, err.kind)).send({ error: { code: err.code, message: err.message } });
}

/**
 * Fastify's error handler: domain errors map by kind, framework errors by status, an engine's connection
 * lost (as `engineUnreachable` tells it: the composition root passes the engine folders' own test) is a
 * 503 to retry, and anything else is a 500 that hides its details.
 */
export function httpErrorHandler(engineUnreachable: (err: unknown) => boolean = () => false) {
  return (err: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply => handleError(err, request, reply, engineUnreachable);
}

function handleError(err: FastifyError | Error, request: FastifyRequest, reply: FastifyReply, engineUnreachable: (err: unknown) => boolean): FastifyReply {
  if (err instanceof AppError) return sendAppError(reply, err);
  const fe = err as FastifyError;
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return sendAppError(reply, new AppError('request_too_large', 'The request body exceeds the size limit.'));
  }
  if (fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500) {
    return reply.code(fe.statusCode).send(openAiError('invalid_request', fe.code ?? 'invalid_request', fe.message));
  }
  // An engine (Redis) went away under a request that needs it (degraded mode, DESIGN.md invariant 5): a 503 to retry, not a 500.
  if (engineUnreachable(err)) {
    request.log.warn({ err }, 'an engine is unreachable: answered 503');
    return sendAppError(reply, errors.engineUnavailable('A service this request needs', 5, err));
  }
  request.log.error({ err }, 'unhandled error');
  return sendAppError(reply, new AppError('internal_error', 'The server had an error while processing your request.'));
}

/**
 * Node's answers to a request it could not read as HTTP (malformed: 400; headers past the size limit: 431;
 * not arrived whole within HTTP_REQUEST_TIMEOUT_MS: 408), in the same error shape as every other answer,
 * instead of Fastify's own. The connection is closed after it: its request was never understood.
 */
export function httpClientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const answer =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new AppError('request_timeout', 'The request did not arrive whole in time.')
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? new AppError('headers_too_large', 'The request headers exceed the size limit.')
        : new AppError('malformed_request', 'The request is not valid HTTP.');
  const status = httpStatusOfCode(answer.code, answer.kind);
  const body = JSON.stringify(openAiError(answer.kind, answer.code, answer.message));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}
