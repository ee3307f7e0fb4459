// GET /metrics: this process's Prometheus metrics (engine-metrics.ts), in the text exposition format,
// and a count and the durations of HTTP responses by route pattern (never the URL itself: ids stay out of
// the labels).
// The figures are counts of operations and process statistics, nothing about any tenant or node.
import type { FastifyInstance } from 'fastify';
import { httpRequestSeconds, httpResponses, metricsRegistry } from './engine-metrics.js';

export function metricsRoutes(app: FastifyInstance): void {
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    httpResponses.inc({ route, method: request.method, status: `${Math.floor(reply.statusCode / 100)}xx` });
    httpRequestSeconds.observe({ route, method: request.method }, reply.elapsedTime / 1000);
  });
  app.get('/metrics', async (_request, reply) => {
    const body = await metricsRegistry.metrics();
    return reply.type(metricsRegistry.contentType).send(body);
  });
}
