// GET /status: the public network status (see status.service.ts), without authentication. Shared caches
// may keep an answer for a second, as long as this instance does. The response schema is also a filter:
// the serializer writes only the fields declared here, so nothing added to the snapshot by mistake
// reaches the public.
import type { FastifyInstance } from 'fastify';
import { AppError } from '../errors.js';
import { sendAppError } from '../http/errors.http.js';
import type { StatusService } from './status.service.js';

const count = { type: 'integer', minimum: 0 } as const;
const nullableMs = { type: ['number', 'null'] } as const;

const slotCounts = { online_nodes: count, capacity: count, in_use: count, free: count } as const;
const slotCountsRequired = ['online_nodes', 'capacity', 'in_use', 'free'] as const;

const networkSchema = {
  type: 'object',
  required: ['network', 'nodes', 'by_region', 'by_gpu', 'models'],
  additionalProperties: false,
  properties: {
    network: { type: 'string' },
    nodes: { type: 'object', required: slotCountsRequired, additionalProperties: false, properties: slotCounts },
    by_region: {
      type: 'array',
      items: { type: 'object', required: ['region', 'online_nodes'], additionalProperties: false, properties: { region: { type: ['string', 'null'] }, online_nodes: count } },
    },
    by_gpu: {
      type: 'array',
      items: { type: 'object', required: ['gpu', 'online_nodes'], additionalProperties: false, properties: { gpu: { type: 'string' }, online_nodes: count } },
    },
    models: {
      type: 'array',
      items: { type: 'object', required: ['id', ...slotCountsRequired], additionalProperties: false, properties: { id: { type: 'string' }, ...slotCounts } },
    },
  },
} as const;

const snapshotSchema = {
  type: 'object',
  required: ['generated_at', 'nodes', 'models', 'networks', 'jobs_last_minute', 'latest_snapshot'],
  additionalProperties: false,
  properties: {
    generated_at: { type: 'string' },
    nodes: {
      type: 'object',
      required: ['online', 'capacity', 'in_use'],
      additionalProperties: false,
      properties: { online: count, capacity: count, in_use: count },
    },
    models: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'online_nodes', 'capacity', 'in_use', 'free', 'queued', 'waiting'],
        additionalProperties: false,
        properties: {
          id: { type: 'string' },
          online_nodes: count,
          capacity: count,
          in_use: count,
          free: count,
          queued: { type: ['integer', 'null'] },
          waiting: count,
        },
      },
    },
    networks: { type: 'array', items: networkSchema },
    jobs_last_minute: {
      type: 'object',
      required: ['completed', 'failed', 'expired', 'requests_per_second', 'latency_ms'],
      additionalProperties: false,
      properties: {
        completed: count,
        failed: count,
        expired: count,
        requests_per_second: { type: 'number' },
        latency_ms: { type: 'object', required: ['p50', 'p99'], additionalProperties: false, properties: { p50: nullableMs, p99: nullableMs } },
      },
    },
    latest_snapshot: {
      type: ['object', 'null'],
      required: ['cid', 'kind', 'day', 'created_at'],
      additionalProperties: false,
      properties: { cid: { type: 'string' }, kind: { type: 'string' }, day: { type: ['string', 'null'] }, created_at: { type: 'string' } },
    },
  },
} as const;

export function statusRoutes(app: FastifyInstance, status: StatusService): void {
  app.get('/status', { schema: { response: { 200: snapshotSchema } } }, async (request, reply) => {
    try {
      const snapshot = await status.snapshot();
      return reply.header('cache-control', 'public, max-age=1').send(snapshot);
    } catch (err) {
      request.log.warn({ err }, 'status: snapshot failed');
      reply.header('cache-control', 'no-store');
      return sendAppError(reply, new AppError('status_unavailable', 'The network status is unavailable right now.', { retryAfterSeconds: 1 }, { cause: err }));
    }
  });
}
