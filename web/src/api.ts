// The backbone's HTTP API from the browser: same origin only (the CSP allows nothing else). Account-API
// calls carry the session token; a 401 ends the session and sends the user to sign in.
import type { ApiErrorBody } from './api-types.js';
import { getSession, setSession } from './session.js';
import { navigate } from './router.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function errorOf(res: Response): Promise<ApiError> {
  try {
    const body = (await res.json()) as Partial<ApiErrorBody>;
    if (body.error) return new ApiError(res.status, body.error.code, body.error.message);
  } catch {
    // not JSON: fall through
  }
  return new ApiError(res.status, 'http_error', `${res.status} ${res.statusText}`);
}

/** A JSON call; `auth` sends the session token. 204 answers resolve to undefined. */
export async function api<T>(method: string, path: string, body?: unknown, auth = true): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const session = getSession();
  if (auth && session) headers.authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  if (!res.ok) {
    const err = await errorOf(res);
    if (auth && res.status === 401 && err.code !== 'invalid_credentials') {
      setSession(null);
      navigate('/signin');
    }
    throw err;
  }
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** Downloads an authenticated resource (a CSV report) as a file the browser saves. */
export async function download(path: string, filename: string): Promise<void> {
  const session = getSession();
  const res = await fetch(path, { headers: session ? { authorization: `Bearer ${session.token}` } : {}, cache: 'no-store' });
  if (!res.ok) throw await errorOf(res);
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
