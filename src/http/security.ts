import { createRequire } from 'node:module';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import { Redis } from 'ioredis';
import helmet, { type HelmetOptions } from 'helmet';
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import type { Config } from '../config.js';
import { AppError, invalidParameter } from './errors.js';

/**
 * The abuse limits in front of every route: rate limiting per client, security headers, CORS,
 * and the request timeout. Header and body size limits are Fastify options (see app.ts). Which
 * routes are exempt or get page headers, each route says in its `config` (route-policy.ts).
 */

/** What Swagger UI's page needs beyond 'self' (hashes of inline scripts and styles, if a version has any). */
const swaggerCsp = createRequire(import.meta.url)('@fastify/swagger-ui/static/csp.json') as { script: string[]; style: string[] };

/** Largest request head (request line and headers) Node accepts; larger gets 431. */
export const MAX_HEADER_BYTES = 16 * 1024;

/** setTimeout's limit (24.8 days): in effect no answer timeout, for the long-running routes. */
const FOREVER_MS = 2 ** 31 - 1;

/** How long a connection may stay silent: the answer timeout plus as much again, at most 5 s more. */
export function idleTimeoutMs(requestTimeoutMs: number): number {
  return requestTimeoutMs > 0 ? Math.min(requestTimeoutMs + Math.min(requestTimeoutMs, 5_000), FOREVER_MS) : 0;
}

/** Fastify options for the timeouts and size limits (see README "Security"). */
export function serverLimits(config: Pick<Config, 'requestTimeoutMs'>) {
  const timeout = config.requestTimeoutMs;
  return {
    // An answer that takes longer is a 503 `timeout` (long-running routes excepted, see registerTimeouts).
    handlerTimeout: timeout,
    // A connection silent for longer is closed: slow-loris clients, stalled uploads. A little
    // longer than the answer timeout (up to 5 s more), so a slow answer is a 503, not a cut connection.
    connectionTimeout: idleTimeoutMs(timeout),
    http: { maxHeaderSize: MAX_HEADER_BYTES },
    clientErrorHandler,
  };
}

/** Errors before a request exists (bad HTTP, oversized headers): answered in our JSON format, then closed. */
function clientErrorHandler(this: FastifyInstance, error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  let status = 400;
  let body = { error: 'bad_request', message: 'the request is not valid HTTP' };
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    status = 431;
    body = { error: 'headers_too_large', message: `the request headers are larger than ${MAX_HEADER_BYTES} bytes` };
  } else if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408;
    body = { error: 'request_timeout', message: 'the request was not received in time' };
  }
  this.log.debug({ err: error }, 'client error');
  const text = JSON.stringify(body);
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
    );
  }
  socket.destroy(error);
}

type JsonSchema = { type?: unknown; properties?: Record<string, JsonSchema>; minimum?: number; maximum?: number };

/** The integer properties of a querystring or params schema, and a copy with safe-integer bounds where it has none. */
function boundIntegers(schema: unknown): { schema: unknown; integers: string[] } {
  const object = schema as JsonSchema | undefined;
  if (!object || typeof object !== 'object' || !object.properties) return { schema, integers: [] };
  const integers: string[] = [];
  const properties: Record<string, JsonSchema> = {};
  for (const [name, property] of Object.entries(object.properties)) {
    properties[name] = property;
    if (property?.type !== 'integer') continue;
    integers.push(name);
    if (property.maximum === undefined || property.minimum === undefined) {
      properties[name] = {
        ...property,
        minimum: property.minimum ?? -Number.MAX_SAFE_INTEGER,
        maximum: property.maximum ?? Number.MAX_SAFE_INTEGER,
      };
    }
  }
  return { schema: { ...object, properties }, integers };
}

/** Rejects integer parameters whose text is not a finite number: Ajv coerces `1e400` to Infinity and lets it through. */
function finiteIntegers(names: { query: string[]; params: string[] }) {
  return async (request: FastifyRequest) => {
    for (const [source, list] of [
      [request.query, names.query],
      [request.params, names.params],
    ] as const) {
      for (const name of list) {
        const raw = (source as Record<string, unknown> | undefined)?.[name];
        for (const value of Array.isArray(raw) ? raw : [raw]) {
          if (typeof value === 'string' && value.trim() !== '' && !Number.isFinite(Number(value))) {
            throw invalidParameter(name, `${name} must be integer`);
          }
        }
      }
    }
  };
}

