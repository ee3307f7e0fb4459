// A route's OpenAPI description, made from the same zod schemas its handler parses the request with
// (zod's own JSON Schema output, draft 2020-12, which OpenAPI 3.1 uses). Handlers keep validating with
// zod themselves, so that every refusal has the API's one error shape: the JSON Schemas given to Fastify
// here describe and never validate (the app's validator compiler passes them through: openapi.plugin.ts).
import type { FastifySchema } from 'fastify';
import { z } from 'zod';

/** Who may call a route: an API key (the public API), an account session, or anyone. */
export type RouteAuth = 'apiKey' | 'session' | 'none';

export interface RouteDoc {
  summary: string;
  description?: string;
  tags: [string, ...string[]];
  auth: RouteAuth;
  body?: z.ZodType;
  querystring?: z.ZodType;
  params?: z.ZodType;
}

/** JSON Schema of what a client sends (`io: 'input'`: before defaults and transforms apply). */
export function requestJsonSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _draft, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

export function routeSchema(d: RouteDoc): FastifySchema {
  return {
    summary: d.summary,
    ...(d.description ? { description: d.description } : {}),
    tags: d.tags,
    security: d.auth === 'none' ? [] : [{ [d.auth]: [] }],
    ...(d.body ? { body: requestJsonSchema(d.body) } : {}),
    ...(d.querystring ? { querystring: requestJsonSchema(d.querystring) } : {}),
    ...(d.params ? { params: requestJsonSchema(d.params) } : {}),
  };
}

/** A path of one UUID parameter, `:id` (and more by name). */
export const idParams = (...names: [string, ...string[]]) => z.object(Object.fromEntries(names.map((n) => [n, z.uuid()])));
