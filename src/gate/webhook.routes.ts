// The account API's webhook endpoints of a namespace (mounted inside the authenticated scope of
// account.routes.ts): make, list, delete, enable again; an endpoint's messages with their attempts, and
// redelivery of one; and the namespace's notices (an endpoint disabled after persistent failure: how its
// owner is told). Another account's namespace is a 404, like one that does not exist.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { errors } from '../errors.js';
import { parse, uuid } from '../http/parse.http.js';
import { text } from '../domain/wire-strings.js';
import type { AccountPrincipal } from './account.service.js';
import type { NamespaceConsoleService } from './namespace-console.service.js';
import type { WebhooksService } from '../webhooks/webhooks.service.js';
import { WEBHOOK_EVENTS } from '../postgres/webhooks.repository.js';
import { idParams, routeSchema, type RouteDoc } from '../openapi/route-schema.js';

const createBody = z
  .object({
    url: text().min(1).max(2048),
    events: z.array(z.enum(WEBHOOK_EVENTS)).min(1),
    low_credits_threshold: z.number().min(0).max(1e9).optional().describe('credits.low fires when available credits fall below this (default 1)'),
    description: text().max(200).optional(),
  })
  .strict();
const nsParams = idParams('id');
const endpointParams = idParams('id', 'webhookId');
const messageParams = z.object({ id: z.uuid(), webhookId: z.uuid(), messageId: z.string().regex(/^msg_[0-9a-f]{32}$/) });
const limitQuery = z.object({ limit: z.coerce.number().int().min(1).max(500).default(50) });
const own = (summary: string, more: Partial<RouteDoc> = {}) => routeSchema({ summary, tags: ['Account API'], auth: 'session', ...more });

function caller(request: FastifyRequest): AccountPrincipal {
  if (!request.account) throw errors.invalidSession();
  return request.account;
}

export function webhookRoutes(r: FastifyInstance, namespaces: NamespaceConsoleService, webhooks: WebhooksService): void {
  const owned = async (req: FastifyRequest, id: string) => {
    const ns = parse(uuid, id);
    await namespaces.owned(caller(req), ns);
    return ns;
  };

  r.post<{ Params: { id: string } }>(
    '/account/namespaces/:id/webhooks',
    { schema: own('Adds a webhook endpoint; its signing secret (whsec_...) is shown once', { params: nsParams, body: createBody }) },
    async (req, reply) => {
      const ns = await owned(req, req.params.id);
      const body = parse(createBody, req.body);
      const made = await webhooks.create(ns, { url: body.url, events: body.events, lowCreditsThreshold: body.low_credits_threshold, description: body.description });
      return reply.code(201).header('cache-control', 'no-store').send({ ...made.endpoint, secret: made.secret });
    },
  );

  r.get<{ Params: { id: string } }>('/account/namespaces/:id/webhooks', { schema: own("A namespace's webhook endpoints and their state", { params: nsParams }) }, async (req) => ({
    data: await webhooks.list(await owned(req, req.params.id)),
  }));

  r.delete<{ Params: { id: string; webhookId: string } }>(
    '/account/namespaces/:id/webhooks/:webhookId',
    { schema: own('Deletes a webhook endpoint and its messages', { params: endpointParams }) },
    async (req, reply) => {
      await webhooks.remove(await owned(req, req.params.id), parse(uuid, req.params.webhookId));
      return reply.code(204).send();
    },
  );

  r.post<{ Params: { id: string; webhookId: string } }>(
    '/account/namespaces/:id/webhooks/:webhookId/enable',
    { schema: own('Enables a webhook endpoint disabled after persistent failure', { params: endpointParams }) },
    async (req) => webhooks.enable(await owned(req, req.params.id), parse(uuid, req.params.webhookId)),
  );

  r.get<{ Params: { id: string; webhookId: string }; Querystring: { limit?: string } }>(
    '/account/namespaces/:id/webhooks/:webhookId/messages',
    { schema: own("A webhook endpoint's messages, newest first, with their delivery attempts", { params: endpointParams, querystring: limitQuery }) },
    async (req) => ({
      data: await webhooks.messages(await owned(req, req.params.id), parse(uuid, req.params.webhookId), parse(limitQuery, req.query).limit),
    }),
  );

  r.post<{ Params: { id: string; webhookId: string; messageId: string } }>(
    '/account/namespaces/:id/webhooks/:webhookId/messages/:messageId/redeliver',
    { schema: own('Queues a message for delivery again', { params: messageParams }) },
    async (req, reply) => {
      const p = parse(messageParams, req.params);
      await webhooks.redeliver(await owned(req, p.id), p.webhookId, p.messageId);
      return reply.code(202).send({ queued: true });
    },
  );

  r.get<{ Params: { id: string }; Querystring: { limit?: string } }>(
    '/account/namespaces/:id/notices',
    { schema: own("A namespace's notices, newest first (e.g. a webhook endpoint disabled after persistent failure)", { params: nsParams, querystring: limitQuery }) },
    async (req) => ({ data: await webhooks.notices(await owned(req, req.params.id), parse(limitQuery, req.query).limit) }),
  );
}