/**
 * Numbers in the query and the path are finite (no `1e400`) and no larger than a database can
 * bind: an integer parameter without bounds gets ±(2^53 − 1), so `offset=1e20` is a 400, not a
 * database error. Applies to every route registered after it (the route's schema is copied, not changed).
 */
export function registerParameterBounds(app: FastifyInstance): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    if (!route.schema) return;
    const query = boundIntegers(route.schema.querystring);
    const params = boundIntegers(route.schema.params);
    if (query.integers.length === 0 && params.integers.length === 0) return;
    route.schema = {
      ...route.schema,
      ...(query.integers.length > 0 ? { querystring: query.schema } : {}),
      ...(params.integers.length > 0 ? { params: params.schema } : {}),
    };
    const existing = route.preValidation === undefined ? [] : Array.isArray(route.preValidation) ? route.preValidation : [route.preValidation];
    route.preValidation = [finiteIntegers({ query: query.integers, params: params.integers }), ...existing];
  });
}

/**
 * Exempts the routes that declare `longRunning` (imports, undo: their work takes as long as the
 * file) from the answer timeout, and once the request is fully received, from the idle-connection
 * timeout too (a large upload is never cut while its bytes keep coming). Register before any
 * route, after registerRoutePolicy.
 */
export function registerTimeouts(app: FastifyInstance, requestTimeoutMs: number): void {
  if (requestTimeoutMs <= 0) return;
  app.addHook('onRoute', (route: RouteOptions) => {
    if (route.config?.longRunning) route.handlerTimeout = FOREVER_MS;
  });
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.policy.longRunning) liftIdleTimeoutOnceReceived(request);
    done();
  });
}

/**
 * While the body streams in, the idle timeout stays (a stalled upload is cut); once the whole
 * request has arrived the server may work on it for as long as the file takes, so the socket
 * gets no idle timeout (Node restores the server's for the next request on the connection).
 */
function liftIdleTimeoutOnceReceived(request: FastifyRequest): void {
  const raw = request.raw;
  const socket = raw.socket as Socket | undefined;
  // app.inject's fake socket has no timeouts to lift.
  if (typeof socket?.setTimeout !== 'function') return;
  const lift = () => socket.setTimeout(0);
  const length = request.headers['content-length'];
  const hasBody = request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
  if (!hasBody || raw.complete) lift();
  else raw.once('end', lift);
}

/**
 * Rate limiting per client address, security headers, CORS. Register before auth and before any
 * route (Swagger UI's included): plugins registered later inherit these hooks, earlier ones do not.
 */
