// Account-API session tokens: 32 random bytes (256 bits), handed to the client once, stored only as their
// SHA-256 (with that much entropy a fast hash is enough, as for API keys). A distinct prefix keeps the two
// kinds of bearer apart: a session token is never an API key (/v1) and an API key never a session
// (/account).
import { createHash, randomBytes } from 'node:crypto';

const PREFIX = 'rs_';

export function generateSessionToken(): { token: string; hash: Buffer } {
  const token = PREFIX + randomBytes(32).toString('base64url');
  return { token, hash: hashSessionToken(token) };
}

export function hashSessionToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Cheap shape check before any lookup. */
export function looksLikeSessionToken(s: string): boolean {
  return s.startsWith(PREFIX) && s.length === PREFIX.length + 43 && /^[A-Za-z0-9_-]+$/.test(s.slice(PREFIX.length));
}
