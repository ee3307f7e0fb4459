// The admin API under /admin, for the platform's operators: bearer ADMIN_TOKEN, JSON in and out.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { errors } from '../errors.js';
import { creditAmount, parse, uuid } from '../http/parse.http.js';
import { text } from '../domain/wire-strings.js';
import { addressSchema } from '../domain/protocol.js';
import { issuedKey, issueKeyBody, keyOptionsFrom } from './api-keys.http.js';
import type { AccountsAdminService } from './accounts-admin.service.js';
import type { ApiKeysAdminService } from './api-keys-admin.service.js';
import type { CreditsAdminService } from './credits-admin.service.js';
import type { ModelsAdminService } from './models-admin.service.js';
import type { AdminRecordsService } from './admin-records.service.js';
import type { NodeFlagsService } from '../network/node-flags.service.js';
import type { UsageService } from '../space/usage.service.js';
import type { OperatorsService } from './operators.service.js';
import type { QuarantineService } from './quarantine.service.js';
import { sendUsage, type UsageQuery } from '../space/usage.http.js';
import { blindProbeInputSchema, type QualityService } from '../network/quality.service.js';
import type { EligibilityService } from '../network/eligibility.service.js';
import { MAX_GPU_MEMORY_MB, networkSchema, subcloudNameSchema } from '../domain/eligibility.js';
import { publishInputSchema, type NetworkConfigService } from '../network/network-config.service.js';
import { snapshotAdminRoutes } from '../snapshots/snapshot.routes.js';
import type { SnapshotService } from '../snapshots/snapshot.service.js';

const nodeId = addressSchema;
const subcloudName = subcloudNameSchema;
const gpuMemoryMb = z.number().int().min(0).max(MAX_GPU_MEMORY_MB);

export interface AdminRouteServices {
  accounts: AccountsAdminService;
  apiKeys: ApiKeysAdminService;
  credits: CreditsAdminService;
  models: ModelsAdminService;
  records: AdminRecordsService;
  nodeFlags: NodeFlagsService;
  usage: UsageService;
  operators: OperatorsService;
  quarantine: QuarantineService;
  quality: QualityService;
  eligibility: EligibilityService;
  /** The maintenance role's ledger chain check (a port: gate does not import maintenance). */
  ledgerChain: { verify(): Promise<unknown> };
  networkConfig: NetworkConfigService;
  snapshots: SnapshotService;
}

/**
 * Who an admin request is logged as, in the admin change log: `admin-api`, or `admin-api:<name>` with an
 * `X-Admin-Actor: <name>` header. The admin token is shared, so the name is the caller's word, kept for
 * the operators' own bookkeeping, not an authentication.
 */
function actorOf(request: FastifyRequest): string {
  const named = request.headers['x-admin-actor'];
  if (named === undefined) return 'admin-api';
  return `admin-api:${parse(z.string().regex(/^[\x21-\x7e][\x20-\x7e]{0,99}$/, 'X-Admin-Actor: 1-100 printable ASCII characters'), named)}`;
}

