import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import type { FastifySchema, RouteOptions } from 'fastify';
import type { RoutePolicy } from './route-policy.js';

/**
 * The OpenAPI document's options for @fastify/swagger: what the document says beyond the route
 * schemas. It depends on no setting, so every instance (and the committed client) sees the same
 * document. What a route's policy implies (route-policy.ts: who may call it, whether it is rate
 * limited) is added to its operation here, from the policy itself: its security, and its 401,
 * 403 and 429 answers. Everything else a route answers, it declares in its own schema.
 */

/** A request body as OpenAPI states it (3.0 Media Type Objects), for a route whose body Fastify never parses. */
export interface DocumentedBody {
  description: string;
  content: Record<string, { schema: Record<string, unknown>; encoding?: Record<string, { contentType: string }> }>;
}

declare module 'fastify' {
  interface FastifySchema {
    /**
     * The request body of a route that streams it (uploads), for the document only: a `body`
     * schema would make Fastify validate it, which a stream cannot pass, and which would mean
     * buffering it.
     */
    streamedBody?: DocumentedBody;
  }
}

/** Where the document carries a streamed body until transformObject moves it into `requestBody`. */
const STREAMED_BODY = 'x-zinc-streamed-body';

/** What a status means, when the route does not say more. */
const STATUS_DESCRIPTIONS: Record<string, string> = {
  200: 'OK',
  202: 'Accepted: the work goes on in the background',
  304: 'Not modified: the If-None-Match ETag is still current (the data has not changed)',
  400: 'A parameter is invalid; `field` names it',
  401: 'No valid token: send `Authorization: Bearer <token>` (only asked for when the server has API_TOKEN set)',
  403: 'The read-only token (API_READ_TOKEN) may not do this; use API_TOKEN',
  404: 'Not found',
  409: 'Conflicts with the current state; nothing was changed',
  413: 'The request body is too large; nothing was stored',
  415: 'The request body is of a type this operation does not take; nothing was stored',
  429: 'Too many requests from this client in the window (RATE_LIMIT_MAX per RATE_LIMIT_WINDOW_MS); retry after Retry-After seconds',
  502: 'A server Zinc depends on (the object storage of SALES_URL) answered with an error',
  503: 'Unavailable: the database cannot be reached or written, a write kept conflicting, or no answer within REQUEST_TIMEOUT_MS; retry after Retry-After seconds',
};

const errorResponse = { $ref: 'ErrorResponse#' } as const;

/** Methods Fastify reads a body for: a body it cannot parse is a 400, 413 or 415 on these. */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const API_DESCRIPTION = [
  'Sales CSV import and exact revenue metrics. Money is a decimal string with two fraction digits.',
  '',
  'Every path also takes a trailing slash (`/api/metrics/revenue/` is `/api/metrics/revenue`); the document lists each path once, without it.',
  '',
  'Errors are JSON (`ErrorResponse`): a stable machine code in `error`, a sentence in `message`, and the parameter at fault in `field`.',
  '',
  'Authentication: when the server has API_TOKEN set, every `/api` operation needs `Authorization: Bearer <token>`: API_TOKEN for anything, ',
  'or API_READ_TOKEN (when set) for reading metrics and import records only. Without API_TOKEN the API is open, ',
  'so the `/api` operations list both the bearer scheme and no scheme. The health probes never need a token; ',
  '`/metrics` needs METRICS_TOKEN when that is set.',
].join('\n');

/** The options @fastify/swagger is registered with. */
export function openApiOptions(): FastifyDynamicSwaggerOptions {
  return {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Zinc',
        version: '1.0.0',
        description: API_DESCRIPTION,
        license: { name: 'MIT', url: 'https://spdx.org/licenses/MIT.html' },
        contact: { name: 'Zinc' },
      },
      servers: [
        {
          url: '{scheme}://{host}',
          description: 'A Zinc instance (default: one started with `npm start` on this machine)',
          variables: {
            scheme: { enum: ['http', 'https'], default: 'http' },
            host: { default: 'localhost:8000', description: 'host:port of the instance' },
          },
        },
      ],
      tags: [
        { name: 'metrics', description: 'Revenue questions over the imported sales, exact to the cent' },
        { name: 'imports', description: 'Importing sales CSV files (the sales folder, or an upload), import records, undo' },
        { name: 'health', description: 'Probes and Prometheus metrics for operating the service' },
      ],
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description:
              'Required only when the server has API_TOKEN set: API_TOKEN for everything; API_READ_TOKEN (when set) ' +
              'for GET of metrics and import records only (403 elsewhere)',
          },
          metricsToken: {
            type: 'http',
            scheme: 'bearer',
            description: 'METRICS_TOKEN, required for /metrics only when the server has it set',
          },
        },
      },
    },
    // Shared schemas are named by their $id (ErrorResponse), not def-0.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    transform: ({ schema, url, route }) => ({ schema: documentedSchema(schema, route) ?? schema, url }),
    transformObject: (document) => finishDocument(('openapiObject' in document ? document.openapiObject : document.swaggerObject) as Partial<Document>),
  };
}

/** A route's schema as the document shows it: its security and the answers its policy implies added. */
function documentedSchema(schema: FastifySchema | undefined, route: RouteOptions): FastifySchema | undefined {
  if (!schema || schema.hide) return schema;
  const { streamedBody, ...rest } = schema;
  const policy = route.config as Partial<RoutePolicy> | undefined;
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  const response: Record<string, unknown> = { ...(schema.response as Record<string, unknown> | undefined) };
  const answers = (status: number) => (response[status] ??= errorResponse);

  if (schema.querystring || schema.params) answers(400);
  if (policy?.access === 'read' || policy?.access === 'admin') answers(401);
  if (policy?.access === 'admin') answers(403);
  if (methods.some((m) => BODY_METHODS.has(m))) {
    answers(400);
    answers(413);
    answers(415);
  }
  if (policy?.rateLimited !== false) answers(429);

  return {
    ...rest,
    ...(schema.security ? {} : { security: policy?.access === 'open' ? [] : [{ bearer: [] }, {}] }),
    response: Object.fromEntries(Object.entries(response).sort(([a], [b]) => a.localeCompare(b))),
    ...(streamedBody ? { [STREAMED_BODY]: streamedBody } : {}),
  };
}

type Document = Record<string, unknown> & { paths?: Record<string, Record<string, Operation>> };
interface Operation {
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: { $ref?: string } }>; headers?: unknown }>;
  requestBody?: unknown;
  [STREAMED_BODY]?: DocumentedBody;
}

/** Sent with 429, and with the 503s worth retrying soon (timeout, database unavailable or not writable). */
const RETRY_AFTER = { description: 'Seconds to wait before trying again', schema: { type: 'integer', minimum: 0 } };

/** The last touches: streamed request bodies in place, every answer described, Retry-After where it comes. */
function finishDocument(document: Partial<Document>): Document {
  for (const item of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(item)) {
      const body = operation[STREAMED_BODY];
      if (body) {
        delete operation[STREAMED_BODY];
        operation.requestBody = { required: true, ...body };
      }
      for (const [status, answer] of Object.entries(operation.responses ?? {})) {
        if (answer.description === undefined || answer.description === 'Default Response') {
          answer.description = STATUS_DESCRIPTIONS[status] ?? 'See the error code';
        }
        const error = answer.content?.['application/json']?.schema?.$ref === '#/components/schemas/ErrorResponse';
        if (status === '429') answer.headers = { 'Retry-After': { ...RETRY_AFTER, required: true } };
        if (status === '503' && error) answer.headers = { 'Retry-After': RETRY_AFTER };
      }
    }
  }
  return document as Document;
}
