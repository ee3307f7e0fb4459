// Snapshots on the HTTP surfaces. Admin (inside the admin API's authenticated scope): list, show, take
// one, verify one, download its CAR. Account (operators, inside the session scope): the Merkle proofs of
// their nodes' points in the sealed contribution epochs. Restore is the CLI's alone: it writes into an
// empty database, never the one this API serves.
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError, errors } from '../errors.js';
import { parse } from '../http/parse.http.js';
import { SnapshotNotFoundError, StoreUnavailableError } from './snapshot-store.js';
import type { SnapshotRow } from '../postgres/snapshots.repository.js';
import type { SnapshotService } from './snapshot.service.js';
import { routeSchema } from '../openapi/route-schema.js';

const ref = z.string().regex(/^(\d{4}-\d{2}-\d{2}|b[a-z2-7]{10,100})$/, 'a root CID or a day (YYYY-MM-DD)');
const limit = z.coerce.number().int().min(1).max(1000).default(30);
const epochList = z
  .string()
  .regex(/^\d+(,\d+)*$/, 'epochs as a comma-separated list of numbers')
  .transform((s) => s.split(',').map(Number))
  .optional();

/** A store that cannot be reached is a 503 to retry, not a failure of the request. */
async function fromStore<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof StoreUnavailableError) throw new AppError('snapshot_store_unavailable', err.message, { retryAfterSeconds: 30 }, { cause: err });
    if (err instanceof SnapshotNotFoundError) throw new AppError('not_found', err.message, {}, { cause: err });
    throw err;
  }
}

async function found(snapshots: SnapshotService, r: string): Promise<SnapshotRow> {
  const row = await snapshots.find(parse(ref, r));
  if (!row) throw errors.notFound('Snapshot');
  return row;
}

/** Registers the admin snapshot routes on `r`, a scope whose onRequest hook checked the admin token. */
export function snapshotAdminRoutes(r: FastifyInstance, snapshots: SnapshotService): void {
  r.get<{ Querystring: { limit?: string } }>('/admin/snapshots', async (req) => ({ store: snapshots.storeName, data: await snapshots.list(parse(limit, req.query.limit)) }));

  // `{ kind: 'state' }` (default): a frozen state of the network now; `{ kind: 'due' }`: every closed day
  // not snapshotted yet (what the maintenance role does on its own).
  r.post('/admin/snapshots', async (req, reply) => {
    const body = parse(z.object({ kind: z.enum(['state', 'due']).default('state') }).strict(), req.body ?? {});
    if (body.kind === 'due') return reply.code(201).send({ days: await fromStore(() => snapshots.createDue(new Date())) });
    return reply.code(201).send(await fromStore(() => snapshots.createState()));
  });

  r.get<{ Params: { ref: string } }>('/admin/snapshots/:ref', async (req) => {
    const row = await found(snapshots, req.params.ref);
    return { ...row, manifest: await fromStore(() => snapshots.manifest(row.cid)) };
  });

  r.post<{ Params: { ref: string }; Querystring: { against_db?: string } }>('/admin/snapshots/:ref/verify', async (req) => {
    const row = await found(snapshots, req.params.ref);
    return fromStore(() => snapshots.verifyStored(row.cid, { againstDb: req.query.against_db === 'true' }));
  });

  r.get<{ Params: { ref: string } }>('/admin/snapshots/:ref/car', async (req, reply) => {
    const row = await found(snapshots, req.params.ref);
    const car = Readable.from(await fromStore(() => snapshots.open(row.cid)));
    return reply.header('content-type', 'application/vnd.ipld.car; version=1').header('content-disposition', `attachment; filename="${row.cid}.car"`).send(car);
  });
}

/** The operator's proofs route; `owned` throws a 404 for a node that is not the caller's. */
export function snapshotAccountRoutes(r: FastifyInstance, snapshots: SnapshotService, owned: (request: FastifyRequest, nodeId: string) => Promise<string>): void {
  const schema = routeSchema({
    summary: "Merkle proofs of one of the operator's nodes' contribution points in sealed epochs",
    tags: ['Account API'],
    auth: 'session',
    params: z.object({ id: z.string().describe('The node id (its EVM address)') }),
    querystring: z.object({ epochs: epochList.optional(), limit }),
  });
  r.get<{ Params: { id: string }; Querystring: { epochs?: string; limit?: string } }>('/account/nodes/:id/rcp-proofs', { schema }, async (req) => {
    const nodeId = await owned(req, req.params.id);
    return { data: await snapshots.epochProofs(nodeId, parse(epochList, req.query.epochs) ?? null, parse(limit, req.query.limit)) };
  });
}
