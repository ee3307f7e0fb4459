// The HTTP form of a usage report, shared by the public API (/v1/usage) and the admin API.
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { errors } from '../errors.js';

const day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/).describe('A day as YYYY-MM-DD (UTC)');
/** The report's query: its days (default: the last 30) and format; described in the OpenAPI document. */
export const usageQuerySchema = z.object({ from: day.optional(), to: day.optional(), format: z.enum(['json', 'csv']).optional() });
import type { UsageService } from './usage.service.js';

export interface UsageQuery {
  from?: string;
  to?: string;
  format?: string;
}

/** Answers a usage report as JSON or CSV (shared by /v1/usage and the admin API). */
export async function sendUsage(reply: FastifyReply, usage: UsageService, namespaceId: string, q: UsageQuery): Promise<FastifyReply> {
  if (q.format !== undefined && q.format !== 'json' && q.format !== 'csv') throw errors.invalid("format must be 'json' or 'csv'", 'format');
  const report = await usage.report(namespaceId, { from: q.from, to: q.to });
  if (q.format === 'csv') {
    return reply
      .header('content-type', 'text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="usage-${report.from}-${report.to}.csv"`)
      .send(usage.toCsv(report.data, report.storage));
  }
  return reply.send({ object: 'list', ...report });
}

