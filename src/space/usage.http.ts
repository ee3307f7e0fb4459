// The HTTP form of a usage report, shared by the public API (/v1/usage) and the admin API.
import type { FastifyReply } from 'fastify';
import { errors } from '../errors.js';
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
      .send(usage.toCsv(report.data));
  }
  return reply.send({ object: 'list', ...report });
}

