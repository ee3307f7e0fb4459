// Domain errors with stable codes. Services throw these; one place (http/errors.http.ts) maps them to
// the wire. `cause` is always kept so the original failure is never lost.

export type ErrorKind =
  | 'invalid_request'
  | 'unauthenticated'
  | 'forbidden'
  | 'insufficient_credits'
  | 'not_found'
  | 'too_large'
  | 'rate_limited'
  | 'unavailable'
  | 'job_failed'
  | 'job_expired'
  | 'conflict'
  | 'internal';

/**
 * Every error code the backbone answers with, as data: on the public API (OpenAI's error shape), the
 * account and admin APIs, the status page, and the node protocol (io: `{type: 'error', code, message}` on
 * the socket, `{error: {code, message}}` on its HTTP posts). Each code has one kind, from which the HTTP
 * status and OpenAI error type follow (src/http/errors.http.ts); on the node socket, a refused
 * registration also closes it. A job's own failure carries the code its ending recorded (the `job` group,
 * domain/job-states.ts endings).
 */
export const ERROR_CATALOGUE = {
  // Requests
  invalid_request: { kind: 'invalid_request', meaning: 'the request is malformed or a field is out of range; `param` names it' },
  unknown_route: { kind: 'not_found', meaning: 'no route has this method and path' },
  not_found: { kind: 'not_found', meaning: 'the thing named does not exist, or is not the caller\'s' },
  model_not_found: { kind: 'not_found', meaning: 'the catalogue has no such model or alias' },
  job_not_found: { kind: 'not_found', meaning: 'no job with this id in the caller\'s namespace' },
  output_expired: { kind: 'not_found', meaning: 'the job completed, but its output is past its retention' },
  request_timeout: { kind: 'invalid_request', status: 408, meaning: 'the request did not arrive whole within HTTP_REQUEST_TIMEOUT_MS; the connection is closed' },
  malformed_request: { kind: 'invalid_request', meaning: 'the request is not valid HTTP; the connection is closed' },
  headers_too_large: { kind: 'too_large', status: 431, meaning: 'the request headers pass the size limit; the connection is closed' },
  request_too_large: { kind: 'too_large', meaning: 'the body passes the size limit' },
  conflict: { kind: 'conflict', meaning: 'the change conflicts with the current state' },
  name_taken: { kind: 'conflict', meaning: 'the account already has a namespace with this name' },
  email_taken: { kind: 'conflict', meaning: 'an account with this email exists' },
  namespace_busy: { kind: 'conflict', meaning: 'the namespace has jobs in flight' },
  namespace_not_empty: { kind: 'conflict', meaning: 'the namespace still holds credits' },
  node_enrolled_elsewhere: { kind: 'conflict', meaning: 'the node address is enrolled by another operator' },
  version_taken: { kind: 'conflict', meaning: 'a network config version was published meanwhile' },
  job_not_finished: { kind: 'conflict', meaning: 'the job is still running: pin or delete it once it has ended' },
  nothing_to_pin: { kind: 'conflict', meaning: 'none of the job\'s payloads is held any more' },
  // Credentials and limits
  invalid_api_key: { kind: 'unauthenticated', meaning: 'the bearer API key is unknown, revoked or expired' },
  invalid_credentials: { kind: 'unauthenticated', meaning: 'wrong email or password (one answer for both)' },
  invalid_session: { kind: 'unauthenticated', meaning: 'the account session is unknown or expired' },
  siwe_rejected: { kind: 'unauthenticated', meaning: 'a Sign-In with Ethereum message or signature was refused' },
  siwe_disabled: { kind: 'forbidden', meaning: 'Sign-In with Ethereum is not enabled on this server' },
  forbidden: { kind: 'forbidden', meaning: 'the caller may not do this' },
  namespace_limit_reached: { kind: 'forbidden', meaning: 'the account has ACCOUNT_MAX_NAMESPACES live namespaces' },
  api_key_limit_reached: { kind: 'forbidden', meaning: 'the account has ACCOUNT_MAX_API_KEYS active keys' },
  insufficient_credits: { kind: 'insufficient_credits', meaning: 'the namespace cannot cover the request\'s worst-case cost' },
  monthly_cap_reached: { kind: 'insufficient_credits', meaning: 'the key\'s monthly cap would be passed' },
  rate_limit_exceeded: { kind: 'rate_limited', meaning: 'the key\'s or its account\'s rate limit; see Retry-After' },
  too_many_attempts: { kind: 'rate_limited', meaning: 'too many sign-in attempts; see Retry-After' },
  // The network's state
  model_unavailable: { kind: 'unavailable', meaning: 'no online node serves the model (where the caller may run); see Retry-After' },
  engine_unavailable: { kind: 'unavailable', meaning: 'an engine this request needs is unreachable; see Retry-After' },
  accept_too_late: { kind: 'unavailable', meaning: 'the job could not be recorded before its deadline; nothing was charged' },
  status_unavailable: { kind: 'unavailable', meaning: 'the status snapshot could not be computed' },
  snapshot_store_unavailable: { kind: 'unavailable', meaning: 'the snapshot store cannot be reached' },
  internal_error: { kind: 'internal', meaning: 'a failure of ours; the job, if accepted, goes on' },
  stream_inconsistent: { kind: 'internal', meaning: 'a streamed answer differs from the stored one' },
  // Jobs that ended without a result (the job's own error; domain/job-states.ts endings)
  job_failed: { kind: 'job_failed', meaning: 'the job failed; nothing was charged' },
  job_expired: { kind: 'job_expired', meaning: 'the job expired' },
  stream_timeout: { kind: 'job_expired', meaning: 'a streamed job ran past its deadline' },
  deadline_exceeded: { kind: 'job_expired', meaning: 'the job passed its deadline before a node completed it' },
  attempts_exhausted: { kind: 'job_failed', meaning: 'no node completed the job in its attempts' },
  no_node_available: { kind: 'job_failed', meaning: 'no eligible node was online for NO_NODE_GRACE_MS' },
  payload_missing: { kind: 'job_failed', meaning: 'the job\'s stored input is gone' },
  cancelled: { kind: 'job_failed', meaning: 'the job was cancelled by its client (POST /v1/jobs/{id}/cancel)' },
  stream_interrupted: { kind: 'job_failed', meaning: 'the streaming node failed after part of the answer was sent' },
  // The node protocol (io): on the socket, and on the HTTP posts of results
  invalid_message: { kind: 'invalid_request', meaning: 'not a JSON text frame of the protocol, or a field is wrong' },
  not_registered: { kind: 'unauthenticated', meaning: 'the socket must register first' },
  wrong_node: { kind: 'forbidden', meaning: 'the message names another node than the socket\'s' },
  already_registered: { kind: 'conflict', meaning: 'the socket is registered already' },
  bad_signature: { kind: 'unauthenticated', meaning: 'the message is not signed by the node it names' },
  bad_challenge: { kind: 'unauthenticated', meaning: 'the registration answers another challenge' },
  stale: { kind: 'invalid_request', meaning: 'the timestamp is outside NODE_MESSAGE_MAX_SKEW_MS' },
  replay: { kind: 'conflict', meaning: 'the nonce was used already' },
  not_accepted: { kind: 'forbidden', meaning: 'the node does not meet the network config (version, runtime, network)' },
  not_enrolled: { kind: 'forbidden', meaning: 'the operator has not enrolled this node address' },
  unknown_operator: { kind: 'forbidden', meaning: 'the registration names an operator account that does not exist' },
  bound_to_other_operator: { kind: 'forbidden', meaning: 'the node address is bound to another operator' },
  unknown_stream: { kind: 'invalid_request', meaning: 'no streamed attempt of that job runs on this connection' },
  invalid_chunk: { kind: 'invalid_request', meaning: 'a stream chunk out of order, too large, or after the end' },
  no_config: { kind: 'unavailable', meaning: 'the network has no config version yet' },
  internal: { kind: 'internal', meaning: 'the gateway failed handling the message' },
} as const satisfies Record<string, { kind: ErrorKind; meaning: string; status?: number }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CATALOGUE, code);
}

