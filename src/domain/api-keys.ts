// API key secrets: 32 random bytes, shown once, stored only as their SHA-256.
import { createHash, randomBytes } from 'node:crypto';

const PREFIX = 'rk_';

export function generateApiKey(): { secret: string; hash: Buffer; displayPrefix: string } {
  const secret = PREFIX + randomBytes(32).toString('base64url');
  return { secret, hash: hashApiKey(secret), displayPrefix: secret.slice(0, PREFIX.length + 6) };
}

export function hashApiKey(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/** Cheap shape check before any lookup: refuses obvious garbage without touching Redis or PostgreSQL. */
export function looksLikeApiKey(s: string): boolean {
  return s.startsWith(PREFIX) && s.length === PREFIX.length + 43 && /^[A-Za-z0-9_-]+$/.test(s.slice(PREFIX.length));
}
