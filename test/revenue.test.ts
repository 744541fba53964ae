import { describe, expect, it } from 'vitest';
import { DIALECTS } from './support/databases.js';
import { csv, orderId, useHarness } from './support/harness.js';

describe.each(DIALECTS)('revenue metrics on %s', (kind) => {
  const h = useHarness(kind);

  async function load(rows: string[][]) {
    h.writeCsv(`${orderId('file')}.csv`, csv(rows));
    const res = await h.app.inject({ url: '/api/import-sales/' });
    expect(res.json().summary.failed, res.body).toBe(0);
  }
  async function get(url: string) {
    const res = await h.app.inject({ url });
    return { status: res.statusCode, body: res.json() };
  }

  it('when there are no sales, then totals are zero and the average is null', async () => {
    const { status, body } = await get('/api/metrics/revenue/?start=2024-01-01&end=2024-01-31');
    expect(status).toBe(200);
    expect(body).toEqual({
      start: '2024-01-01',
      end: '2024-01-31',
      currency: 'SGD',
      total_revenue: '0.00',
      order_count: 0,
      sale_count: 0,
      average_order_value: null,
    });
  });

  it('when a range is given, then both bounds are inclusive and orders are counted once', async () => {
    const a = orderId();
    const b = orderId();
    await load([
      ['2023-12-31', orderId(), 'P-1', '100.00'],
      ['2024-01-01', a, 'P-1', '10.00'],
      ['2024-01-01', a, 'P-2', '5.50'],
      ['2024-01-31', b, 'P-1', '-0.50'],
      ['2024-02-01', orderId(), 'P-1', '100.00'],
    ]);
    const { body } = await get('/api/metrics/revenue?start=2024-01-01&end=2024-01-31');
    expect(body).toMatchObject({ total_revenue: '15.00', order_count: 2, sale_count: 3, average_order_value: '7.50' });
    const all = await get('/api/metrics/revenue');
    expect(all.body).toMatchObject({ start: null, end: null, total_revenue: '215.00', order_count: 4, sale_count: 5 });
    const from = await get('/api/metrics/revenue?start=2024-01-31');
    expect(from.body).toMatchObject({ total_revenue: '99.50', order_count: 2 });
    const until = await get('/api/metrics/revenue?end=2024-01-01');
    expect(until.body).toMatchObject({ total_revenue: '115.50', order_count: 2 });
  });

  it('when one order spans two dates, then it counts once in a range covering both', async () => {
    const o = orderId();
    await load([['2024-05-01', o, 'P-1', '1.00'], ['2024-05-02', o, 'P-2', '1.00']]);
    expect((await get('/api/metrics/revenue?start=2024-05-01&end=2024-05-02')).body.order_count).toBe(1);
    const daily = await get('/api/metrics/revenue/daily?start=2024-05-01&end=2024-05-02');
    expect(daily.body.days.map((d: { order_count: number }) => d.order_count)).toEqual([1, 1]);
  });

  it('when the average lands on an exact half cent, then it rounds half away from zero', async () => {
    // 0.01 + 0.02 over 2 orders = 0.015 → 0.02
    await load([['2024-06-01', orderId(), 'P', '0.01'], ['2024-06-01', orderId(), 'P', '0.02']]);
    expect((await get('/api/metrics/revenue?start=2024-06-01&end=2024-06-01')).body.average_order_value).toBe('0.02');
    // -0.01 + -0.02 over 2 orders = -0.015 → -0.02
    await load([['2024-06-02', orderId(), 'P', '-0.01'], ['2024-06-02', orderId(), 'P', '-0.02']]);
    expect((await get('/api/metrics/revenue?start=2024-06-02&end=2024-06-02')).body.average_order_value).toBe('-0.02');
    // 10.00 over 3 orders = 3.333… → 3.33
    await load([
      ['2024-06-03', orderId(), 'P', '3.00'],
      ['2024-06-03', orderId(), 'P', '3.00'],
      ['2024-06-03', orderId(), 'P', '4.00'],
    ]);
    expect((await get('/api/metrics/revenue?start=2024-06-03&end=2024-06-03')).body.average_order_value).toBe('3.33');
  });

  it('when the daily series is asked for, then every day appears, zero-filled, ascending', async () => {
    const o = orderId();
    await load([['2024-02-28', o, 'P-1', '1.25'], ['2024-03-01', o, 'P-2', '2.00'], ['2024-03-01', orderId(), 'P-1', '0.75']]);
    const { status, body } = await get('/api/metrics/revenue/daily/?start=2024-02-27&end=2024-03-02');
    expect(status).toBe(200);
    expect(body).toEqual({
      start: '2024-02-27',
      end: '2024-03-02',
      currency: 'SGD',
      days: [
        { date: '2024-02-27', revenue: '0.00', order_count: 0, sale_count: 0 },
        { date: '2024-02-28', revenue: '1.25', order_count: 1, sale_count: 1 },
        { date: '2024-02-29', revenue: '0.00', order_count: 0, sale_count: 0 },
        { date: '2024-03-01', revenue: '2.75', order_count: 2, sale_count: 2 },
        { date: '2024-03-02', revenue: '0.00', order_count: 0, sale_count: 0 },
      ],
    });
  });

  it('when daily bounds are absent, then they default to the first and last sale date', async () => {
    expect((await get('/api/metrics/revenue/daily')).body).toMatchObject({ days: [] });
    await load([['2024-04-03', orderId(), 'P', '1.00'], ['2024-04-05', orderId(), 'P', '2.00']]);
    const { body } = await get('/api/metrics/revenue/daily');
    expect(body.start).toBe('2024-04-03');
    expect(body.end).toBe('2024-04-05');
    expect(body.days.map((d: { revenue: string }) => d.revenue)).toEqual(['1.00', '0.00', '2.00']);
    const fromOnly = await get('/api/metrics/revenue/daily?start=2024-04-04');
    expect(fromOnly.body.days.map((d: { date: string }) => d.date)).toEqual(['2024-04-04', '2024-04-05']);
  });

  describe('bad parameters', () => {
    const cases: Array<[string, string]> = [
      ['start=2024-02-30', 'start'],
      ['start=2024-1-01', 'start'],
      ['end=yesterday', 'end'],
      ['end=2024-13-01', 'end'],
      ['start=2024-02-01&end=2024-01-01', 'start'],
      ['start=2024-01-01&start=2024-01-02', 'start'],
    ];
    for (const path of ['/api/metrics/revenue', '/api/metrics/revenue/daily']) {
      for (const [query, field] of cases) {
        it(`when ${path} gets ${query}, then it answers 400 naming ${field}`, async () => {
          const { status, body } = await get(`${path}?${query}`);
          expect(status).toBe(400);
          expect(body).toEqual({ error: 'invalid_parameter', message: expect.stringContaining(field), field });
        });
      }
    }

    it('when the daily range is longer than 3660 days, then it answers 400', async () => {
      const { status, body } = await get('/api/metrics/revenue/daily?start=2000-01-01&end=2010-01-08');
      expect(status).toBe(400);
      expect(body).toMatchObject({ error: 'invalid_parameter', field: 'end' });
      const ok = await get('/api/metrics/revenue/daily?start=2000-01-01&end=2010-01-07');
      expect(ok.status).toBe(200);
      expect(ok.body.days).toHaveLength(3660);
    });
  });

  describe('auth', () => {
    it('when no token is configured, then the API is open', async () => {
      expect((await get('/api/metrics/revenue')).status).toBe(200);
    });

    it('when a token is configured, then /api needs it as a Bearer token and /health stays open', async () => {
      const app = await h.rebuild({ apiToken: 's3cret-token' });
      const none = await app.inject({ url: '/api/metrics/revenue' });
      expect(none.statusCode).toBe(401);
      expect(none.json()).toMatchObject({ error: 'unauthorized' });
      expect(none.headers['www-authenticate']).toMatch(/Bearer/);
      const wrong = await app.inject({ url: '/api/imports', headers: { authorization: 'Bearer nope' } });
      expect(wrong.statusCode).toBe(401);
      const basic = await app.inject({ url: '/api/imports', headers: { authorization: 's3cret-token' } });
      expect(basic.statusCode).toBe(401);
      const sneaky = await app.inject({ url: '/%61pi/metrics/revenue' });
      expect(sneaky.statusCode).not.toBe(200);
      const right = await app.inject({ url: '/api/metrics/revenue', headers: { authorization: 'Bearer s3cret-token' } });
      expect(right.statusCode).toBe(200);
      const importRun = await app.inject({ method: 'POST', url: '/api/import-sales' });
      expect(importRun.statusCode).toBe(401);
      expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
    });
  });

  it('when /health is asked and the database answers, then it is ok', async () => {
    // On a Galera node it also names the node and its cluster (test/galera.test.ts).
    const { status, body } = await get('/health');
    const { node: _node, cluster: _cluster, ...rest } = body as Record<string, unknown>;
    expect({ status, body: rest }).toEqual({ status: 200, body: { status: 'ok', database: 'ok', engine: kind } });
  });

  it('when /docs is asked, then the OpenAPI document lists every endpoint with its parameters', async () => {
    const page = await h.app.inject({ url: '/docs' });
    expect([200, 302]).toContain(page.statusCode);
    const { body } = await get('/docs/json');
    expect(body.openapi).toMatch(/^3\./);
    expect(Object.keys(body.paths)).toEqual(
      expect.arrayContaining([
        '/api/import-sales',
        '/api/imports',
        '/api/imports/{id}',
        '/api/metrics/revenue',
        '/api/metrics/revenue/daily',
        '/health',
      ]),
    );
    const params = body.paths['/api/metrics/revenue'].get.parameters.map((p: { name: string }) => p.name);
    expect(params).toEqual(expect.arrayContaining(['start', 'end']));
  });

  it('when a route does not exist, then the answer is a JSON 404', async () => {
    const { status, body } = await get('/api/nope');
    expect(status).toBe(404);
    expect(body).toMatchObject({ error: 'not_found' });
  });
});
