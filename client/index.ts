/**
 * The typed client of Zinc's HTTP API: openapi-fetch over the types generated from the OpenAPI
 * document the server serves (schema.ts, parameters.ts: `npm run generate:client`), the API token
 * as a Bearer header, and the API's error answers as ZincApiError. No framework and no Node-only
 * module: the dashboard (web/) and the tests use it alike.
 *
 * @example
 * const zinc = createZincClient({ baseUrl: 'http://localhost:8000', token: process.env.API_TOKEN });
 * const totals = await unwrap(zinc.GET('/api/metrics/revenue', { params: { query: { start: '2024-01-01', end: '2024-01-31' } } }));
 * totals.total_revenue; // "12345.67"
 */
import createClient, { type Client, type ClientOptions } from 'openapi-fetch';
import type { paths } from './schema.js';

export type { paths } from './schema.js';
export { parameters } from './parameters.js';

/** A client of the API: `GET`, `POST`, `DELETE` … take a path of the document and its typed parameters. */
export type ZincClient = Client<paths>;

export interface ZincClientOptions extends Omit<ClientOptions, 'baseUrl'> {
  /** Where Zinc answers, e.g. http://localhost:8000; '' (the default) is the page's own origin. */
  baseUrl?: string;
  /** API_TOKEN (or API_READ_TOKEN), or a function asked before each request when the token may change. */
  token?: string | null | (() => string | null | undefined);
}

/**
 * A client for one server. Each request asks for JSON; those to `/api/…` (the operations the
 * document secures with the bearer scheme) carry the token as `Authorization: Bearer …`, unless
 * the call sets its own authorization header. /health and /metrics never get it.
 *
 * @example
 * const zinc = createZincClient({ baseUrl: server.url, token: () => sessionStorage.getItem('token') });
 */
export function createZincClient({ token, ...options }: ZincClientOptions = {}): ZincClient {
  const client = createClient<paths>({ baseUrl: '', ...options });
  client.use({
    onRequest({ request, schemaPath }) {
      if (!request.headers.has('accept')) request.headers.set('accept', 'application/json');
      const value = schemaPath.startsWith('/api/') ? (typeof token === 'function' ? token() : token) : undefined;
      if (value && !request.headers.has('authorization')) request.headers.set('authorization', `Bearer ${value}`);
      return request;
    },
  });
  return client;
}

type Methods<P extends keyof paths> = {
  [M in keyof paths[P]]-?: NonNullable<paths[P][M]> extends { responses: unknown } ? M : never;
}[keyof paths[P]];
type Operation<P extends keyof paths, M extends Methods<P>> = NonNullable<paths[P][M]> extends infer O extends { responses: object } ? O : never;
type JsonOf<R> = R extends { content: { 'application/json': infer T } } ? T : never;

/** The JSON body of an operation's answer with status `S` (200 unless named): Answer<'/api/imports/{id}', 'get'>. */
export type Answer<P extends keyof paths, M extends Methods<P>, S extends number = 200> =
  S extends keyof Operation<P, M>['responses'] ? JsonOf<Operation<P, M>['responses'][S]> : never;

/** An operation's query parameters: Query<'/api/metrics/revenue', 'get'>. */
export type Query<P extends keyof paths, M extends Methods<P>> =
  Operation<P, M> extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;

// The answers, by name (all from the document; none is written by hand).
/** Every error answer: a stable code, a sentence, and the parameter at fault when there is one. */
export type ErrorBody = Answer<'/api/metrics/revenue', 'get', 400>;
export type RevenueTotals = Answer<'/api/metrics/revenue', 'get'>;
export type RevenueDaily = Answer<'/api/metrics/revenue/daily', 'get'>;
export type RevenueSeries = Answer<'/api/metrics/revenue/series', 'get'>;
export type SeriesPeriod = RevenueSeries['periods'][number];
export type Granularity = RevenueSeries['granularity'];
export type RevenueByProduct = Answer<'/api/metrics/revenue/by-product', 'get'>;
export type ProductRevenue = RevenueByProduct['products'][number];
export type ImportList = Answer<'/api/imports', 'get'>;
export type ImportSummary = ImportList['imports'][number];
/** One import record with its row errors, and its progress while processing. */
export type ImportRecord = Answer<'/api/imports/{id}', 'get'>;
export type ImportStatus = ImportRecord['status'];
export type RowError = ImportRecord['errors'][number];
export type ImportProgress = NonNullable<ImportRecord['progress']>;
/** What an upload answers when it finished at once, or was skipped as already imported. */
export type FileResult = Answer<'/api/imports', 'post', 200>;
export type FolderImport = Answer<'/api/import-sales', 'post', 200>;
export type Health = Answer<'/health', 'get'>;

