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

export interface AccountConsoleServices {
  namespaces: NamespaceConsoleService;
  operator: OperatorConsoleService;
  usage: UsageService;
  /** The operators' Merkle proofs of sealed contribution epochs. */
  snapshots?: SnapshotService;
}

const limit = (max: number, dflt: number) => z.coerce.number().int().min(1).max(max).default(dflt);
const day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a day as YYYY-MM-DD').optional();

function caller(request: FastifyRequest): AccountPrincipal {
  if (!request.account) throw errors.invalidSession();
  return request.account;
}

/** Registers the console routes on `r`, a scope whose onRequest hook has authenticated the session. */
export function accountConsoleRoutes(r: FastifyInstance, { namespaces, operator, usage, snapshots }: AccountConsoleServices): void {
  // ---- Consumers: one of their namespaces ----------------------------------------------------------
  r.get<{ Params: { id: string } }>('/account/namespaces/:id/balance', async (req) => namespaces.balance(caller(req), parse(uuid, req.params.id)));

  r.get<{ Params: { id: string }; Querystring: UsageQuery }>('/account/namespaces/:id/usage', async (req, reply) => {
    const id = parse(uuid, req.params.id);
    await namespaces.owned(caller(req), id);
    return sendUsage(reply, usage, id, req.query);
  });

  r.get<{ Params: { id: string }; Querystring: { limit?: string } }>('/account/namespaces/:id/jobs', async (req) => ({
    data: await namespaces.recentJobs(caller(req), parse(uuid, req.params.id), parse(limit(500, 50), req.query.limit)),
  }));

  // ---- Operators: their nodes and money ------------------------------------------------------------
  r.get('/account/nodes', async (req) => ({ data: await operator.nodes(caller(req)) }));

  r.get<{ Params: { id: string } }>('/account/nodes/:id', async (req) => operator.node(caller(req), req.params.id));

  r.get<{ Params: { id: string }; Querystring: { limit?: string } }>('/account/nodes/:id/rcp', async (req) => ({
    data: await operator.contributionPoints(caller(req), req.params.id, parse(limit(1000, 30), req.query.limit)),
  }));

  if (snapshots) snapshotAccountRoutes(r, snapshots, async (req, id) => (await operator.node(caller(req), id)).id);

  r.get<{ Querystring: { from?: string; to?: string } }>('/account/earnings', async (req) =>
    operator.earnings(caller(req), { from: parse(day, req.query.from), to: parse(day, req.query.to) }),
  );

  // A node binds to an operator only with its consent: its address enrolled, or a token made for it.
  r.post('/account/nodes/enrolments', async (req, reply) => {
    const body = parse(z.object({ node: z.string() }).strict(), req.body);
    return reply.code(201).send(await operator.enrolNode(caller(req), body.node));
  });

  r.post('/account/nodes/enrolment-tokens', async (req, reply) => {
    const body = parse(z.object({ node: z.string(), ttl_hours: z.number().positive().optional() }).strict(), req.body);
    return reply.code(201).send(await operator.enrolmentToken(caller(req), body.node, body.ttl_hours));
  });

  r.get<{ Querystring: { limit?: string } }>('/account/withdrawals', async (req) => ({
    data: await operator.withdrawals(caller(req), parse(limit(1000, 100), req.query.limit)),
  }));

  r.post('/account/withdrawals', async (req, reply) => {
    const body = parse(z.object({ amount: z.number().positive(), destination: text().trim().min(1).max(200) }).strict(), req.body);
    return reply.code(201).send(await operator.requestWithdrawal(caller(req), body.amount, body.destination));
  });
}
