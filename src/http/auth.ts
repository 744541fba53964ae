import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { AppError, unauthorized } from './errors.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Compares two secrets in time that does not depend on where they differ (or on their lengths). */
export function tokensEqual(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

export interface ApiTokens {
  /** Everything under `/api/`. */
  apiToken: string | undefined;
  /** Reading only: GET (and HEAD) of the metrics and of import records. Needs apiToken. */
  apiReadToken?: string | undefined;
}

/** The routes the read-only token may call: reading metrics and import records, nothing that changes data. */
export function readOnlyRoute(method: string, route: string): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false;
  return route.startsWith('/api/metrics/') || route === '/api/imports' || route === '/api/imports/:id';
}

const forbidden = (method: string, path: string) =>
  new AppError(403, 'forbidden', `the read-only token (API_READ_TOKEN) may not ${method} ${path}; use API_TOKEN`);

function bearer(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(.+)$/i.exec(header ?? '');
  return match ? match[1]!.trim() : undefined;
}

/**
 * When a token is configured, every `/api/*` request must carry it as a Bearer token: API_TOKEN
 * for anything, or API_READ_TOKEN for reading (403 elsewhere). Both are compared in constant time.
 */
export function registerAuth(app: FastifyInstance, tokens: ApiTokens | string | undefined): void {
  const { apiToken, apiReadToken } = typeof tokens === 'object' ? tokens : { apiToken: tokens, apiReadToken: undefined };
  if (!apiToken) return;
  app.addHook('onRequest', async (request, reply) => {
    // The matched route template, not the raw URL: `/%61pi/...` must not slip past.
    const route = request.route;
    const path = route ?? request.url;
    if (!path.startsWith('/api/') && path !== '/api') return;
    const given = bearer(request.headers.authorization);
    // Both comparisons always run, so the time taken does not tell which token was close.
    const full = given !== undefined && tokensEqual(given, apiToken);
    const read = given !== undefined && apiReadToken !== undefined && tokensEqual(given, apiReadToken);
    if (full) return;
    if (read) {
      // An unknown path goes on to its 404; a known one must be a read.
      if (route === undefined || readOnlyRoute(request.method, route)) return;
      throw forbidden(request.method, request.url.split('?')[0]!);
    }
    reply.header('www-authenticate', 'Bearer realm="zinc"');
    throw unauthorized();
  });
}
