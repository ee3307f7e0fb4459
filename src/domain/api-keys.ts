// API key secrets (`rk_...`): see bearer-secrets.ts.
import { bearerSecretKind } from './bearer-secrets.js';

const PREFIX = 'rk_';
const apiKeys = bearerSecretKind(PREFIX);

export function generateApiKey(): { secret: string; hash: Buffer; displayPrefix: string } {
  const { secret, hash } = apiKeys.generate();
  return { secret, hash, displayPrefix: secret.slice(0, PREFIX.length + 6) };
}

export const hashApiKey = apiKeys.hash;
export const looksLikeApiKey = apiKeys.looksLike;

/** An active API key as requests see it: its namespace and limits (catalog/catalog.service.ts keeps them in memory). */
export interface ApiKeyPrincipal {
  keyId: string;
  namespaceId: string;
  rateLimitRps: number | null;
  rateLimitBurst: number | null;
  monthlyCapMicro: number | null;
  /** Milliseconds since the epoch; null: never expires. Checked at every use (a kept copy may outlive it). */
  expiresAt: number | null;
}