/** A failure the interfaces answer with: its code's kind decides the status (src/http/errors.http.ts). */
export class AppError extends Error {
  readonly kind: ErrorKind;
  readonly code: string;

  constructor(
    code: ErrorCode,
    message: string,
    readonly details: { param?: string; retryAfterSeconds?: number } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AppError';
    this.code = code;
    this.kind = ERROR_CATALOGUE[code].kind;
  }

  /**
   * A job that ended without a result, as its consumer learns it: the code its ending recorded (kept as
   * it is, even one this version no longer makes) under the kind of its status.
   */
  static jobEnded(status: 'failed' | 'expired', code: string | null, message: string | null): AppError {
    const err = new AppError(status === 'expired' ? 'job_expired' : 'job_failed', message ?? (status === 'expired' ? 'The job expired.' : 'The job failed; no credits were charged.'));
    if (code) (err as { code: string }).code = code;
    return err;
  }
}

export const errors = {
  invalid: (message: string, param?: string) => new AppError('invalid_request', message, param ? { param } : {}),
  /** A failed schema validation as a 400 naming its first problem's field (`fallback` when there is none). */
  invalidInput: (issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>, fallback: string) => {
    const issue = issues[0];
    const path = issue ? issue.path.map(String).join('.') : '';
    return errors.invalid(issue ? `${path || 'body'}: ${issue.message}` : fallback, path || undefined);
  },
  unauthenticated: (message = 'Incorrect API key provided.') => new AppError('invalid_api_key', message),
  insufficientCredits: (needed: number, available: number) =>
    new AppError('insufficient_credits',
      `Insufficient credits: this request may cost up to ${formatCredits(needed)} credits and the namespace has ${formatCredits(available)} available.`,
    ),
  monthlyCapReached: (needed: number, left: number) =>
    new AppError('monthly_cap_reached',
      `This API key's monthly credit cap is reached: the request may cost up to ${formatCredits(needed)} credits and the key has ${formatCredits(left)} left this month.`,
    ),
  modelNotFound: (model: string) => new AppError('model_not_found', `The model '${model}' does not exist.`, { param: 'model' }),
  jobNotFound: (id: string) => new AppError('job_not_found', `No job with id '${id}'.`),
  notFound: (what: string) => new AppError('not_found', `${what} not found.`),
  rateLimited: (retryAfterSeconds: number) =>
    new AppError('rate_limit_exceeded', 'Rate limit reached for this API key (or for its account, whose keys share one limit). Retry after the time given in Retry-After.', { retryAfterSeconds }),
  /** `where` narrows the message to the caller's placement, e.g. "on testnet in region eu-west". */
  noNode: (model: string, retryAfterSeconds: number, where = '') =>
    new AppError('model_unavailable', `No node is serving the model '${model}'${where ? ` ${where}` : ''} right now.`, { retryAfterSeconds }),
  conflict: (message: string, code: ErrorCode = 'conflict') => new AppError(code, message),
  // The account API (gate/account.service.ts)
  /** The same answer whether the email is unknown, has no password, or the password is wrong. */
  invalidCredentials: () => new AppError('invalid_credentials', 'Incorrect email or password.'),
  invalidSession: (message = 'Invalid or expired session. Sign in again and send the token as Authorization: Bearer <token>.') =>
    new AppError('invalid_session', message),
  tooManySignInAttempts: (retryAfterSeconds: number) =>
    new AppError('too_many_attempts', 'Too many sign-in attempts. Retry after the time given in Retry-After.', { retryAfterSeconds }),
  siweRejected: (reason: string) => new AppError('siwe_rejected', `Sign-In with Ethereum refused: ${reason}.`),
  siweDisabled: () =>
    new AppError('siwe_disabled', 'Sign-In with Ethereum is not enabled on this server (its operator has not set SIWE_DOMAIN).'),
  /** An engine this request cannot be served without is unreachable (degraded mode): retry later. */
  engineUnavailable: (what: string, retryAfterSeconds = 5, cause?: unknown) =>
    new AppError('engine_unavailable', `${what} is unavailable right now; retry after the time given in Retry-After.`, { retryAfterSeconds }, cause === undefined ? undefined : { cause }),
  /** The job's deadline passed before it was recorded (a stalled accept or a skewed clock): nothing was charged. */
  acceptTooLate: (cause: unknown) =>
    new AppError('accept_too_late', 'The job could not be recorded before its deadline; nothing was charged. Retry the request.', { retryAfterSeconds: 1 }, { cause }),
};

/** Ledger amounts are integer micro-credits; 1 credit = 1,000,000 µcr. */
export const MICRO = 1_000_000;
export function formatCredits(micro: number): string {
  return (micro / MICRO).toFixed(6);
}
