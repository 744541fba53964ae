import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { unauthorized } from './errors.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Compares two secrets in time that does not depend on where they differ (or on their lengths). */
export function tokensEqual(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** When a token is configured, every `/api/*` request must carry it as a Bearer token. */
export function registerAuth(app: FastifyInstance, apiToken: string | undefined): void {
  if (!apiToken) return;
  app.addHook('onRequest', async (request, reply) => {
    // The matched route template, not the raw URL: `/%61pi/...` must not slip past.
    const path = request.routeOptions.url ?? request.url;
    if (!path.startsWith('/api/') && path !== '/api') return;
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match || !tokensEqual(match[1]!.trim(), apiToken)) {
      reply.header('www-authenticate', 'Bearer realm="zinc"');
      throw unauthorized();
    }
  });
}
