// Bearer secrets (API keys, account-API session tokens): 32 random bytes (256 bits) behind a prefix that
// names their kind, handed to the client once and stored only as their SHA-256 (with that much entropy a
// fast hash is enough). The prefixes keep the kinds apart: a session token is never an API key and an
// API key never a session.
import { createHash, randomBytes } from 'node:crypto';

export interface BearerSecretKind {
  /** A fresh secret and the hash to store. */
  generate: () => { secret: string; hash: Buffer };
  hash: (secret: string) => Buffer;
  /** Cheap shape check before any lookup: refuses obvious garbage without touching Redis or PostgreSQL. */
  looksLike: (s: string) => boolean;
}

export function bearerSecretKind(prefix: string): BearerSecretKind {
  const hash = (secret: string) => createHash('sha256').update(secret, 'utf8').digest();
  return {
    generate: () => {
      const secret = prefix + randomBytes(32).toString('base64url');
      return { secret, hash: hash(secret) };
    },
    hash,
    looksLike: (s) => s.startsWith(prefix) && s.length === prefix.length + 43 && /^[A-Za-z0-9_-]+$/.test(s.slice(prefix.length)),
  };
}
