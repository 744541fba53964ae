import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db/dialects/index.js';
import { migrateToLatest } from '../src/db/migrator.js';
import { openApiDocument } from '../src/http/openapi-document.js';
import { DIALECTS } from './support/databases.js';
import { csv, orderId, useHarness } from './support/harness.js';
import { checkResponses, contractStats, OpenApiContract, sharedContract, toJsonSchema } from './support/openapi-validator.js';
import { multipart } from './support/multipart.js';

/**
 * The OpenAPI document against the code. The harness checks every answer of every test against
 * the document (test/support/openapi-validator.ts); here every operation is called, with good and
 * bad requests, so each of its declared answers is seen at least once, and the document itself is
 * checked: the same under every setting, every operation named and described, every API route in it.
 */

interface Operation {
  operationId?: string;
  summary?: string;
  description?: string;
  tags?: string[];
  security?: Array<Record<string, string[]>>;
  parameters?: Array<{ name: string; in: string }>;
  requestBody?: { required?: boolean; content: Record<string, { schema: Record<string, unknown> }> };
  responses: Record<string, { description: string; content?: Record<string, { schema: unknown }> }>;
}
interface Document {
  openapi: string;
  info: { description: string; license?: { name: string } };
  servers?: unknown[];
  tags: Array<{ name: string; description?: string }>;
  components: { securitySchemes: Record<string, unknown>; schemas: Record<string, unknown> };
  paths: Record<string, Record<string, Operation>>;
}

const WRITE = 'w-0123456789abcdefghij';
const READ = 'r-0123456789abcdefghij';
const METRICS = 'm-0123456789abcdefghij';
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

const operations = (doc: Document) =>
  Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ path, method, op })));

/** Every route the app answers, as "METHOD /path" (HEAD left out: Fastify adds it to every GET), from its route tree. */
function appRoutes(app: FastifyInstance): string[] {
  const routes: string[] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^([\s│├└─]*)(\S.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!match) continue;
    const depth = match[1]!.length / 4 - 1;
    stack.length = depth;
    stack.push(match[2]!);
    for (const method of match[3]?.split(', ') ?? []) if (method !== 'HEAD') routes.push(`${method} ${stack.join('')}`);
  }
  return routes;
}


