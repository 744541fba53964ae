import type { FastifyContextConfig, FastifyInstance, RouteOptions } from 'fastify';

/**
 * Every route states its own policy in its options' `config`, where it is declared:
 *
 *   app.get('/api/imports', { config: { access: 'read' }, schema }, handler)
 *
 * and the hooks that enforce policy read it there (auth.ts: who may call; security.ts: timeouts,
 * rate limit, page headers; answer-cache.ts: whether sales may have changed). Nothing keeps a
 * list of paths, so a route added or renamed cannot fall out of one.
 */

/** Who may call a route when API_TOKEN is set (without it, every route is open). */
export type Access = 'open' | 'read' | 'admin';

const ACCESS: readonly Access[] = ['open', 'read', 'admin'];

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `open`: no token; `read`: API_READ_TOKEN suffices; `admin`: only API_TOKEN. */
    access?: Access;
    /**
     * Its work legitimately takes as long as its file (imports, undo): no answer timeout, and no
     * idle timeout once the request is fully received.
     */
    longRunning?: boolean;
    /** It may change `sales`: the metrics cache re-reads the data version before its response leaves. */
    changesSales?: boolean;
    /** It serves documents to browsers (pages, Swagger UI, what they load) rather than JSON: page security headers. */
    page?: boolean;
    /** false: never rate limited (health probes: a throttled load balancer would take the instance out). */
    rateLimited?: boolean;
  }
}

type PolicyKey = 'access' | 'longRunning' | 'changesSales' | 'page' | 'rateLimited';

/** A route's policy with every default filled in: what the hooks read. */
export type RoutePolicy = Readonly<Required<Pick<FastifyContextConfig, PolicyKey>>>;

/** The API's part of the URL space: where a route declaring nothing, or an unknown path, needs a token. */
function inApi(path: string): boolean {
  return path === '/api' || path.startsWith('/api/');
}

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * The policy of a route from what it declares, then what its plugin declares for all its routes
 * (declareRoutes), then these defaults:
 *
 * - access: `admin` under /api, least privilege: a new API route needs the full token until it
 *   says the read-only token may call it. `open` elsewhere: only pages, docs, health probes and
 *   CORS preflights live outside /api, several added by third-party plugins that declare nothing.
 * - changesSales: when a method may write (not GET, HEAD, OPTIONS). A needless re-read of the
 *   data version costs one query; a missed one serves old answers for up to CACHE_MAX_STALE_MS.
 * - not long-running, not a page, rate limited.
 */
function completePolicy(route: RouteOptions, inherited: Partial<RoutePolicy> | undefined): RoutePolicy {
  const declared = { ...inherited, ...route.config };
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  const access = declared.access ?? (inApi(route.url) ? 'admin' : 'open');
  if (!ACCESS.includes(access)) {
    throw new Error(`route ${methods.join(',')} ${route.url}: config.access must be one of ${ACCESS.join(', ')} (got ${String(access)})`);
  }
  return {
    access,
    longRunning: declared.longRunning ?? false,
    changesSales: declared.changesSales ?? methods.some((m) => !READ_METHODS.has(m)),
    page: declared.page ?? false,
    rateLimited: declared.rateLimited ?? true,
  };
}

const NO_ROUTE_IN_API: RoutePolicy = Object.freeze({ access: 'read', longRunning: false, changesSales: false, page: false, rateLimited: true });
const NO_ROUTE: RoutePolicy = Object.freeze({ ...NO_ROUTE_IN_API, access: 'open' });

/**
 * The policy of a request no route matched, which gets its 404: under /api any valid token, so
 * that without one the answer does not tell which API paths exist; elsewhere none.
 */
export function unmatchedPolicy(url: string): RoutePolicy {
  return inApi(url) ? NO_ROUTE_IN_API : NO_ROUTE;
}

const kInherited = Symbol('zinc.routePolicy');
type Scoped = FastifyInstance & { [kInherited]?: Partial<RoutePolicy> };

/**
 * Gives every route that `instance` and the plugins registered inside it add this policy, where
 * a route does not declare its own: for third-party plugins (Swagger UI, static files), whose
 * routes cannot carry a `config`. Call it in the plugin that registers them, before registering.
 */
export function declareRoutes(instance: FastifyInstance, policy: Partial<RoutePolicy>): void {
  const scoped = instance as Scoped;
  // A plugin's instance is made from its parent's (Object.create): children see this, the parent does not.
  scoped[kInherited] = { ...scoped[kInherited], ...policy };
}

/**
 * Completes the policy in every route's config, so hooks read it without defaults of their own.
 * Register before any route, and before any other onRoute hook that reads a policy.
 */
export function registerRoutePolicy(app: FastifyInstance): void {
  app.addHook('onRoute', function (this: FastifyInstance, route: RouteOptions) {
    route.config = { ...route.config, ...completePolicy(route, (this as Scoped)[kInherited]) };
  });
}
