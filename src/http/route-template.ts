import type { FastifyInstance } from 'fastify';
import { unmatchedPolicy, type RoutePolicy } from './route-policy.js';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The matched route's template (`/api/imports/:id`), undefined for an unknown path. Read once
     * per request: Fastify builds a new `routeOptions` object on every access.
     */
    route: string | undefined;
    /** The matched route's policy (route-policy.ts), or for an unknown path that of its 404. */
    policy: RoutePolicy;
  }
}

/** Gives every request its `route` and `policy` before any other hook runs. Register first. */
export function registerRouteTemplate(app: FastifyInstance): void {
  app.decorateRequest('route', undefined);
  app.decorateRequest('policy');
  app.addHook('onRequest', (request, _reply, done) => {
    const options = request.routeOptions;
    request.route = options.url;
    // registerRoutePolicy completed every route's config into a policy.
    request.policy = options.url === undefined ? unmatchedPolicy(request.url) : (options.config as RoutePolicy);
    done();
  });
}
