import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createZincClient, csvBody, formBody, unwrap, ZincApiError, type ZincClient } from '../client/index.js';
import { startServer, type RunningServer } from '../src/server.js';
import { testConfig } from './support/config.js';
import { createTestDatabase, DIALECTS, type TestDatabase } from './support/databases.js';
import { csv } from './support/harness.js';
import { OpenApiContract } from './support/openapi-validator.js';

/**
 * The typed client (client/, generated from the served OpenAPI document) against a real server
 * listening on a port, on each database: a folder import, uploads as text/csv and as a form,
 * revenue questions answered to the cent (expected values worked out by hand from the rows each
 * test writes), import records, undo, and error answers read through ZincApiError. Each test
 * writes its own month of sales, so the tests share one server without seeing each other's rows.
 * Every answer the clients get is also checked against client/openapi.json, the document their
 * types were generated from: what the types promise is what came.
 */

const TOKEN = 'client-test-token-5c1e';
const quiet = { info: () => {}, warn: () => {}, error: () => {} };
const contract = new OpenApiContract(JSON.parse(readFileSync(new URL('../client/openapi.json', import.meta.url), 'utf8')));
const mismatches: string[] = [];
let checkedAnswers = 0;

/** The client, with each answer checked against the committed document (mismatches collected for afterEach). */
function checked(client: ZincClient): ZincClient {
  client.use({
    async onResponse({ request, response, schemaPath }) {
      const problem = contract.problem({
        method: request.method,
        route: schemaPath,
        url: request.url,
        statusCode: response.status,
        contentType: response.headers.get('content-type') ?? undefined,
        body: await response.clone().text(),
      });
      checkedAnswers += 1;
      if (problem) mismatches.push(problem);
    },
  });
  return client;
}

afterEach(() => {
  expect(mismatches.splice(0), 'answers that differ from client/openapi.json').toEqual([]);
});

afterAll(() => {
  expect(checkedAnswers).toBeGreaterThan(0);
});

