// Retention plans on the wire: the owner's (account API, a session that owns the namespace) and the
// admin's (admin token). GET shows the plan, its events (changes, fallbacks) and its daily meterings;
// PUT { plan: 'zero' | 'standard' | 'extended', days?: n } changes it for payloads written from now on.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parse, uuid } from '../http/parse.http.js';
import { idParams, routeSchema } from '../openapi/route-schema.js';
import type { Db } from '../postgres/db.js';
import { findOwnedNamespace } from '../postgres/accounts.repository.js';
import type { RetentionService } from './retention.service.js';
import type { SpaceJobs } from './space-jobs.service.js';
import { errors } from '../errors.js';

const planBody = z.object({ plan: z.string(), days: z.number().int().nullable().optional() }).strict();

/** The account sessions' check (gate's AccountService, wired in the composition root). */
export interface SessionAuthenticator {
  authenticate(authorization: string | undefined): Promise<{ accountId: string }>;
}

const ownerDoc = (summary: string, body?: z.ZodType) => routeSchema({ summary, tags: ['Account API'], auth: 'session', params: idParams('id'), ...(body ? { body } : {}) });

const pinParams = z.object({ id: z.string().describe('The namespace id'), jobId: z.string().describe('The job id') });
const pinDoc = (summary: string) => routeSchema({ summary, tags: ['Account API'], auth: 'session', params: pinParams });

/** Pins on the wire, the same for the owner and the admin once the namespace is known to be theirs. */
function pinRoutes(r: FastifyInstance, base: string, namespaceOf: (authorization: string | undefined, id: string) => Promise<string>, jobs: SpaceJobs, docs: boolean): void {
  const schema = (summary: string, params = false) => (docs ? { schema: params ? pinDoc(summary) : ownerDoc(summary) } : {});
  r.get<{ Params: { id: string } }>(`${base}/:id/pins`, schema("The namespace's pinned jobs (kept past its plan, metered per GiB-day)"), async (req) => ({ object: 'list', data: await jobs.list(await namespaceOf(req.headers.authorization, req.params.id)) }));
  r.put<{ Params: { id: string; jobId: string } }>(`${base}/:id/pins/:jobId`, schema('Pins a finished job past its plan', true), async (req) => jobs.pin(await namespaceOf(req.headers.authorization, req.params.id), req.params.jobId));
  r.delete<{ Params: { id: string; jobId: string } }>(`${base}/:id/pins/:jobId`, schema('Unpins a job (its copy goes; the original keeps its plan\'s days)', true), async (req) => jobs.unpin(await namespaceOf(req.headers.authorization, req.params.id), req.params.jobId));
}

export function retentionRoutes(app: FastifyInstance, d: { db: Db; retention: RetentionService; spaceJobs: SpaceJobs; accounts: SessionAuthenticator; adminToken: string }): void {
  // The owner's: a session, and the namespace must be one of its account's.
  app.register(async (r) => {
    const owned = async (authorization: string | undefined, id: string): Promise<string> => {
      const p = await d.accounts.authenticate(authorization);
      const ns = await findOwnedNamespace(d.db, p.accountId, parse(uuid, id));
      if (!ns) throw errors.notFound('Namespace');
      return ns.id;
    };
    r.get<{ Params: { id: string } }>('/account/namespaces/:id/retention', { schema: ownerDoc("The namespace's retention plan, its storage and metering") }, async (req) => d.retention.view(await owned(req.headers.authorization, req.params.id)));
    r.put<{ Params: { id: string } }>('/account/namespaces/:id/retention', { schema: ownerDoc("Changes the namespace's retention plan", planBody) }, async (req) => {
      const id = await owned(req.headers.authorization, req.params.id);
      const body = parse(planBody, req.body);
      return d.retention.setPlan(id, body.plan, body.days, 'owner');
    });
    pinRoutes(r, '/account/namespaces', owned, d.spaceJobs, true);
  });

  // The admin's: the same check as the admin API's (gate/admin.routes.ts), on its own routes here so that
  // Space stays in its own files.
  const expected = createHash('sha256').update(d.adminToken).digest();
  app.register(async (r) => {
    r.addHook('onRequest', async (request) => {
      const m = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
      const given = createHash('sha256').update(m?.[1] ?? '').digest();
      if (!m || !timingSafeEqual(given, expected)) throw errors.unauthenticated('Invalid admin token.');
    });
    r.get<{ Params: { id: string } }>('/admin/namespaces/:id/retention', async (req) => d.retention.view(parse(uuid, req.params.id)));
    r.put<{ Params: { id: string } }>('/admin/namespaces/:id/retention', async (req) => {
      const body = parse(planBody, req.body);
      return d.retention.setPlan(parse(uuid, req.params.id), body.plan, body.days, 'admin');
    });
    pinRoutes(r, '/admin/namespaces', async (_auth, id) => parse(uuid, id), d.spaceJobs, false);
  });
}
