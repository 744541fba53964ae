import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { AppError, unauthorized } from './errors.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Compares two secrets in time that does not depend on where they differ (or on their lengths). */
export function tokensEqual(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

export interface ApiTokens {
  /** Every route but the open ones (`config.access`, see route-policy.ts). */
  apiToken: string | undefined;
  /** Reading only: the routes that declare `access: 'read'` (metrics, import records). Needs apiToken. */
  apiReadToken?: string | undefined;
}

const forbidden = (method: string, path: string) =>
  new AppError(403, 'forbidden', `the read-only token (API_READ_TOKEN) may not ${method} ${path}; use API_TOKEN`);

function bearer(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(.+)$/i.exec(header ?? '');
  return match ? match[1]!.trim() : undefined;
}

/**
 * When a token is configured, every request to a route that is not open (its `config.access`,
 * see route-policy.ts) must carry one as a Bearer token: API_TOKEN for anything, or API_READ_TOKEN
 * for the routes that declare `access: 'read'` (403 elsewhere). Both are compared in constant time.
 */
export function registerAuth(app: FastifyInstance, tokens: ApiTokens | string | undefined): void {
  const { apiToken, apiReadToken } = typeof tokens === 'object' ? tokens : { apiToken: tokens, apiReadToken: undefined };
  if (!apiToken) return;
  app.addHook('onRequest', async (request, reply) => {
    // The policy of the matched route, not of the raw URL: `/%61pi/...` must not slip past. An
    // unknown /api path takes any valid token on to its 404.
    const { access } = request.policy;
    if (access === 'open') return;
    const given = bearer(request.headers.authorization);
    // Both comparisons always run, so the time taken does not tell which token was close.
    const full = given !== undefined && tokensEqual(given, apiToken);
    const read = given !== undefined && apiReadToken !== undefined && tokensEqual(given, apiReadToken);
    if (full) return;
    if (read) {
      // Anything but a declared read needs the full token (a route declaring nothing is `admin`).
      if (access === 'read') return;
      throw forbidden(request.method, request.url.split('?')[0]!);
    }
    reply.header('www-authenticate', 'Bearer realm="zinc"');
    throw unauthorized();
  });
}