export function adminRoutes(
  app: FastifyInstance,
  { accounts, apiKeys, credits, models, records, nodeFlags, usage, operators, quarantine, quality, eligibility, ledgerChain, networkConfig, snapshots }: AdminRouteServices,
  adminToken: string,
): void {
  const expected = createHash('sha256').update(adminToken).digest();

  app.register(async (r) => {
    r.addHook('onRequest', async (request) => {
      const m = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
      const given = createHash('sha256').update(m?.[1] ?? '').digest();
      // Compare digests in constant time: the token's length and content leak nothing through timing.
      if (!m || !timingSafeEqual(given, expected)) throw errors.unauthenticated('Invalid admin token.');
    });

    r.post('/admin/accounts', async (req, reply) => {
      const body = parse(z.object({ name: text().min(1).max(200) }), req.body);
      return reply.code(201).send(await accounts.createAccount(body.name));
    });

    r.post<{ Params: { id: string } }>('/admin/accounts/:id/namespaces', async (req, reply) => {
      const id = parse(uuid, req.params.id);
      const body = parse(z.object({ name: text(), network: networkSchema.optional() }), req.body);
      return reply.code(201).send(await accounts.createNamespace(id, body.name, body.network));
    });

    r.post<{ Params: { id: string } }>('/admin/namespaces/:id/keys', async (req, reply) => {
      const id = parse(uuid, req.params.id);
      const body = parse(issueKeyBody, req.body ?? {});
      return reply.code(201).send(issuedKey(await apiKeys.issueApiKey(id, keyOptionsFrom(body))));
    });

    r.get<{ Params: { id: string } }>('/admin/namespaces/:id/keys', async (req) => ({ data: await apiKeys.listApiKeys(parse(uuid, req.params.id)) }));

    r.post<{ Params: { id: string } }>('/admin/keys/:id/rotate', async (req, reply) => {
      return reply.code(201).send(issuedKey(await apiKeys.rotateApiKey(parse(uuid, req.params.id))));
    });

    r.delete<{ Params: { id: string } }>('/admin/keys/:id', async (req, reply) => {
      await apiKeys.revokeApiKey(parse(uuid, req.params.id));
      return reply.code(204).send();
    });

    r.post<{ Params: { id: string } }>('/admin/namespaces/:id/credits', async (req) => {
      const id = parse(uuid, req.params.id);
      const body = parse(z.object({ amount: creditAmount, memo: text().max(500).optional() }), req.body);
      return credits.topUp(id, body.amount, body.memo);
    });

    r.get<{ Params: { id: string } }>('/admin/namespaces/:id/balance', async (req) => credits.balance(parse(uuid, req.params.id)));

    // Tokenizers: a tokenizer.json is megabytes, beyond the API's usual body limit.
    r.post('/admin/tokenizers', { bodyLimit: 64 * 1024 * 1024 }, async (req, reply) => {
      const body = parse(z.object({ tokenizer: z.string().min(2), config: z.record(z.string(), z.unknown()).optional() }), req.body);
      return reply.code(201).send(await models.putTokenizer(body.tokenizer, body.config));
    });
    r.put<{ Params: { name: string } }>('/admin/models/:name/usage-bound', async (req) => {
      const body = parse(z.object({ tokenizer_sha256: z.string().regex(/^[0-9a-f]{64}$/).nullable().optional(), max_tokens_per_byte: z.number().optional() }), req.body);
      return models.setUsageBound(req.params.name, { tokenizerSha256: body.tokenizer_sha256, maxTokensPerByte: body.max_tokens_per_byte }, actorOf(req));
    });
    // Other names requests may use for a model (issue 12): the whole list, replacing the previous one.
    r.put<{ Params: { name: string } }>('/admin/models/:name/aliases', async (req) => {
      const body = parse(z.object({ aliases: z.array(text().min(1).max(128)).max(32) }), req.body);
      return models.setModelAliases(req.params.name, body.aliases, actorOf(req));
    });
    r.put<{ Params: { name: string } }>('/admin/models/:name', async (req) => {
      const body = parse(
        z.object({
          input_price: z.number().int().min(0),
          output_price: z.number().int().min(0),
          min_charge: z.number().min(0).optional(),
          context_tokens: z.number().int().positive().max(10_000_000).optional(),
          version: text().optional(),
          content_hash: text().nullable().optional(),
          min_gpu_memory_mb: gpuMemoryMb.optional(),
          // e.g. {"urgent": 5000, "bulk": -2000}; checked class by class in the service
          priority_surcharge_bps: z.record(text(), z.number()).optional(),
        }),
        req.body,
      );
      return models.putModel({
        name: req.params.name,
        inputPricePerMtok: body.input_price,
        outputPricePerMtok: body.output_price,
        minCharge: body.min_charge,
        contextTokens: body.context_tokens,
        version: body.version,
        contentHash: body.content_hash,
        minGpuMemoryMb: body.min_gpu_memory_mb,
        prioritySurchargeBps: body.priority_surcharge_bps,
      }, actorOf(req));
    });

    // The network config (src/network/network-config.service.ts): publish the next version from the
    // models table and the settings given (each defaulting to the current version's); list and read them.
    r.post('/admin/network-config', async (req, reply) => reply.code(201).send(await networkConfig.publish(parse(publishInputSchema, req.body ?? {}), actorOf(req))));
    r.get<{ Querystring: { limit?: string } }>('/admin/network-config', async (req) => ({
      data: await networkConfig.list(parse(z.coerce.number().int().min(1).max(1000).default(100), req.query.limit)),
    }));
    // Which config the nodes online now run; registered before /:version so that it is not taken for one.
    r.get('/admin/network-config/adoption', async () => networkConfig.adoption());
    r.get<{ Params: { version: string } }>('/admin/network-config/:version', async (req) =>
      networkConfig.get(parse(z.coerce.number().int().min(1).max(2_147_483_647), req.params.version)),
    );
    // The admin change log, newest first; `before` (an entry id) pages back.
    r.get<{ Querystring: { limit?: string; action?: string; subject?: string; before?: string } }>('/admin/changes', async (req) => ({
      data: await records.changes({
        limit: parse(z.coerce.number().int().min(1).max(1000).default(100), req.query.limit),
        action: parse(text().max(200).optional(), req.query.action),
        subject: parse(text().max(200).optional(), req.query.subject),
        beforeId: parse(z.coerce.number().int().min(1).optional(), req.query.before),
      }),
    }));

    // Subclouds: named node groups with their own allowed models, GPU floor and isolate mode; namespaces
    // bound to one run their jobs on its members only. Changes apply at the next reservation everywhere.
    const subcloudPolicy = z
      .object({
        allowed_models: z.array(text()).max(256).optional(),
        min_gpu_memory_mb: gpuMemoryMb.optional(),
        isolate: z.boolean().optional(),
      })
      .strict();
    r.get('/admin/subclouds', async () => ({ data: await eligibility.list() }));
    r.get<{ Params: { name: string } }>('/admin/subclouds/:name', async (req) => eligibility.get(parse(subcloudName, req.params.name)));
    r.post('/admin/subclouds', async (req, reply) => {
      const body = parse(subcloudPolicy.extend({ name: text(), network: networkSchema }), req.body);
      const created = await eligibility.create(
        body.name,
        body.network,
        { allowedModels: body.allowed_models, minGpuMemoryMb: body.min_gpu_memory_mb, isolate: body.isolate },
        actorOf(req),
      );
      return reply.code(201).send(created);
    });
    r.patch<{ Params: { name: string } }>('/admin/subclouds/:name', async (req) => {
      const body = parse(subcloudPolicy, req.body);
      return eligibility.update(parse(subcloudName, req.params.name), { allowedModels: body.allowed_models, minGpuMemoryMb: body.min_gpu_memory_mb, isolate: body.isolate }, actorOf(req));
    });
    r.delete<{ Params: { name: string } }>('/admin/subclouds/:name', async (req, reply) => {
      await eligibility.delete(parse(subcloudName, req.params.name), actorOf(req));
      return reply.code(204).send();
    });
    r.put<{ Params: { name: string; node: string } }>('/admin/subclouds/:name/members/:node', async (req) =>
      eligibility.addMember(parse(subcloudName, req.params.name), parse(nodeId, req.params.node), actorOf(req)),
    );
    r.delete<{ Params: { name: string; node: string } }>('/admin/subclouds/:name/members/:node', async (req) =>
      eligibility.removeMember(parse(subcloudName, req.params.name), parse(nodeId, req.params.node), actorOf(req)),
    );
    r.put<{ Params: { id: string } }>('/admin/namespaces/:id/subcloud', async (req) => {
      const body = parse(z.object({ subcloud: text().nullable() }).strict(), req.body);
      return eligibility.bindNamespace(parse(uuid, req.params.id), body.subcloud, actorOf(req));
    });

    r.get('/admin/ledger/total', async () => credits.ledgerTotals());
    // The daily ledger chain recomputed from genesis: 200 either way, `ok` and `broken` say the outcome.
    r.get('/admin/ledger/verify', async () => ledgerChain.verify());
    snapshotAdminRoutes(r, snapshots);

    // Operators: earnings by node and day; withdrawals recorded as ledger holds, exported for settlement.
    r.get<{ Params: { id: string }; Querystring: { from?: string; to?: string } }>('/admin/operators/:id/earnings', async (req) =>
      operators.earnings(parse(uuid, req.params.id), { from: req.query.from, to: req.query.to }),
    );
    r.post<{ Params: { id: string } }>('/admin/operators/:id/nodes', async (req, reply) => {
      const body = parse(z.object({ node: z.string() }), req.body);
      return reply.code(201).send(await operators.enrolNode(parse(uuid, req.params.id), body.node));
    });
    r.post<{ Params: { id: string } }>('/admin/operators/:id/withdrawals', async (req, reply) => {
      const body = parse(z.object({ amount: creditAmount, destination: text().min(1).max(200) }), req.body);
      return reply.code(201).send(await operators.requestWithdrawal(parse(uuid, req.params.id), body.amount, body.destination));
    });
    r.post<{ Querystring: { format?: string } }>('/admin/withdrawals/export', async (req, reply) => {
      const batch = await operators.exportWithdrawals();
      if (req.query.format === 'csv') return reply.header('content-type', 'text/csv; charset=utf-8').send(batch.csv);
      return { data: batch.rows };
    });

    // Quarantine: jobs that ended without a result; re-queue (as a new job) or discard each.
    r.get<{ Querystring: { limit?: string } }>('/admin/quarantine', async (req) => ({
      data: await quarantine.list(parse(z.coerce.number().int().min(1).max(1000).default(100), req.query.limit)),
    }));
    r.post<{ Params: { id: string } }>('/admin/quarantine/:id/requeue', async (req, reply) =>
      reply.code(201).send(await quarantine.requeue(parse(uuid, req.params.id))),
    );
    r.post<{ Params: { id: string } }>('/admin/quarantine/:id/discard', async (req, reply) => {
      await quarantine.discard(parse(uuid, req.params.id));
      return reply.code(204).send();
    });

    // Node flags: pause, freeze, shadow-ban, cooldown; DELETE reinstates.
    r.put<{ Params: { id: string } }>('/admin/nodes/:id/flags', async (req) => {
      const id = parse(nodeId, req.params.id);
      const body = parse(
        z
          .object({
            paused: z.boolean().optional(),
            frozen: z.boolean().optional(),
            shadow_banned: z.boolean().optional(),
            cooldown_seconds: z.number().int().min(0).max(30 * 86_400).optional(),
            reason: text().max(500).optional(),
          })
          .strict(),
        req.body,
      );
      return nodeFlags.set(
        id,
        { paused: body.paused, frozen: body.frozen, shadowBanned: body.shadow_banned, cooldownSeconds: body.cooldown_seconds },
        body.reason,
        actorOf(req),
      );
    });
    r.get<{ Params: { id: string }; Querystring: { limit?: string } }>('/admin/nodes/:id/rcp', async (req) => ({
      data: await records.contributionPoints(
        parse(nodeId, req.params.id),
        parse(z.coerce.number().int().min(1).max(1000).default(30), req.query.limit),
      ),
    }));
    r.delete<{ Params: { id: string } }>('/admin/nodes/:id/flags', async (req) => {
      const id = parse(nodeId, req.params.id);
      return nodeFlags.reinstate(id, 'reinstated', actorOf(req));
    });

    // Blind probes: prompts with known answers that the network sends as blind jobs; and the node scores.
    r.post('/admin/blind-probes', async (req, reply) => reply.code(201).send(await quality.addProbe(parse(blindProbeInputSchema, req.body))));
    r.get('/admin/blind-probes', async () => ({ data: await quality.listProbes() }));
    r.delete<{ Params: { id: string } }>('/admin/blind-probes/:id', async (req, reply) => {
      await quality.retireProbe(parse(uuid, req.params.id));
      return reply.code(204).send();
    });
    r.get('/admin/nodes/scores', async () => ({ data: await quality.listScores() }));

    r.get<{ Params: { id: string }; Querystring: UsageQuery }>('/admin/namespaces/:id/usage', async (req, reply) => {
      const id = parse(uuid, req.params.id);
      await credits.balance(id); // 404 for an unknown namespace
      return sendUsage(reply, usage, id, req.query);
    });

    // Any other path under /admin: answered only after the token check above, so that without the token
    // every /admin path is the same 401 and the admin API cannot be mapped by probing it.
    r.all('/admin', async (_req, reply) => reply.callNotFound());
    r.all('/admin/*', async (_req, reply) => reply.callNotFound());
  });
}