export async function registerSecurity(app: FastifyInstance, config: Config): Promise<void> {
  // CORS first: its headers then reach every answer, 401 and 429 included, so a browser can read them.
  if (config.corsOrigins.length > 0) {
    await app.register(cors, {
      origin: [...config.corsOrigins],
      methods: ['GET', 'HEAD', 'POST', 'DELETE'],
      allowedHeaders: ['Authorization', 'Content-Type', 'If-None-Match', 'X-Request-Id'],
      exposedHeaders: ['ETag', 'Retry-After', 'X-Request-Id', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset'],
      maxAge: 600,
    });
  }

  // Pages (routes declaring `page`: the dashboard, Swagger UI) get helmet's full set, with a CSP
  // that lets them load their own scripts and styles. JSON answers get the set OWASP recommends
  // for REST APIs: a JSON body loads nothing and is never framed, and headers that only mean
  // something to documents are left out (an API answer carries half as many bytes of headers;
  // measurable at thousands of answers/s).
  const strictTransportSecurity = { maxAge: 31_536_000, includeSubDomains: false };
  const pageHeaders = securityHeaders({
    contentSecurityPolicy: {
      directives: {
        // Swagger UI at /docs loads its scripts and styles from /docs/static; these are its inline hashes, if any.
        'script-src': ["'self'", ...swaggerCsp.script],
        'style-src': ["'self'", 'https:', "'unsafe-inline'", ...swaggerCsp.style],
        'img-src': ["'self'", 'data:'],
        // Zinc is often served over plain HTTP behind a TLS proxy, or on localhost: no forced upgrade.
        'upgrade-insecure-requests': null,
      },
    },
    // An API should not set policy for its sibling subdomains.
    strictTransportSecurity,
  });
  const apiHeaders = securityHeaders({
    contentSecurityPolicy: { useDefaults: false, directives: { 'default-src': ["'none'"], 'frame-ancestors': ["'none'"] } },
    xFrameOptions: { action: 'deny' },
    strictTransportSecurity,
    crossOriginOpenerPolicy: false,
    originAgentCluster: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false,
  });
  // Strict-Transport-Security only on answers that came over HTTPS (directly, or through a
  // trusted proxy's X-Forwarded-Proto): RFC 6797 §7.2 forbids it over plain HTTP, where a
  // browser ignores it anyway.
  const { 'strict-transport-security': _hsts, ...plainPageHeaders } = pageHeaders;
  const { 'strict-transport-security': _apiHsts, ...plainApiHeaders } = apiHeaders;
  // Set as one object before the route runs, so 401s, 404s and 429s carry them too.
  app.addHook('onRequest', (request, reply, done) => {
    const https = request.protocol === 'https';
    reply.headers(request.policy.page ? (https ? pageHeaders : plainPageHeaders) : https ? apiHeaders : plainApiHeaders);
    done();
  });

  if (config.rateLimitMax > 0) {
    const redis = config.rateLimitRedisUrl ? sharedCounter(app, config.rateLimitRedisUrl) : undefined;
    await app.register(rateLimit, {
      global: false,
      max: config.rateLimitMax,
      timeWindow: config.rateLimitWindowMs,
      cache: 10_000,
      // Shared by every instance (RATE_LIMIT_REDIS_URL), or this instance's memory.
      ...(redis ? { redis, nameSpace: 'zinc:rate:', skipOnError: true } : {}),
      // Routes that declare `rateLimited: false` (health probes) are never counted.
      allowList: (request) => request.policy.rateLimited === false,
      errorResponseBuilder: (_request, context) =>
        new AppError(
          429,
          'rate_limited',
          `more than ${context.max} requests in ${Math.round(config.rateLimitWindowMs / 1000)} s from this client (RATE_LIMIT_MAX); retry in ${context.after}`,
        ),
    });
    // As a root hook rather than per route: unknown paths and 401s count too.
    app.addHook('onRequest', app.rateLimit());
  }
}

/**
 * The Redis client the rate limit counts in when instances share it. Short timeouts and no
 * queue while disconnected: a request never waits on Redis for long, and with Redis down the
 * limit is skipped (`skipOnError`: it fails open, logged) rather than failing requests.
 */
function sharedCounter(app: FastifyInstance, url: string): Redis {
  const client = new Redis(url, { connectTimeout: 1000, commandTimeout: 500, maxRetriesPerRequest: 1, enableOfflineQueue: false });
  let down = false;
  client.on('error', (error: Error) => {
    if (!down) app.log.warn({ err: error }, 'rate limit store (Redis) unreachable: requests are not counted until it is back');
    down = true;
  });
  client.on('ready', () => (down = false));
  app.addHook('onClose', async () => {
    await client.quit().catch(() => client.disconnect());
  });
  return client;
}

/**
 * Helmet's security headers, worked out once. They depend on nothing in the request (no CSP
 * nonces), and building them per request (as the Fastify plugin does) cost a sixth of the CPU of
 * a cached metrics answer.
 */
export function securityHeaders(options: HelmetOptions): Record<string, string> {
  const csp = options.contentSecurityPolicy;
  const directives = typeof csp === 'object' && csp.directives ? Object.values(csp.directives) : [];
  if (directives.some((d) => typeof d === 'function' || (Array.isArray(d) && d.some((v) => typeof v === 'function')))) {
    throw new Error('securityHeaders: a CSP directive computed per request (a nonce) cannot be worked out once');
  }
  const headers: Record<string, string> = {};
  const response = {
    setHeader: (name: string, value: string | number | readonly string[]) => {
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
    },
    removeHeader: (name: string) => {
      delete headers[name.toLowerCase()];
    },
  };
  let failure: unknown;
  helmet(options)({} as IncomingMessage, response as unknown as ServerResponse, (error?: unknown) => {
    failure = error;
  });
  if (failure) throw failure;
  return headers;
}
