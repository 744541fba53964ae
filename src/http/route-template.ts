import type { FastifyInstance } from 'fastify';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The matched route's template (`/api/imports/:id`), undefined for an unknown path. Read once
     * per request: Fastify builds a new `routeOptions` object on every access.
     */
    route: string | undefined;
  }
}

/** Gives every request its `route` before any other hook runs. Register first. */
export function registerRouteTemplate(app: FastifyInstance): void {
  app.decorateRequest('route', undefined);
  app.addHook('onRequest', (request, _reply, done) => {
    request.route = request.routeOptions.url;
    done();
  });
}
