// What logs may say of a URL: the path, the query's parameter names, and its values except credentials.
// Clients put API keys and tokens in query strings (`?api_key=`, `?token=`) and engine URLs carry
// passwords (`amqp://user:password@host`); none of them belongs in a log line, which outlives the
// credential's rotation and is read by more people than the credential is meant for.

/** Query parameters whose values are credentials, by name (case-insensitive, anywhere in the name). */
const CREDENTIAL_PARAM = /key|token|secret|pass|auth|session|sig|credential|bearer|cookie|code/i;
export const REDACTED = '[redacted]';

/**
 * The URL with every credential replaced by REDACTED: the password of its user info and the values of
 * query parameters named like credentials. Accepts absolute URLs and request targets ("/v1/x?a=b").
 */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  const [head, query] = q < 0 ? [url, ''] : [url.slice(0, q), url.slice(q + 1)];
  const safeHead = head.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*):[^/@]*@/i, `$1:${REDACTED}@`);
  if (q < 0) return safeHead;
  const safeQuery = query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq < 0) return pair;
      let name = pair.slice(0, eq);
      try {
        name = decodeURIComponent(name);
      } catch {
        // a malformed escape: judge the name as written
      }
      return CREDENTIAL_PARAM.test(name) ? `${pair.slice(0, eq)}=${REDACTED}` : pair;
    })
    .join('&');
  return `${safeHead}?${safeQuery}`;
}
