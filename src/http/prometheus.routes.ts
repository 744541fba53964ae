import type { FastifyPluginAsync } from 'fastify';
import type { Telemetry } from '../telemetry.js';
import { tokensEqual } from './auth.js';
import { AppError } from './errors.js';

/** `GET /metrics` in the Prometheus text format; guarded by METRICS_TOKEN when one is set. */
export const prometheusRoutes: FastifyPluginAsync<{ telemetry: Telemetry; metricsToken: string | undefined }> = async (
  app,
  { telemetry, metricsToken },
) => {
  // No API token: a scraper holds METRICS_TOKEN (checked here, when set), never one that reads sales.
  app.get('/metrics', { config: { access: 'open' }, schema: { tags: ['health'], summary: 'Prometheus metrics', hide: false } }, async (request, reply) => {
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
