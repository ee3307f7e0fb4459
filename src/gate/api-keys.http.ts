// The wire form of API-key issuance, shared by the admin API and the account API: the request body, its
// translation to the service's options, and the answer (the key's row plus its secret, shown once).
import { z } from 'zod';
import { text } from '../domain/wire-strings.js';
import type { KeyOptions } from './api-keys-admin.service.js';
import type { ApiKeyRow } from '../postgres/api-keys.repository.js';

export const issueKeyBody = z.object({
  name: text().max(100).optional(),
  rate_limit_rps: z.number().int().positive().max(100_000).optional(),
  rate_limit_burst: z.number().int().positive().max(1_000_000).optional(),
  monthly_cap: z.number().min(0).optional(),
  expires_at: z.string().datetime({ offset: true }).optional(),
});

export function keyOptionsFrom(body: z.infer<typeof issueKeyBody>): KeyOptions {
  return {
    name: body.name,
    rateLimitRps: body.rate_limit_rps,
    rateLimitBurst: body.rate_limit_burst,
    monthlyCapCredits: body.monthly_cap,
    expiresAt: body.expires_at === undefined ? undefined : new Date(body.expires_at),
  };
}

export function issuedKey({ key, secret }: { key: ApiKeyRow; secret: string }): ApiKeyRow & { key: string } {
  return { ...key, key: secret };
}
