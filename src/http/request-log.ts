import type { FastifyInstance } from 'fastify';
import type { Telemetry } from '../telemetry.js';

/**
 * One JSON line per request: id, method, path, status and duration (no headers, so no secrets);
 * and the same request in the duration histogram, labelled by route template, never the raw URL.
 */
export function registerRequestLog(app: FastifyInstance, telemetry: Telemetry): void {
  app.addHook('onResponse', (request, reply, done) => {
    telemetry.httpDuration.observe(
      { method: request.method, route: request.route ?? 'unmatched', status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    request.log.info(
      {
        method: request.method,
        path: request.url.split('?')[0],
        route: request.route,
        status: reply.statusCode,
        durationMs: Math.round(reply.elapsedTime * 100) / 100,
      },
      'request',
    );
    done();
  });
}
