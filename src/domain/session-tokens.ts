// Account-API session tokens (`rs_...`): see bearer-secrets.ts.
import { bearerSecretKind } from './bearer-secrets.js';

const sessions = bearerSecretKind('rs_');

export function generateSessionToken(): { token: string; hash: Buffer } {
  const { secret, hash } = sessions.generate();
  return { token: secret, hash };
}

export const hashSessionToken = sessions.hash;
export const looksLikeSessionToken = sessions.looksLike;
