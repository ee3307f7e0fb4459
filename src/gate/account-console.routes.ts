// The consoles' part of the account API (mounted by account.routes.ts inside its authenticated scope:
// a live session and nothing else). Consumers: a namespace's balance and holds, usage (JSON or CSV) and
// recent jobs. Operators: their nodes (and enrolling new ones), each node's contribution points, their earnings and withdrawals.
// Another account's namespace or node is a 404, exactly like one that does not exist.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { errors } from '../errors.js';
import { parse, uuid } from '../http/parse.http.js';
import { text } from '../domain/wire-strings.js';
import { sendUsage, type UsageQuery } from '../space/usage.http.js';
import type { UsageService } from '../space/usage.service.js';
import type { AccountPrincipal } from './account.service.js';
import type { NamespaceConsoleService } from './namespace-console.service.js';
import type { OperatorConsoleService } from './operator-console.service.js';
import { snapshotAccountRoutes } from '../snapshots/snapshot.routes.js';
import type { SnapshotService } from '../snapshots/snapshot.service.js';
import { idParams, routeSchema, type RouteDoc } from '../openapi/route-schema.js';
import { usageQuerySchema } from '../space/usage.http.js';
import type { WebhooksService } from '../webhooks/webhooks.service.js';
import { webhookRoutes } from './webhook.routes.js';

export interface AccountConsoleServices {
  namespaces: NamespaceConsoleService;
  operator: OperatorConsoleService;
  usage: UsageService;
  /** The operators' Merkle proofs of sealed contribution epochs. */
  snapshots?: SnapshotService;
  /** A namespace's webhook endpoints (webhook.routes.ts). */
  webhooks?: WebhooksService;
}

const limit = (max: number, dflt: number) => z.coerce.number().int().min(1).max(max).default(dflt);
const day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a day as YYYY-MM-DD').optional();

const enrolmentBody = z.object({ node: z.string() }).strict();
const enrolmentTokenBody = z.object({ node: z.string(), ttl_hours: z.number().positive().optional() }).strict();
const withdrawalBody = z.object({ amount: z.number().positive(), destination: text().trim().min(1).max(200) }).strict();
const nsParams = idParams('id');
const nodeParams = z.object({ id: z.string().describe('The node id (its EVM address)') });
const limitQuery = (max: number, dflt: number) => z.object({ limit: limit(max, dflt) });
const own = (summary: string, more: Partial<RouteDoc> = {}) => routeSchema({ summary, tags: ['Account API'], auth: 'session', ...more });

function caller(request: FastifyRequest): AccountPrincipal {
  if (!request.account) throw errors.invalidSession();
  return request.account;
}

/** Registers the console routes on `r`, a scope whose onRequest hook has authenticated the session. */
export function accountConsoleRoutes(r: FastifyInstance, { namespaces, operator, usage, snapshots, webhooks }: AccountConsoleServices): void {
  if (webhooks) webhookRoutes(r, namespaces, webhooks);

  // ---- Consumers: one of their namespaces ----------------------------------------------------------
  r.get<{ Params: { id: string } }>('/account/namespaces/:id/balance', { schema: own("A namespace's credits: available and held", { params: nsParams }) }, async (req) => namespaces.balance(caller(req), parse(uuid, req.params.id)));

  r.get<{ Params: { id: string }; Querystring: UsageQuery }>('/account/namespaces/:id/usage', { schema: own("A namespace's usage by day, model and key (JSON or CSV)", { params: nsParams, querystring: usageQuerySchema }) }, async (req, reply) => {
    const id = parse(uuid, req.params.id);
    await namespaces.owned(caller(req), id);
    return sendUsage(reply, usage, id, req.query);
  });

  r.get<{ Params: { id: string }; Querystring: { limit?: string } }>('/account/namespaces/:id/jobs', { schema: own("A namespace's recent jobs", { params: nsParams, querystring: limitQuery(500, 50) }) }, async (req) => ({
    data: await namespaces.recentJobs(caller(req), parse(uuid, req.params.id), parse(limitQuery(500, 50), req.query).limit),
  }));

  // ---- Operators: their nodes and money ------------------------------------------------------------
  r.get('/account/nodes', { schema: own("The operator's nodes") }, async (req) => ({ data: await operator.nodes(caller(req)) }));

  r.get<{ Params: { id: string } }>('/account/nodes/:id', { schema: own("One of the operator's nodes", { params: nodeParams }) }, async (req) => operator.node(caller(req), req.params.id));

  r.get<{ Params: { id: string }; Querystring: { limit?: string } }>('/account/nodes/:id/rcp', { schema: own("A node's contribution points by epoch", { params: nodeParams, querystring: limitQuery(1000, 30) }) }, async (req) => ({
    data: await operator.contributionPoints(caller(req), req.params.id, parse(limitQuery(1000, 30), req.query).limit),
  }));

  if (snapshots) snapshotAccountRoutes(r, snapshots, async (req, id) => (await operator.node(caller(req), id)).id);

  r.get<{ Querystring: { from?: string; to?: string } }>('/account/earnings', { schema: own("The operator's earnings by day", { querystring: z.object({ from: day, to: day }) }) }, async (req) =>
    operator.earnings(caller(req), { from: parse(day, req.query.from), to: parse(day, req.query.to) }),
  );

  // A node binds to an operator only with its consent: its address enrolled, or a token made for it.
  r.post('/account/nodes/enrolments', { schema: own("Enrols a node's address to this operator", { body: enrolmentBody }) }, async (req, reply) => {
    const body = parse(enrolmentBody, req.body);
    return reply.code(201).send(await operator.enrolNode(caller(req), body.node));
  });

  r.post('/account/nodes/enrolment-tokens', { schema: own('Makes an enrolment token for a node', { body: enrolmentTokenBody }) }, async (req, reply) => {
    const body = parse(enrolmentTokenBody, req.body);
    return reply.code(201).send(await operator.enrolmentToken(caller(req), body.node, body.ttl_hours));
  });

  r.get<{ Querystring: { limit?: string } }>('/account/withdrawals', { schema: own("The operator's withdrawal requests", { querystring: limitQuery(1000, 100) }) }, async (req) => ({
    data: await operator.withdrawals(caller(req), parse(limitQuery(1000, 100), req.query).limit),
  }));

  r.post('/account/withdrawals', { schema: own('Requests a withdrawal of earnings', { body: withdrawalBody }) }, async (req, reply) => {
    const body = parse(withdrawalBody, req.body);
    return reply.code(201).send(await operator.requestWithdrawal(caller(req), body.amount, body.destination));
  });
}
