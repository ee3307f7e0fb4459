// The account API under /account, for the people who own namespaces: sign-up and log-in (email and
// password, or Sign-In with Ethereum), then, with `Authorization: Bearer <session token>`, their
// namespaces and those namespaces' API keys. JSON in and out; errors in the API's one error shape.
// Sessions are accepted here and nowhere else; API keys everywhere but here (see domain/session-tokens.ts).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { errors } from '../errors.js';
import { parse, uuid } from '../http/parse.http.js';
import { text } from '../domain/wire-strings.js';
import { networkSchema } from '../domain/eligibility.js';
import { issuedKey, issueKeyBody, keyOptionsFrom } from './api-keys.http.js';
import type { AccountPrincipal, AccountService, SignIn } from './account.service.js';
import { accountConsoleRoutes, type AccountConsoleServices } from './account-console.routes.js';
import { idParams, routeSchema, type RouteDoc } from '../openapi/route-schema.js';

// Emails are trimmed and lower-cased before they are checked (the service normalises the same way).
const email = text().trim().toLowerCase().pipe(z.email().max(254));
// Bounded in UTF-16 units before the policy counts characters: a huge body is refused cheaply.
const password = text().min(1).max(4096);
const namespaceBody = z.object({ name: text().max(63) }).strict();
const signUpBody = z.object({ email, password, name: text().trim().min(1).max(200).optional() }).strict();
const logInBody = z.object({ email, password }).strict();
const siweBody = z
  .object({
    message: text().min(1).max(8192),
    signature: z.string().regex(/^0x[0-9a-fA-F]{130}$/, 'must be a 65-byte signature in hex (0x...)'),
  })
  .strict();
const createNamespaceBody = namespaceBody.extend({ network: networkSchema.optional() });
const nsParams = idParams('id');
const keyParams = idParams('id', 'keyId');
const open = (summary: string, more: Partial<RouteDoc> = {}) => routeSchema({ summary, tags: ['Account API'], auth: 'none', ...more });
const own = (summary: string, more: Partial<RouteDoc> = {}) => routeSchema({ summary, tags: ['Account API'], auth: 'session', ...more });

declare module 'fastify' {
  interface FastifyRequest {
    account?: AccountPrincipal;
  }
}

/** A sign-in's answer: the token is a credential, so no cache may keep it. */
function sendSignIn(reply: FastifyReply, status: number, signIn: SignIn & { created?: boolean }): FastifyReply {
  return reply.code(status).header('cache-control', 'no-store').send(signIn);
}

function caller(request: FastifyRequest): AccountPrincipal {
  // Set by the onRequest hook of the authenticated scope; absent only if a route were mounted outside it.
  if (!request.account) throw errors.invalidSession();
  return request.account;
}

/** `consoles`: the web consoles' reads (balance, usage, jobs; an operator's nodes and money), in the same authenticated scope. */
export function accountRoutes(app: FastifyInstance, accounts: AccountService, consoles?: AccountConsoleServices): void {
  // Public: the ways in.
  app.register(async (r) => {
    r.post('/account/signup', { schema: open('Creates an account; answers a session token', { body: signUpBody }) }, async (req, reply) => {
      const body = parse(signUpBody, req.body);
      return sendSignIn(reply, 201, await accounts.signUp(body, req.ip));
    });

    r.post('/account/login', { schema: open('Logs in with email and password; answers a session token', { body: logInBody }) }, async (req, reply) => {
      const body = parse(logInBody, req.body);
      return sendSignIn(reply, 200, await accounts.logIn(body, req.ip));
    });

    r.get('/account/siwe/nonce', { schema: open('A nonce for a Sign-In with Ethereum message') }, async (req, reply) => reply.header('cache-control', 'no-store').send(await accounts.siweNonce(req.ip)));

    r.post('/account/siwe', { schema: open('Signs in (or up) with Ethereum (EIP-4361); answers a session token', { body: siweBody }) }, async (req, reply) => {
      const body = parse(siweBody, req.body);
      const signIn = await accounts.siweSignIn(body);
      return sendSignIn(reply, signIn.created ? 201 : 200, signIn);
    });
  });

  // Authenticated: a live session, and nothing else.
  app.register(async (r) => {
    r.addHook('onRequest', async (request) => {
      request.account = await accounts.authenticate(request.headers.authorization);
    });

    r.get('/account', { schema: own('The signed-in account') }, async (req) => accounts.profile(caller(req)));

    r.post('/account/logout', { schema: own('Ends this session') }, async (req, reply) => {
      await accounts.logOut(caller(req));
      return reply.code(204).send();
    });

    r.get('/account/namespaces', { schema: own("The account's namespaces") }, async (req) => ({ data: await accounts.listNamespaces(caller(req)) }));

    r.post('/account/namespaces', { schema: own('Creates a namespace', { body: createNamespaceBody }) }, async (req, reply) => {
      // A namespace runs its jobs on one network's nodes: mainnet unless testnet is asked for.
      const body = parse(createNamespaceBody, req.body);
      return reply.code(201).send(await accounts.createNamespace(caller(req), body.name, body.network));
    });

    r.patch<{ Params: { id: string } }>('/account/namespaces/:id', { schema: own('Renames a namespace', { params: nsParams, body: namespaceBody }) }, async (req) => {
      const id = parse(uuid, req.params.id);
      const body = parse(namespaceBody, req.body);
      return accounts.renameNamespace(caller(req), id, body.name);
    });

    r.delete<{ Params: { id: string } }>('/account/namespaces/:id', { schema: own('Deletes a namespace', { params: nsParams }) }, async (req, reply) => {
      await accounts.deleteNamespace(caller(req), parse(uuid, req.params.id));
      return reply.code(204).send();
    });

    r.get<{ Params: { id: string } }>('/account/namespaces/:id/keys', { schema: own("A namespace's API keys (never their secrets)", { params: nsParams }) }, async (req) => ({
      data: await accounts.listApiKeys(caller(req), parse(uuid, req.params.id)),
    }));

    r.post<{ Params: { id: string } }>('/account/namespaces/:id/keys', { schema: own('Issues an API key; its secret is shown once', { params: nsParams, body: issueKeyBody }) }, async (req, reply) => {
      const id = parse(uuid, req.params.id);
      const body = parse(issueKeyBody, req.body ?? {});
      return reply.code(201).send(issuedKey(await accounts.issueApiKey(caller(req), id, keyOptionsFrom(body))));
    });

    r.delete<{ Params: { id: string; keyId: string } }>('/account/namespaces/:id/keys/:keyId', { schema: own('Revokes an API key', { params: keyParams }) }, async (req, reply) => {
      await accounts.revokeApiKey(caller(req), parse(uuid, req.params.id), parse(uuid, req.params.keyId));
      return reply.code(204).send();
    });

    r.post<{ Params: { id: string; keyId: string } }>('/account/namespaces/:id/keys/:keyId/rotate', { schema: own('Replaces an API key by a new one with the same limits', { params: keyParams }) }, async (req, reply) =>
      reply.code(201).send(issuedKey(await accounts.rotateApiKey(caller(req), parse(uuid, req.params.id), parse(uuid, req.params.keyId)))),
    );

    if (consoles) accountConsoleRoutes(r, consoles);
  });
}