describe.each(DIALECTS)('typed client against a live server (%s)', (kind) => {
  let database: TestDatabase;
  let server: RunningServer;
  let salesDir: string;
  let zinc: ZincClient;

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    salesDir = mkdtempSync(path.join(tmpdir(), 'zinc-client-sales-'));
    server = await startServer(testConfig(database.config, salesDir, { apiToken: TOKEN }), quiet);
    zinc = checked(createZincClient({ baseUrl: server.url, token: TOKEN }));
  });

  afterAll(async () => {
    await server?.close({ drain: false });
    await database?.drop();
    if (salesDir) rmSync(salesDir, { recursive: true, force: true });
  });

  const totals = (start: string, end: string) => unwrap(zinc.GET('/api/metrics/revenue', { params: { query: { start, end } } }));

  it('imports the sales folder (POST /api/import-sales), then skips the same files, and answers their totals and days', async () => {
    writeFileSync(
      path.join(salesDir, '2024-01-a.csv'),
      csv([
        ['2024-01-01', 'JAN-1', 'P1', '10.50'],
        ['2024-01-01', 'JAN-1', 'P2', '4.25'],
        ['2024-01-03', 'JAN-2', 'P1', '-2.00'],
      ]),
    );
    writeFileSync(
      path.join(salesDir, '2024-01-b.csv'),
      csv([
        ['2024-01-03', 'JAN-3', 'P3', '100.00'],
        ['2024-01-05', 'JAN-4', 'P2', '0.01'],
      ]),
    );

    const run = await unwrap(zinc.POST('/api/import-sales'));
    expect(run.files.map((f) => [f.filename, f.status, f.num_rows])).toEqual([
      ['2024-01-a.csv', 'success', 3],
      ['2024-01-b.csv', 'success', 2],
    ]);
    expect('summary' in run && run.summary).toEqual({ imported: 2, partial: 0, skipped: 0, failed: 0, rows: 5 });

    const again = await unwrap(zinc.POST('/api/import-sales'));
    expect(again.files.map((f) => f.status)).toEqual(['skipped', 'skipped']);

    expect(await totals('2024-01-01', '2024-01-31')).toMatchObject({
      start: '2024-01-01',
      end: '2024-01-31',
      currency: 'SGD',
      total_revenue: '112.76',
      order_count: 4,
      sale_count: 5,
      average_order_value: '28.19',
    });
    const daily = await unwrap(zinc.GET('/api/metrics/revenue/daily', { params: { query: { start: '2024-01-01', end: '2024-01-05' } } }));
    expect(daily.days).toEqual([
      { date: '2024-01-01', revenue: '14.75', order_count: 1, sale_count: 2 },
      { date: '2024-01-02', revenue: '0.00', order_count: 0, sale_count: 0 },
      { date: '2024-01-03', revenue: '98.00', order_count: 2, sale_count: 2 },
      { date: '2024-01-04', revenue: '0.00', order_count: 0, sale_count: 0 },
      { date: '2024-01-05', revenue: '0.01', order_count: 1, sale_count: 1 },
    ]);
  });

  it('uploads a CSV as the body (text/csv) and as a form (multipart), and reads the records back', async () => {
    const body = await unwrap(
      zinc.POST('/api/imports', {
        params: { query: { filename: '2024-02.csv' } },
        ...csvBody(csv([['2024-02-10', 'FEB-1', 'P1', '7.00'], ['2024-02-11', 'FEB-2', 'P2', '3.10']])),
      }),
    );
    expect(body).toMatchObject({ filename: '2024-02.csv', status: 'success', num_rows: 2, rows_rejected: 0 });

    const file = new File([csv([['2024-03-01', 'MAR-1', 'P1', '1.99'], ['2024-03-02', 'MAR-2', 'P1', '12.3.4'], ['2024-03-02', 'MAR-3', 'P2', '8.00']])], '2024-03.csv');
    const form = await unwrap(zinc.POST('/api/imports', formBody({ file, on_error: 'skip' })));
    expect(form).toMatchObject({ filename: '2024-03.csv', status: 'partial', num_rows: 2, rows_rejected: 1, error_count: 1 });

    const record = await unwrap(zinc.GET('/api/imports/{id}', { params: { path: { id: form.id } } }));
    expect(record).toMatchObject({ id: form.id, filename: '2024-03.csv', status: 'partial', on_error: 'skip', num_rows: 2, rows_rejected: 1 });
    expect(record.errors).toHaveLength(1);
    expect(record.errors[0]).toMatchObject({ line: 3, column: 'amount_sgd' });
    expect(record.errors[0]!.message).toMatch(/amount_sgd|decimal/i);

    expect(await totals('2024-02-01', '2024-02-29')).toMatchObject({ total_revenue: '10.10', order_count: 2, sale_count: 2 });
    expect(await totals('2024-03-01', '2024-03-31')).toMatchObject({ total_revenue: '9.99', order_count: 2, sale_count: 2 });

    // The same bytes again: skipped, nothing changes.
    const repeat = await unwrap(
      zinc.POST('/api/imports', {
        params: { query: { filename: 'copy.csv' } },
        ...csvBody(csv([['2024-02-10', 'FEB-1', 'P1', '7.00'], ['2024-02-11', 'FEB-2', 'P2', '3.10']])),
      }),
    );
    expect(repeat).toMatchObject({ status: 'skipped', id: body.id });
    expect(await totals('2024-02-01', '2024-02-29')).toMatchObject({ total_revenue: '10.10', sale_count: 2 });
  });

  it('answers revenue questions exactly: a comparison, a product filter, series by week and month, days, top products', async () => {
    await unwrap(
      zinc.POST('/api/imports', {
        params: { query: { filename: '2023-05.csv' } },
        ...csvBody(
          csv([
            ['2023-04-25', 'MAY-A1', 'SKU-A', '20.00'],
            ['2023-04-30', 'MAY-A2', 'SKU-B', '30.00'],
            ['2023-05-01', 'MAY-B1', 'SKU-A', '15.00'],
            ['2023-05-01', 'MAY-B1', 'SKU-B', '5.00'],
            ['2023-05-02', 'MAY-B2', 'SKU-A', '15.00'],
            ['2023-05-07', 'MAY-B3', 'SKU-C', '40.00'],
            ['2023-05-08', 'MAY-B4', 'SKU-C', '99.99'],
          ]),
        ),
      }),
    );
    const week = { start: '2023-05-01', end: '2023-05-07' };

    const compared = await unwrap(zinc.GET('/api/metrics/revenue', { params: { query: { ...week, compare: 'previous_period' } } }));
    expect(compared).toMatchObject({ total_revenue: '75.00', order_count: 3, sale_count: 4, average_order_value: '25.00' });
    expect(compared.previous).toEqual({
      start: '2023-04-24',
      end: '2023-04-30',
      total_revenue: '50.00',
      order_count: 2,
      sale_count: 2,
      average_order_value: '25.00',
    });
    expect(compared.change).toEqual({
      total_revenue: { absolute: '25.00', percent: '50.00' },
      order_count: { absolute: 1, percent: '50.00' },
      sale_count: { absolute: 2, percent: '100.00' },
      average_order_value: { absolute: '0.00', percent: '0.00' },
    });

    const skuA = await unwrap(zinc.GET('/api/metrics/revenue', { params: { query: { ...week, product_id: ['SKU-A'] } } }));
    expect(skuA).toMatchObject({ total_revenue: '30.00', order_count: 2, sale_count: 2, average_order_value: '15.00', product_ids: ['SKU-A'] });

    const weekly = await unwrap(zinc.GET('/api/metrics/revenue/series', { params: { query: { ...week, granularity: 'week' } } }));
    expect(weekly.periods).toEqual([
      { period: '2023-05-01', start: '2023-05-01', end: '2023-05-07', partial: false, revenue: '75.00', order_count: 3, sale_count: 4 },
    ]);
    const monthly = await unwrap(
      zinc.GET('/api/metrics/revenue/series', { params: { query: { start: '2023-04-25', end: '2023-05-10', granularity: 'month' } } }),
    );
    expect(monthly).toMatchObject({ granularity: 'month', currency: 'SGD' });
    expect(monthly.periods).toEqual([
      { period: '2023-04-01', start: '2023-04-25', end: '2023-04-30', partial: true, revenue: '50.00', order_count: 2, sale_count: 2 },
      { period: '2023-05-01', start: '2023-05-01', end: '2023-05-10', partial: true, revenue: '174.99', order_count: 4, sale_count: 5 },
    ]);

    const days = await unwrap(zinc.GET('/api/metrics/revenue/daily', { params: { query: { start: '2023-05-01', end: '2023-05-03' } } }));
    expect(days.days.map((d) => [d.date, d.revenue, d.order_count, d.sale_count])).toEqual([
      ['2023-05-01', '20.00', 1, 2],
      ['2023-05-02', '15.00', 1, 1],
      ['2023-05-03', '0.00', 0, 0],
    ]);

    const byRevenue = await unwrap(zinc.GET('/api/metrics/revenue/by-product', { params: { query: week } }));
    expect(byRevenue).toMatchObject({ order: 'revenue', limit: 10, total_revenue: '75.00' });
    expect(byRevenue.products).toEqual([
      { product_id: 'SKU-C', revenue: '40.00', share: '53.33', order_count: 1, sale_count: 1 },
      { product_id: 'SKU-A', revenue: '30.00', share: '40.00', order_count: 2, sale_count: 2 },
      { product_id: 'SKU-B', revenue: '5.00', share: '6.67', order_count: 1, sale_count: 1 },
    ]);
    const byOrders = await unwrap(zinc.GET('/api/metrics/revenue/by-product', { params: { query: { ...week, order: 'orders', limit: 2 } } }));
    expect(byOrders.products.map((p) => p.product_id)).toEqual(['SKU-A', 'SKU-C']);
  });

  it('lists import records newest first and undoes one: its rows go, the rows it replaced come back', async () => {
    const upload = (filename: string, rows: string[][]) =>
      unwrap(zinc.POST('/api/imports', { params: { query: { filename } }, ...csvBody(csv(rows)) }));
    const first = await upload('2022-06-a.csv', [
      ['2022-06-01', 'JUN-1', 'P1', '10.00'],
      ['2022-06-02', 'JUN-2', 'P1', '20.00'],
    ]);
    const second = await upload('2022-06-b.csv', [
      ['2022-06-02', 'JUN-2', 'P1', '25.00'],
      ['2022-06-03', 'JUN-3', 'P2', '5.00'],
    ]);
    expect(await totals('2022-06-01', '2022-06-30')).toMatchObject({ total_revenue: '40.00', order_count: 3, sale_count: 3 });

    const list = await unwrap(zinc.GET('/api/imports', { params: { query: { limit: 2, offset: 0 } } }));
    expect(list).toMatchObject({ limit: 2, offset: 0 });
    expect(list.total).toBeGreaterThanOrEqual(2);
    expect(list.imports.map((r) => [r.id, r.filename, r.status])).toEqual([
      [second.id, '2022-06-b.csv', 'success'],
      [first.id, '2022-06-a.csv', 'success'],
    ]);

    const undone = await unwrap(zinc.DELETE('/api/imports/{id}', { params: { path: { id: second.id } } }));
    expect(undone).toMatchObject({ id: second.id, status: 'reverted' });
    expect(await totals('2022-06-01', '2022-06-30')).toMatchObject({ total_revenue: '30.00', order_count: 2, sale_count: 2 });
    expect((await unwrap(zinc.GET('/api/imports/{id}', { params: { path: { id: second.id } } }))).status).toBe('reverted');

    // Undoing it again changes nothing: 409, read through the client's error.
    const again = await zinc.DELETE('/api/imports/{id}', { params: { path: { id: second.id } } });
    expect(again.response.status).toBe(409);
    expect(again.error).toMatchObject({ error: 'conflict' });
    expect(await totals('2022-06-01', '2022-06-30')).toMatchObject({ total_revenue: '30.00' });
  });

  it('reads error answers as the API states them, and a rejected file stores nothing', async () => {
    // A bad date: the typed error body, and unwrap's ZincApiError.
    const bad = await zinc.GET('/api/metrics/revenue', { params: { query: { start: '2024-02-30' } } });
    expect(bad.response.status).toBe(400);
    expect(bad.data).toBeUndefined();
    expect(bad.error).toMatchObject({ error: 'invalid_parameter', field: 'start' });
    const thrown = await unwrap(zinc.GET('/api/metrics/revenue', { params: { query: { start: '2024-02-30' } } })).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(ZincApiError);
    expect(thrown).toMatchObject({ status: 400, code: 'invalid_parameter', field: 'start' });
    expect((thrown as ZincApiError).message).toMatch(/start/);

    await expect(unwrap(zinc.GET('/api/imports/{id}', { params: { path: { id: 987654 } } }))).rejects.toMatchObject({
      status: 404,
      code: 'not_found',
    });

    // Without the token: 401 on /api, while /health stays open.
    const anonymous = checked(createZincClient({ baseUrl: server.url }));
    await expect(unwrap(anonymous.GET('/api/imports'))).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
    expect(await unwrap(anonymous.GET('/health'))).toMatchObject({ status: 'ok', engine: kind });

    // Strict mode: one bad row and the whole file is rejected; its record says why.
    const failed = await unwrap(
      zinc.POST('/api/imports', {
        params: { query: { filename: '2021-01.csv', on_error: 'fail' } },
        ...csvBody(csv([['2021-01-04', 'BAD-1', 'P1', '5.00'], ['2021-01-05', 'BAD-2', 'P1', '']])),
      }),
    );
    expect(failed).toMatchObject({ filename: '2021-01.csv', status: 'failed', num_rows: 0, error_count: 1 });
    const record = await unwrap(zinc.GET('/api/imports/{id}', { params: { path: { id: failed.id } } }));
    expect(record.errors.map((e) => [e.line, e.column])).toEqual([[3, 'amount_sgd']]);
    expect(await totals('2021-01-01', '2021-01-31')).toMatchObject({ total_revenue: '0.00', order_count: 0, sale_count: 0 });
  });

  it('sends the token only to /api (the operations the document secures), and JSON is asked for', async () => {
    const seen: Array<{ path: string; authorization: string | null; accept: string | null }> = [];
    const watched = createZincClient({
      baseUrl: server.url,
      token: () => TOKEN,
      fetch: (request) => {
        seen.push({ path: new URL(request.url).pathname, authorization: request.headers.get('authorization'), accept: request.headers.get('accept') });
        return fetch(request);
      },
    });
    await unwrap(watched.GET('/api/imports', { params: { query: { limit: 1 } } }));
    await unwrap(watched.GET('/health'));
    expect(seen).toEqual([
      { path: '/api/imports', authorization: `Bearer ${TOKEN}`, accept: 'application/json' },
      { path: '/health', authorization: null, accept: 'application/json' },
    ]);
  });
});

/**
 * Compile-time checks (`npm run typecheck`; never called): paths, parameters, bodies and answers
 * are typed from the document, so a wrong one does not compile.
 */
export function typedFromTheDocument(zinc: ZincClient): void {
  // @ts-expect-error not a path of the document
  void zinc.GET('/api/metrics/revenues');
  // @ts-expect-error granularity is one of the document's enum
  void zinc.GET('/api/metrics/revenue/series', { params: { query: { granularity: 'fortnight' } } });
  // @ts-expect-error the path parameter is required
  void zinc.GET('/api/imports/{id}');
  // @ts-expect-error the multipart body needs its file
  void zinc.POST('/api/imports', formBody({ on_error: 'skip' }));
  void unwrap(zinc.GET('/api/metrics/revenue')).then((answer) => {
    // @ts-expect-error money is a decimal string, never a number
    const revenue: number = answer.total_revenue;
    return revenue;
  });
}