/** An error answer of the API (or of something in front of it), with the API's own code and message when it gave them. */
export class ZincApiError extends Error {
  override readonly name = 'ZincApiError';
  constructor(
    /** The HTTP status; 0 when no answer came. */
    readonly status: number,
    /** The API's stable machine code (`invalid_parameter`, `not_found` …), or `http_error`. */
    readonly code: string,
    message: string,
    /** The parameter at fault, when the API named one. */
    readonly field?: string,
  ) {
    super(message);
  }
}

function isErrorBody(body: unknown): body is ErrorBody {
  const b = body as Partial<Record<keyof ErrorBody, unknown>> | null;
  return typeof b === 'object' && b !== null && typeof b.error === 'string' && typeof b.message === 'string';
}

/**
 * The ZincApiError for an error answer: `body` is what came back (openapi-fetch's `error`, or a
 * parsed body), used when it is the API's error JSON; anything else is named by the status.
 *
 * @example
 * const { error, response } = await zinc.GET('/api/imports/{id}', { params: { path: { id: 7 } } });
 * if (error) throw apiError(response, error); // ZincApiError 404 not_found
 */
export function apiError(response: { status: number; statusText?: string }, body: unknown): ZincApiError {
  if (isErrorBody(body)) return new ZincApiError(response.status, body.error, body.message, body.field);
  return new ZincApiError(response.status, 'http_error', `${response.status} ${response.statusText || 'error'}`.trim());
}

/**
 * The data of a call's successful answer; an error answer throws ZincApiError. (A request that
 * gets no answer at all rejects as fetch does: TypeError, or AbortError when aborted.)
 *
 * @example
 * const list = await unwrap(zinc.GET('/api/imports', { params: { query: { limit: 20 } } }));
 */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (error !== undefined || !response.ok) throw apiError(response, error);
  return data as T;
}

/**
 * The body options of `POST /api/imports` for a CSV sent as the request body (`text/csv`), streamed
 * by the server to disk; name the file with the `filename` query parameter.
 *
 * @example
 * await unwrap(zinc.POST('/api/imports', { params: { query: { filename: 'may.csv' } }, ...csvBody(text) }));
 */
export function csvBody(csv: Blob | string) {
  return {
    body: typeof csv === 'string' ? new Blob([csv], { type: 'text/csv' }) : csv,
    bodySerializer: (body: unknown) => body,
    headers: { 'content-type': 'text/csv' },
  };
}

/**
 * The body options for a `multipart/form-data` request (POST /api/imports with a `file` field):
 * each field a form part, plain fields first and files last (the server reads its fields before
 * or after the file); a File keeps its name as the part's filename.
 *
 * @example
 * await unwrap(zinc.POST('/api/imports', formBody({ file: new File([text], 'may.csv'), on_error: 'skip' })));
 */
export function formBody<const T extends Record<string, Blob | string | number | boolean | undefined>>(fields: T) {
  return {
    body: fields,
    // openapi-fetch types the serializer's argument as any of the operation's bodies: it is `fields`.
    bodySerializer: (body: unknown) => {
      const form = new FormData();
      const entries = Object.entries(body as T);
      for (const [name, value] of entries) if (value !== undefined && !(value instanceof Blob)) form.append(name, String(value));
      for (const [name, value] of entries) {
        if (value instanceof Blob) form.append(name, value, 'name' in value && typeof value.name === 'string' ? value.name : name);
      }
      return form;
    },
  };
}
