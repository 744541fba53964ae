import type { FastifyPluginAsync, FastifySchema } from 'fastify';
import type { Telemetry } from '../telemetry.js';
import { tokensEqual } from './auth.js';
import { AppError } from './errors.js';

/** `GET /metrics` in the Prometheus text format; guarded by METRICS_TOKEN when one is set. */
export const prometheusRoutes: FastifyPluginAsync<{ telemetry: Telemetry; metricsToken: string | undefined }> = async (
  app,
  { telemetry, metricsToken },
) => {
  // No API token: a scraper holds METRICS_TOKEN (checked here, when set), never one that reads sales.
  const schema: FastifySchema = {
    operationId: 'getPrometheusMetrics',
    tags: ['health'],
    summary: 'Prometheus metrics',
    description:
      'Request durations by route template, imports by outcome, rows stored and rejected, database errors, replicas, ' +
      'process and Node.js defaults, in the Prometheus text format. Needs METRICS_TOKEN as a Bearer token when that is set.',
    security: [{ metricsToken: [] }, {}],
    response: {
      200: { description: 'The metrics (text/plain; version=0.0.4)', content: { 'text/plain': { schema: { type: 'string' } } } },
      401: { $ref: 'ErrorResponse#', description: 'No valid METRICS_TOKEN (only asked for when the server has it set)' },
    },
  };
  app.get('/metrics', { config: { access: 'open' }, schema }, async (request, reply) => {
    if (metricsToken) {
      const match = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '');
      if (!match || !tokensEqual(match[1]!.trim(), metricsToken)) {
        reply.header('www-authenticate', 'Bearer realm="zinc-metrics"');
        throw new AppError(401, 'unauthorized', 'send the metrics token as "Authorization: Bearer <token>"');
      }
    }
    reply.type(telemetry.registry.contentType);
    return telemetry.registry.metrics();
  });
};