describe('the OpenAPI document', () => {
  const h = useHarness('sqlite', {
    apiToken: WRITE,
    apiReadToken: READ,
    metricsToken: METRICS,
    corsOrigins: ['https://dash.example.com'],
    rateLimitMax: 100,
    requestTimeoutMs: 0,
    cacheMaxStaleMs: 0,
    maxUploadBytes: 1_000_000,
  });

  it('when served by an app with every setting changed, then it is the document `zinc openapi` prints, with the bearer scheme always', async () => {
    const printed = (await openApiDocument()) as Document;
    const served = (await h.app.inject({ url: '/docs/json' })).json() as Document;
    expect(served).toEqual(printed);
    expect(Object.keys(printed.components.securitySchemes).sort()).toEqual(['bearer', 'metricsToken']);
    expect(printed.servers).toHaveLength(1);
    expect(printed.info.license?.name).toBe('MIT');
    expect(printed.info.description).toMatch(/Every path also takes a trailing slash/);
  });

  it('when `zinc openapi` runs (the built CLI), then it prints that document as JSON', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [path.resolve('dist/src/cli.js'), 'openapi'], { env: { ...process.env, LOG_LEVEL: 'silent' } });
    expect(JSON.parse(stdout)).toEqual(await openApiDocument());
  });

  it('when read, then every operation has a unique camelCase operationId, a summary, a description and tags the document defines', async () => {
    const doc = (await openApiDocument()) as Document;
    const tags = new Set(doc.tags.map((t) => t.name));
    const ids = operations(doc).map(({ op }) => op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const { path, method, op } of operations(doc)) {
      const where = `${method.toUpperCase()} ${path}`;
      expect(op.operationId, where).toMatch(/^[a-z][A-Za-z]+$/);
      expect(op.summary, where).toBeTruthy();
      expect(op.description, where).toBeTruthy();
      expect(op.tags?.length, where).toBeGreaterThan(0);
      for (const tag of op.tags ?? []) expect(tags, `${where}: tag ${tag}`).toContain(tag);
    }
    expect(doc.tags.every((t) => t.description)).toBe(true);
    expect(ids.sort()).toEqual(
      [
        'getDailyRevenue', 'getHealth', 'getImport', 'getLiveness', 'getPrometheusMetrics', 'getReadiness', 'getRevenue',
        'getRevenueByProduct', 'getRevenueSeries', 'importSalesFolder', 'importSalesFolderByGet', 'listImports', 'undoImport', 'uploadImport',
      ].sort(),
    );
  });

  it('when read, then /api operations take the bearer token or none, say who may call them, and answer errors as ErrorResponse', async () => {
    const doc = (await openApiDocument()) as Document;
    for (const { path, method, op } of operations(doc)) {
      const where = `${method.toUpperCase()} ${path}`;
      if (path.startsWith('/api/')) {
        expect(op.security, where).toEqual([{ bearer: [] }, {}]);
        expect(Object.keys(op.responses), where).toEqual(expect.arrayContaining(['401', '429', '503']));
        // Only reads may be called with the read-only token: everything else declares its 403.
        const readable = method === 'get' && (path.startsWith('/api/metrics/') || path.startsWith('/api/imports'));
        expect('403' in op.responses, where).toBe(!readable);
      } else {
        expect(op.security, where).toEqual(path === '/metrics' ? [{ metricsToken: [] }, {}] : []);
      }
      for (const [status, answer] of Object.entries(op.responses)) {
        expect(answer.description, `${where} ${status}`).not.toBe('Default Response');
        if (Number(status) >= 400 && !path.startsWith('/health')) {
          expect(answer.content, `${where} ${status}`).toEqual({ 'application/json': { schema: { $ref: '#/components/schemas/ErrorResponse' } } });
        }
      }
    }
  });

  it('when read, then the upload declares its bodies: CSV text as such, or a form with its file part', async () => {
    const doc = (await openApiDocument()) as Document;
    const body = doc.paths['/api/imports']!.post!.requestBody!;
    expect(body.required).toBe(true);
    expect(Object.keys(body.content)).toEqual(['text/csv', 'application/csv', 'text/plain', 'multipart/form-data']);
    expect(body.content['text/csv']!.schema).toMatchObject({ type: 'string', format: 'binary' });
    expect(body.content['multipart/form-data']!.schema).toMatchObject({
      type: 'object',
      required: ['file'],
      properties: { file: { type: 'string', format: 'binary' }, on_error: { enum: ['fail', 'skip'] } },
    });
    // The body is declared for the document only: Fastify neither validates it nor buffers it (past
    // its 64 KiB body limit, a buffered body would be a 413).
    const upload = await h.app.inject({
      method: 'POST',
      url: '/api/imports/?filename=big.csv',
      headers: { ...bearer(WRITE), 'content-type': 'text/csv' },
      payload: csv([['2024-01-01', orderId(), 'P', '1.00']]) + '\n'.repeat(100_000),
    });
    expect(upload.statusCode, upload.body).toBe(200);
    expect(upload.json()).toMatchObject({ filename: 'big.csv', status: 'success', num_rows: 1 });
  });

  it('when the app is built, then every route under /api, /health and /metrics is in the document, and every document path is a route', async () => {
    const doc = (await openApiDocument()) as Document;
    const documented = operations(doc).map(({ path, method }) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`);
    await h.app.ready();
    const routes = appRoutes(h.app);
    expect(routes.length).toBeGreaterThan(documented.length);
    // The API, the probes and the Prometheus endpoint: answers of a route left out would go unchecked.
    const served = (path: string) => path.startsWith('/api') || path.startsWith('/health') || path === '/metrics';
    expect(routes.filter((r) => served(r.split(' ')[1]!)).sort()).toEqual(documented.filter((r) => served(r.split(' ')[1]!)).sort());
    for (const route of documented) expect(routes).toContain(route);
  });
});

describe.each(DIALECTS)('every operation, against the document (%s)', (kind) => {
  const h = useHarness(kind, { apiToken: WRITE, apiReadToken: READ, metricsToken: METRICS, rateLimitMax: 0, maxUploadBytes: 4096 });

  it('when each operation is called, well and badly, then each declared answer comes back as the document says', async () => {
    const contract = await sharedContract();
    const doc = contract.document as unknown as Document;
    const seen = new Set<string>();
    const before = contractStats.checked;
    // Through the harness's app: a status or body the document does not declare rejects here.
    const call = async (options: InjectOptions, status: number, token: string | null = WRITE) => {
      const res = await h.app.inject({ ...options, headers: { ...(token ? bearer(token) : {}), ...options.headers } });
      expect(res.statusCode, `${options.method ?? 'GET'} ${String(options.url)}: ${res.body}`).toBe(status);
      const path = String(options.url).split('?')[0]!.replace(/\/$/, '');
      const template = Object.keys(doc.paths).find((p) => new RegExp(`^${p.replace(/\{\w+\}/g, '[^/]+')}$`).test(path));
      seen.add(`${doc.paths[template!]![(options.method ?? 'GET').toLowerCase()]!.operationId} ${status}`);
      return res;
    };

    h.writeCsv('2024-01.csv', csv([['2024-01-02', orderId(), 'P-1', '10.50'], ['2024-01-03', orderId(), 'P-2', '4.25']]));
    await call({ url: '/health' }, 200, null);
    await call({ url: '/health/live' }, 200, null);
    await call({ url: '/health/ready' }, 200, null);
    await call({ url: '/metrics' }, 401, null);
    const metrics = await call({ url: '/metrics' }, 200, METRICS);
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/);

    await call({ method: 'POST', url: '/api/import-sales' }, 403, READ);
    await call({ method: 'POST', url: '/api/import-sales?on_error=maybe' }, 400);
    await call({ method: 'POST', url: '/api/import-sales', headers: { 'content-type': 'application/xml' }, payload: '<a/>' }, 415);
    await call({ method: 'POST', url: '/api/import-sales', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ pad: 'x'.repeat(70_000) }) }, 413);
    await call({ method: 'POST', url: '/api/import-sales', headers: { 'content-type': 'application/json' }, payload: '{' }, 400);
    const run = await call({ method: 'POST', url: '/api/import-sales/' }, 200);
    const id = (run.json() as { files: Array<{ id: number }> }).files[0]!.id;
    h.writeCsv('2024-02.csv', csv([['2024-02-02', orderId(), 'P-1', '3.00']]));
    await call({ url: '/api/import-sales?async=true' }, 202);
    h.writeCsv('2024-03.csv', csv([['2024-03-02', orderId(), 'P-1', '3.00']]));
    await call({ method: 'POST', url: '/api/import-sales?async=true' }, 202);
    await call({ url: '/api/import-sales?on_error=skip' }, 200);
    await call({ url: '/api/import-sales?async=maybe' }, 400);
    await call({ url: '/api/import-sales' }, 403, READ);
    for (const method of ['GET', 'POST'] as const) await call({ method, url: '/api/import-sales' }, 401, null);

    const upload = (payload: string, headers: Record<string, string>, query = '') =>
      ({ method: 'POST', url: `/api/imports${query}`, payload, headers }) as const;
    await call(upload(csv([['2024-03-01', orderId(), 'P-3', '1.00']]), { 'content-type': 'text/csv' }, '?filename=march.csv'), 200);
    const form = multipart({ on_error: 'skip' }, { name: 'form.csv', content: csv([['2024-03-02', orderId(), 'P-3', '2.00'], ['bad', 'x', 'y', 'z']]) });
    expect((await call({ method: 'POST', url: '/api/imports', ...form }, 200)).json()).toMatchObject({ status: 'partial', num_rows: 1 });
    await call(upload(csv([['2024-03-03', orderId(), 'P-3', '1.00']]), { 'content-type': 'text/csv' }, '?async=true'), 202);
    await call(upload('date,order_id\n', { 'content-type': 'application/octet-stream' }), 415);
    await call(upload('date\0,order_id\n', { 'content-type': 'text/csv' }), 415);
    await call(upload('x'.repeat(5000), { 'content-type': 'text/csv' }), 413);
    await call(upload(csv([]), { 'content-type': 'text/csv' }, '?on_error=maybe'), 400);
    await call(upload(csv([]), { 'content-type': 'text/csv' }), 403, READ);
    await call(upload(csv([]), { 'content-type': 'text/csv' }), 401, null);

    await call({ url: '/api/imports?limit=2' }, 200, READ);
    await call({ url: '/api/imports?limit=0' }, 400, READ);
    await call({ url: `/api/imports/${id}` }, 200, READ);
    await call({ url: '/api/imports/999999' }, 404, READ);
    await call({ url: '/api/imports/abc' }, 400, READ);
    await call({ url: '/api/imports' }, 401, null);
    await call({ url: `/api/imports/${id}` }, 401, null);
    await call({ method: 'DELETE', url: `/api/imports/${id}` }, 401, null);
    await call({ method: 'DELETE', url: `/api/imports/${id}` }, 403, READ);
    await call({ method: 'DELETE', url: `/api/imports/${id}`, headers: { 'content-type': 'application/xml' }, payload: '<a/>' }, 415);
    await call({ method: 'DELETE', url: `/api/imports/${id}`, headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ pad: 'x'.repeat(70_000) }) }, 413);
    await call({ method: 'DELETE', url: `/api/imports/${id}` }, 200);
    await call({ method: 'DELETE', url: `/api/imports/${id}` }, 409);
    await call({ method: 'DELETE', url: '/api/imports/999999' }, 404);
    await call({ method: 'DELETE', url: '/api/imports/0' }, 400);

    for (const [url, bad] of [
      ['/api/metrics/revenue', 'compare=next'],
      ['/api/metrics/revenue/daily', 'end=2024-13-01'],
      ['/api/metrics/revenue/series', 'granularity=fortnight'],
      ['/api/metrics/revenue/by-product', 'limit=0'],
    ] as const) {
      const res = await call({ url: `${url}?start=2024-01-01&end=2024-03-31` }, 200, READ);
      await call({ url: `${url}?start=2024-01-01&end=2024-03-31`, headers: { 'if-none-match': res.headers.etag as string } }, 304, READ);
      await call({ url: `${url}/?${bad}` }, 400, READ);
      await call({ url }, 401, null);
    }
    await call({ url: '/api/metrics/revenue?start=2024-01-01&end=2024-01-31&compare=previous_period&product_id=P-1' }, 200, READ);

    // Every operation was called, and most of what each declares was answered.
    const ids = new Set([...seen].map((s) => s.split(' ')[0]));
    expect(ids.size).toBe(operations(doc).length);
    const declared = operations(doc).flatMap(({ op }) => Object.keys(op.responses).map((status) => `${op.operationId} ${status}`));
    const unseen = declared.filter((d) => !seen.has(d));
    // Not called here: database trouble and timeouts (503: test/database-faults.test.ts), rate limits
    // (429: below), object storage errors (502: test/s3-import.test.ts).
    expect(unseen.filter((u) => !/ (502|503|429)$/.test(u))).toEqual([]);
    expect(contractStats.checked - before).toBeGreaterThanOrEqual(seen.size);
  });

  it('when a client goes past the rate limit, then its 429 is as declared, on the API and on /metrics', async () => {
    const app = await h.rebuild({ rateLimitMax: 2 });
    for (const [url, token] of [['/api/metrics/revenue', READ], ['/metrics', METRICS]] as const) {
      const answers = [];
      for (let i = 0; i < 3; i += 1) answers.push(await app.inject({ url, headers: bearer(token) }));
      expect(answers.at(-1)!.statusCode, url).toBe(429);
      // The document says a 429 always carries Retry-After, in seconds.
      expect(answers.at(-1)!.headers['retry-after'], url).toMatch(/^\d+$/);
    }
  });
});

describe('the contract check', () => {
  const doc = {
    paths: {
      '/api/things/{id}': {
        get: {
          responses: {
            200: {
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    required: ['id', 'note'],
                    properties: { id: { type: 'integer' }, note: { type: 'string', nullable: true }, day: { type: 'string', format: 'date' } },
                  },
                },
              },
            },
            304: {},
            404: { content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorResponse' } } } },
          },
        },
      },
    },
    components: {
      schemas: {
        ErrorResponse: { type: 'object', required: ['error', 'message'], properties: { error: { type: 'string' }, message: { type: 'string' } } },
      },
    },
  };
  const contract = new OpenApiContract(doc);
  const answer = (statusCode: number, body: unknown, contentType = 'application/json; charset=utf-8') => ({
    method: 'GET',
    route: '/api/things/:id',
    url: '/api/things/1',
    statusCode,
    contentType,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

  it('when an answer matches, then there is no problem; when it does not, then the problem says how', () => {
    expect(contract.problem(answer(200, { id: 1, note: null, day: '2024-02-29' }))).toBeUndefined();
    expect(contract.problem(answer(304, ''))).toBeUndefined();
    expect(contract.problem(answer(404, { error: 'not_found', message: 'no thing 1' }))).toBeUndefined();
    expect(contract.problem({ ...answer(200, ''), method: 'HEAD' })).toBeUndefined();

    expect(contract.problem(answer(418, { error: 'teapot', message: 'no' }))).toMatch(/does not declare 418 \(it declares 200, 304, 404\)/);
    expect(contract.problem(answer(200, { id: '1', note: null }))).toMatch(/\/id must be integer/);
    expect(contract.problem(answer(200, { id: 1 }))).toMatch(/must have required property 'note'/);
    expect(contract.problem(answer(200, { id: 1, note: 'a', extra: true }))).toMatch(/must NOT have additional properties.*extra/);
    expect(contract.problem(answer(200, { id: 1, note: 'a', day: '2023-02-29' }))).toMatch(/\/day must match format "date"/);
    expect(contract.problem(answer(200, { id: 1, note: 'a' }, 'text/html'))).toMatch(/answered as text\/html, the document declares application\/json/);
    expect(contract.problem(answer(200, 'not json'))).toMatch(/the body is not JSON/);
    expect(contract.problem(answer(304, 'a body'))).toMatch(/declares no body for 304/);
    expect(contract.problem(answer(404, { error: 'not_found' }))).toMatch(/must have required property 'message'/);
    // Routes the document leaves out (pages, a test's own routes, the 404 handler) are not checked.
    expect(contract.problem({ ...answer(500, 'x'), route: '/somewhere' })).toBeUndefined();
    expect(contract.problem({ ...answer(500, 'x'), route: undefined })).toBeUndefined();
  });

  it('when OpenAPI 3.0 schemas are converted, then nullable means null too, refs are inlined and objects are closed', () => {
    expect(toJsonSchema({ type: 'string', nullable: true, enum: ['a'] })).toEqual({ type: ['string', 'null'], enum: ['a', null] });
    expect(toJsonSchema({ anyOf: [{ type: 'string' }, { type: 'integer' }], nullable: true })).toEqual({
      anyOf: [{ anyOf: [{ type: 'string' }, { type: 'integer' }] }, { type: 'null' }],
    });
    expect(toJsonSchema({ $ref: '#/components/schemas/E' }, { E: { type: 'object', properties: { a: { type: 'string', example: 'x' } } } })).toEqual({
      type: 'object',
      properties: { a: { type: 'string' } },
      additionalProperties: false,
    });
    expect(() => toJsonSchema({ $ref: '#/components/schemas/Nope' })).toThrow(/does not define/);
  });

  it('when a real app answers what its document does not declare, then app.inject rejects naming the operation and status', async () => {
    const h = { app: undefined as FastifyInstance | undefined };
    const dir = mkdtempSync(path.join(tmpdir(), 'zinc-contract-'));
    const config = loadConfig({ DATABASE_URL: `sqlite:${path.join(dir, 'zinc.sqlite')}`, SALES_DIR: dir, LOG_LEVEL: 'silent' });
    const database = openDatabase(config.database);
    try {
      await migrateToLatest(database.writer);
      h.app = checkResponses(await buildApp({ config, database, logger: false }));
      // A drift: the list of imports answered with a status its operation does not declare.
      h.app.addHook('onSend', async (request, reply, payload) => {
        if (request.url === '/api/imports') reply.code(418);
        return payload;
      });
      await expect(h.app.inject({ url: '/api/imports' })).rejects.toThrow(/GET \/api\/imports → 418: GET \/api\/imports does not declare 418/);
      expect((await h.app.inject({ url: '/api/imports/' + '12' })).statusCode).toBe(404);
    } finally {
      await h.app?.close();
      await database.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
