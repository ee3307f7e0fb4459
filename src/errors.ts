// Domain errors with stable codes. Services throw these; one place (cloud/errors.http.ts) maps them to
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

export class AppError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly code: string,
    message: string,
    readonly details: { param?: string; retryAfterSeconds?: number } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AppError';
  }
}

export const errors = {
  invalid: (message: string, param?: string) => new AppError('invalid_request', 'invalid_request', message, param ? { param } : {}),
  /** A failed schema validation as a 400 naming its first problem's field (`fallback` when there is none). */
  invalidInput: (issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>, fallback: string) => {
    const issue = issues[0];
    const path = issue ? issue.path.map(String).join('.') : '';
    return errors.invalid(issue ? `${path || 'body'}: ${issue.message}` : fallback, path || undefined);
  },
  unauthenticated: (message = 'Incorrect API key provided.') => new AppError('unauthenticated', 'invalid_api_key', message),
  insufficientCredits: (needed: number, available: number) =>
    new AppError(
      'insufficient_credits',
      'insufficient_credits',
      `Insufficient credits: this request may cost up to ${formatCredits(needed)} credits and the namespace has ${formatCredits(available)} available.`,
    ),
  monthlyCapReached: (needed: number, left: number) =>
    new AppError(
      'insufficient_credits',
      'monthly_cap_reached',
      `This API key's monthly credit cap is reached: the request may cost up to ${formatCredits(needed)} credits and the key has ${formatCredits(left)} left this month.`,
    ),
  modelNotFound: (model: string) => new AppError('not_found', 'model_not_found', `The model '${model}' does not exist.`, { param: 'model' }),
  jobNotFound: (id: string) => new AppError('not_found', 'job_not_found', `No job with id '${id}'.`),
  notFound: (what: string) => new AppError('not_found', 'not_found', `${what} not found.`),
  rateLimited: (retryAfterSeconds: number) =>
    new AppError('rate_limited', 'rate_limit_exceeded', 'Rate limit reached for this API key (or for its account, whose keys share one limit). Retry after the time given in Retry-After.', { retryAfterSeconds }),
  /** `where` narrows the message to the caller's placement, e.g. "on testnet in region eu-west". */
  noNode: (model: string, retryAfterSeconds: number, where = '') =>
    new AppError('unavailable', 'model_unavailable', `No node is serving the model '${model}'${where ? ` ${where}` : ''} right now.`, { retryAfterSeconds }),
  conflict: (message: string, code = 'conflict') => new AppError('conflict', code, message),
  // The account API (gate/account.service.ts)
  /** The same answer whether the email is unknown, has no password, or the password is wrong. */
  invalidCredentials: () => new AppError('unauthenticated', 'invalid_credentials', 'Incorrect email or password.'),
  invalidSession: (message = 'Invalid or expired session. Sign in again and send the token as Authorization: Bearer <token>.') =>
    new AppError('unauthenticated', 'invalid_session', message),
  tooManySignInAttempts: (retryAfterSeconds: number) =>
    new AppError('rate_limited', 'too_many_attempts', 'Too many sign-in attempts. Retry after the time given in Retry-After.', { retryAfterSeconds }),
  siweRejected: (reason: string) => new AppError('unauthenticated', 'siwe_rejected', `Sign-In with Ethereum refused: ${reason}.`),
  siweDisabled: () =>
    new AppError('forbidden', 'siwe_disabled', 'Sign-In with Ethereum is not enabled on this server (its operator has not set SIWE_DOMAIN).'),
  /** An engine this request cannot be served without is unreachable (degraded mode): retry later. */
  engineUnavailable: (what: string, retryAfterSeconds = 5, cause?: unknown) =>
    new AppError('unavailable', 'engine_unavailable', `${what} is unavailable right now; retry after the time given in Retry-After.`, { retryAfterSeconds }, cause === undefined ? undefined : { cause }),
  /** The job's deadline passed before it was recorded (a stalled accept or a skewed clock): nothing was charged. */
  acceptTooLate: (cause: unknown) =>
    new AppError('unavailable', 'accept_too_late', 'The job could not be recorded before its deadline; nothing was charged. Retry the request.', { retryAfterSeconds: 1 }, { cause }),
};

/** Ledger amounts are integer micro-credits; 1 credit = 1,000,000 µcr. */
export const MICRO = 1_000_000;
export function formatCredits(micro: number): string {
  return (micro / MICRO).toFixed(6);
}
