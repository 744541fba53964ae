import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { readConsistently } from '../src/db/database.js';
import { dialectModule, openDatabase } from '../src/db/dialects/index.js';
import { decimalToCents } from '../src/money.js';
import { createMigrator, migrateToLatest } from '../src/db/migrator.js';
import { addMonths, eachDay, fromDayNumber, lastDayOfMonth, periodEnd, periodStart, toDayNumber } from '../src/calendar.js';
import { importFile } from '../src/imports/import.service.js';
import { rebuildRollups } from '../src/write/rollup-rebuild.js';
import { expectRollupsMatchRebuild, rollupSnapshot } from './support/rollups.js';
import { countPeriods, periodsOf } from '../src/metrics/revenue.series.js';
import { revenueTotals } from '../src/metrics/revenue.queries.js';
import { createTestDatabase, DIALECTS } from './support/databases.js';
import { csv, orderId, useHarness } from './support/harness.js';

describe('calendar', () => {
  it('lists days by string arithmetic exactly as Date does, across months, leap years and centuries', () => {
    for (const [start, n] of [['1999-12-25', 900], ['2024-02-27', 5], ['0000-12-30', 70], ['9999-12-01', 31], ['2100-02-27', 3]] as const) {
      const first = toDayNumber(start);
      const expected = Array.from({ length: n }, (_, i) => fromDayNumber(first + i));
      expect(eachDay(start, expected.at(-1)!)).toEqual(expected);
    }
    expect(eachDay('2024-01-02', '2024-01-01')).toEqual([]);
    expect([lastDayOfMonth('2024-02-10'), lastDayOfMonth('1900-02-10'), lastDayOfMonth('2000-02-01')]).toEqual([
      '2024-02-29',
      '1900-02-28',
      '2000-02-29',
    ]);
    expect([addMonths('2024-11-01', 3), addMonths('2024-01-01', -1)]).toEqual(['2025-02-01', '2023-12-01']);
  });

  it('cuts periods: ISO weeks from Monday, quarters, and never past 9999-12-31', () => {
    expect(periodStart('2024-01-01', 'week')).toBe('2024-01-01'); // a Monday
    expect(periodStart('2024-01-07', 'week')).toBe('2024-01-01'); // a Sunday
    expect(periodStart('2021-01-03', 'week')).toBe('2020-12-28');
    expect(periodStart('2024-08-15', 'quarter')).toBe('2024-07-01');
    expect(periodEnd('2024-10-01', 'quarter')).toBe('2024-12-31');
    expect(periodEnd('9999-12-27', 'week')).toBe('9999-12-31');
    expect(periodEnd('9999-01-01', 'year')).toBe('9999-12-31');
    expect(periodsOf('9999-12-30', '9999-12-31', 'year')).toEqual([
      { period: '9999-01-01', start: '9999-12-30', end: '9999-12-31', partial: true },
    ]);
    for (const g of ['day', 'week', 'month', 'quarter', 'year'] as const) {
      for (const [s, e] of [['2023-12-31', '2024-01-01'], ['2020-02-29', '2024-11-03'], ['2024-05-06', '2024-05-06']]) {
        expect(countPeriods(s!, e!, g), `${g} ${s}..${e}`).toBe(periodsOf(s!, e!, g).length);
      }
    }
  });
});

describe.each(DIALECTS)('revenue rollups and the new questions on %s', (kind) => {
  const h = useHarness(kind);

  async function load(rows: string[][]) {
    h.writeCsv(`${orderId('file')}.csv`, csv(rows));
    const res = await h.app.inject({ method: 'POST', url: '/api/import-sales/' });
    expect(res.json().summary.failed, res.body).toBe(0);
  }
  async function get(url: string) {
    const res = await h.app.inject({ url });
    return { status: res.statusCode, body: res.json() };
  }
  const figures = (periods: Array<Record<string, unknown>>) =>
    periods.map((p) => [p.period, p.start, p.end, p.partial, p.revenue, p.order_count, p.sale_count]);

  describe('series', () => {
    it('when weeks are asked, then they are ISO weeks labelled by their Monday, clipped, flagged and zero-filled', async () => {
      const spanning = orderId();
      await load([
        // 2024-01-03 is a Wednesday; the order's two lines fall in the same week: one order.
        ['2024-01-03', spanning, 'P-1', '10.00'],
        ['2024-01-06', spanning, 'P-2', '5.00'],
        ['2024-01-07', orderId(), 'P-1', '1.00'],
        ['2024-01-22', orderId(), 'P-1', '-2.50'],
      ]);
      const { status, body } = await get('/api/metrics/revenue/series/?start=2024-01-03&end=2024-01-23&granularity=week');
      expect(status).toBe(200);
      expect(body).toMatchObject({ start: '2024-01-03', end: '2024-01-23', granularity: 'week', currency: 'SGD' });
      expect(body.product_ids).toBeUndefined();
      expect(figures(body.periods)).toEqual([
        ['2024-01-01', '2024-01-03', '2024-01-07', true, '16.00', 2, 3],
        ['2024-01-08', '2024-01-08', '2024-01-14', false, '0.00', 0, 0],
        ['2024-01-15', '2024-01-15', '2024-01-21', false, '0.00', 0, 0],
        ['2024-01-22', '2024-01-22', '2024-01-23', true, '-2.50', 1, 1],
      ]);
    });

    it('when months, quarters and years are asked, then an order spanning periods counts once in each', async () => {
      const o = orderId();
      await load([
        ['2023-12-31', o, 'P-1', '1.00'],
        ['2024-01-01', o, 'P-2', '2.00'],
        ['2024-01-15', o, 'P-3', '4.00'],
        ['2024-04-01', orderId(), 'P-1', '8.00'],
      ]);
      const month = await get('/api/metrics/revenue/series?start=2023-12-15&end=2024-04-01&granularity=month');
      expect(figures(month.body.periods)).toEqual([
        ['2023-12-01', '2023-12-15', '2023-12-31', true, '1.00', 1, 1],
        ['2024-01-01', '2024-01-01', '2024-01-31', false, '6.00', 1, 2],
        ['2024-02-01', '2024-02-01', '2024-02-29', false, '0.00', 0, 0],
        ['2024-03-01', '2024-03-01', '2024-03-31', false, '0.00', 0, 0],
        ['2024-04-01', '2024-04-01', '2024-04-01', true, '8.00', 1, 1],
      ]);
      const quarter = await get('/api/metrics/revenue/series?start=2023-10-01&end=2024-06-30&granularity=quarter');
      expect(figures(quarter.body.periods)).toEqual([
        ['2023-10-01', '2023-10-01', '2023-12-31', false, '1.00', 1, 1],
        ['2024-01-01', '2024-01-01', '2024-03-31', false, '6.00', 1, 2],
        ['2024-04-01', '2024-04-01', '2024-06-30', false, '8.00', 1, 1],
      ]);
      const year = await get('/api/metrics/revenue/series?start=2023-12-31&end=2024-12-30&granularity=year');
      expect(figures(year.body.periods)).toEqual([
        ['2023-01-01', '2023-12-31', '2023-12-31', true, '1.00', 1, 1],
        ['2024-01-01', '2024-01-01', '2024-12-30', true, '14.00', 2, 3],
      ]);
      const all = await get('/api/metrics/revenue?start=2023-12-31&end=2024-01-15');
      expect(all.body).toMatchObject({ total_revenue: '7.00', order_count: 1, sale_count: 3 });
    });

    it('when no granularity or bounds are given, then it is daily between the first and last sale', async () => {
      expect((await get('/api/metrics/revenue/series')).body).toEqual({
        start: null,
        end: null,
        granularity: 'day',
        currency: 'SGD',
        periods: [],
      });
      await load([['2024-04-03', orderId(), 'P', '1.00'], ['2024-04-05', orderId(), 'P', '2.00']]);
      const { body } = await get('/api/metrics/revenue/series');
      expect(figures(body.periods)).toEqual([
        ['2024-04-03', '2024-04-03', '2024-04-03', false, '1.00', 1, 1],
        ['2024-04-04', '2024-04-04', '2024-04-04', false, '0.00', 0, 0],
        ['2024-04-05', '2024-04-05', '2024-04-05', false, '2.00', 1, 1],
      ]);
    });
  });

  describe('product filter', () => {
    it('when products are named, then totals and series count only their sales and each order once', async () => {
      const both = orderId();
      await load([
        ['2024-02-01', both, 'P-1', '10.00'],
        ['2024-02-01', both, 'P-2', '20.00'],
        ['2024-02-02', both, 'P-3', '40.00'],
        ['2024-02-02', orderId(), 'P-2', '1.00'],
        ['2024-02-03', orderId(), 'P-3', '2.00'],
      ]);
      const one = await get('/api/metrics/revenue?start=2024-02-01&end=2024-02-03&product_id=P-2');
      expect(one.body).toEqual({
        start: '2024-02-01',
        end: '2024-02-03',
        currency: 'SGD',
        total_revenue: '21.00',
        order_count: 2,
        sale_count: 2,
        average_order_value: '10.50',
        product_ids: ['P-2'],
      });
      const two = await get('/api/metrics/revenue?start=2024-02-01&end=2024-02-03&product_id=P-2&product_id=P-1&product_id=P-2');
      expect(two.body).toMatchObject({ total_revenue: '31.00', order_count: 2, sale_count: 3, product_ids: ['P-1', 'P-2'] });
      const three = await get('/api/metrics/revenue?product_id=P-1&product_id=P-2&product_id=P-3');
      expect(three.body).toMatchObject({ total_revenue: '73.00', order_count: 3, sale_count: 5 });
      const unknown = await get('/api/metrics/revenue?product_id=nope');
      expect(unknown.body).toMatchObject({ total_revenue: '0.00', order_count: 0, average_order_value: null });

      const series = await get('/api/metrics/revenue/series?start=2024-01-29&end=2024-02-04&granularity=week&product_id=P-1&product_id=P-3');
      expect(series.body.product_ids).toEqual(['P-1', 'P-3']);
      expect(figures(series.body.periods)).toEqual([['2024-01-29', '2024-01-29', '2024-02-04', false, '52.00', 2, 3]]);
      const daily = await get('/api/metrics/revenue/series?start=2024-02-01&end=2024-02-02&product_id=P-1&product_id=P-2');
      expect(figures(daily.body.periods)).toEqual([
        ['2024-02-01', '2024-02-01', '2024-02-01', false, '30.00', 1, 2],
        ['2024-02-02', '2024-02-02', '2024-02-02', false, '1.00', 1, 1],
      ]);
    });

    it('when two orders hold sets of products whose ids run together the same way, then they stay two sets', async () => {
      // Joined without a separator both read "abc"; ids may hold any character, so lengths tell them apart.
      const a = orderId();
      const b = orderId();
      await load([
        ['2024-03-01', a, 'ab', '1.00'],
        ['2024-03-01', a, 'c', '2.00'],
        ['2024-03-01', b, 'a', '4.00'],
        ['2024-03-01', b, 'bc', '8.00'],
      ]);
      const first = await get('/api/metrics/revenue?start=2024-03-01&end=2024-03-01&product_id=ab&product_id=c');
      expect(first.body).toMatchObject({ total_revenue: '3.00', order_count: 1, sale_count: 2 });
      const second = await get('/api/metrics/revenue?start=2024-03-01&end=2024-03-01&product_id=a&product_id=bc&product_id=c');
      expect(second.body).toMatchObject({ total_revenue: '14.00', order_count: 2, sale_count: 3 });
    });

    it('when an import commits while an answer is being computed, then the answer sees one state, not part of each', async () => {
      const day = '2024-03-09';
      const products = { start: day, end: day, productIds: ['P-1', 'P-2'] };
      await load([[day, orderId(), 'P-1', '1.00'], [day, orderId(), 'P-2', '2.00']]);
      const [before, after] = await readConsistently(h.database, async (reader) => {
        const first = await revenueTotals(reader, products);
        // Another order of both products commits on the import connection meanwhile.
        const both = orderId();
        await load([[day, both, 'P-1', '4.00'], [day, both, 'P-2', '8.00']]);
        return [first, await revenueTotals(reader, products)];
      });
      expect(after).toEqual(before);
      expect(before).toMatchObject({ revenueCents: 300n, orderCount: 2, saleCount: 2 });
      expect(await revenueTotals(h.database, products)).toMatchObject({ revenueCents: 1500n, orderCount: 3, saleCount: 4 });
    });

    it('when orders hold many long product ids, then sets differing only at the end are told apart', async () => {
      // 20 ids of 60 characters: their joined names are far past MySQL's default GROUP_CONCAT cut (1024).
      const long = (i: number) => `${'L'.repeat(56)}-${String(i).padStart(3, '0')}`;
      const shared = Array.from({ length: 19 }, (_, i) => long(i));
      const a = orderId();
      const b = orderId();
      await load([
        ...shared.map((p) => ['2024-03-05', a, p, '1.00']),
        ['2024-03-05', a, long(100), '1.00'],
        ...shared.map((p) => ['2024-03-05', b, p, '1.00']),
        ['2024-03-05', b, long(200), '1.00'],
      ]);
      const both = `product_id=${long(100)}&product_id=${long(200)}&product_id=${long(0)}`;
      const total = await get(`/api/metrics/revenue?start=2024-03-05&end=2024-03-05&${both}`);
      expect(total.body).toMatchObject({ order_count: 2, sale_count: 4 });
      const onlyA = await get(`/api/metrics/revenue?start=2024-03-05&end=2024-03-05&product_id=${long(100)}&product_id=${long(1)}`);
      expect(onlyA.body).toMatchObject({ order_count: 2, sale_count: 3 });
      const daily = await get(`/api/metrics/revenue/series?start=2024-03-05&end=2024-03-05&${both}`);
      expect(figures(daily.body.periods)).toEqual([['2024-03-05', '2024-03-05', '2024-03-05', false, '4.00', 2, 4]]);
      if (kind === 'mysql') {
        // MySQL 8 cuts GROUP_CONCAT at 1024 bytes by default (MariaDB at 1 MiB): the rebuild lifts the cut itself.
        await h.database.writer.connection().execute(async (conn) => {
          await sql`SET SESSION group_concat_max_len = 1024`.execute(conn);
          await rebuildRollups(h.database, conn);
        });
      }
      const baskets = await sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM revenue_daily_basket WHERE date = '2024-03-05'`.execute(h.database.db);
      expect(Number(baskets.rows[0]!.n)).toBe(2);
    });
  });

  describe('by product', () => {
    it('when the top products are asked, then they rank by revenue or orders with shares of the total', async () => {
      const o1 = orderId();
      await load([
        ['2024-03-01', o1, 'A', '50.00'],
        ['2024-03-01', o1, 'B', '10.00'],
        ['2024-03-02', orderId(), 'B', '10.00'],
        ['2024-03-03', orderId(), 'B', '10.00'],
        ['2024-03-31', orderId(), 'C', '20.00'],
        ['2024-04-01', orderId(), 'D', '999.00'],
      ]);
      const { status, body } = await get('/api/metrics/revenue/by-product?start=2024-03-01&end=2024-03-31');
      expect(status).toBe(200);
      expect(body).toEqual({
        start: '2024-03-01',
        end: '2024-03-31',
        currency: 'SGD',
        order: 'revenue',
        limit: 10,
        total_revenue: '100.00',
        products: [
          { product_id: 'A', revenue: '50.00', share: '50.00', order_count: 1, sale_count: 1 },
          { product_id: 'B', revenue: '30.00', share: '30.00', order_count: 3, sale_count: 3 },
          { product_id: 'C', revenue: '20.00', share: '20.00', order_count: 1, sale_count: 1 },
        ],
      });
      const byOrders = await get('/api/metrics/revenue/by-product?start=2024-03-01&end=2024-03-31&order=orders&limit=2');
      expect(byOrders.body.products.map((p: { product_id: string }) => p.product_id)).toEqual(['B', 'A']);
      const crossing = await get('/api/metrics/revenue/by-product?start=2024-03-02&end=2024-04-01&limit=1');
      expect(crossing.body).toMatchObject({ total_revenue: '1039.00', products: [{ product_id: 'D', share: '96.15' }] });
      const open = await get('/api/metrics/revenue/by-product');
      expect(open.body).toMatchObject({ start: null, end: null, total_revenue: '1099.00' });
      expect(open.body.products).toHaveLength(4);
      const nothing = await get('/api/metrics/revenue/by-product?start=2020-01-01&end=2020-12-31');
      expect(nothing.body).toMatchObject({ total_revenue: '0.00', products: [] });
    });

    it('when the total is zero, then shares are null', async () => {
      await load([['2024-05-01', orderId(), 'A', '5.00'], ['2024-05-01', orderId(), 'B', '-5.00']]);
      const { body } = await get('/api/metrics/revenue/by-product?start=2024-05-01&end=2024-05-01');
      expect(body.products.map((p: { share: unknown }) => p.share)).toEqual([null, null]);
    });
  });

  describe('compare=previous_period', () => {
    it('when asked, then the previous equally long period comes with the change', async () => {
      await load([
        ['2024-01-30', orderId(), 'P', '100.00'],
        ['2024-01-31', orderId(), 'P', '100.00'],
        ['2024-02-01', orderId(), 'P', '250.00'],
        ['2024-02-02', orderId(), 'P', '50.00'],
        ['2024-02-02', orderId(), 'P', '0.01'],
      ]);
      const { status, body } = await get('/api/metrics/revenue?start=2024-02-01&end=2024-02-02&compare=previous_period');
      expect(status).toBe(200);
      expect(body).toEqual({
        start: '2024-02-01',
        end: '2024-02-02',
        currency: 'SGD',
        total_revenue: '300.01',
        order_count: 3,
        sale_count: 3,
        average_order_value: '100.00',
        compare: 'previous_period',
        previous: {
          start: '2024-01-30',
          end: '2024-01-31',
          total_revenue: '200.00',
          order_count: 2,
          sale_count: 2,
          average_order_value: '100.00',
        },
        change: {
          // 100.01 / 200.00 = 50.005 % → 50.01 (half away from zero)
          total_revenue: { absolute: '100.01', percent: '50.01' },
          order_count: { absolute: 1, percent: '50.00' },
          sale_count: { absolute: 1, percent: '50.00' },
          average_order_value: { absolute: '0.00', percent: '0.00' },
        },
      });
    });

    it('when the previous period had nothing, then percentages are null', async () => {
      await load([['2024-02-01', orderId(), 'P', '10.00']]);
      const { body } = await get('/api/metrics/revenue?start=2024-02-01&end=2024-02-29&compare=previous_period&product_id=P');
      expect(body.previous).toMatchObject({ start: '2024-01-03', end: '2024-01-31', total_revenue: '0.00', average_order_value: null });
      expect(body.change).toEqual({
        total_revenue: { absolute: '10.00', percent: null },
        order_count: { absolute: 1, percent: null },
        sale_count: { absolute: 1, percent: null },
        average_order_value: { absolute: null, percent: null },
      });
      expect(body.product_ids).toEqual(['P']);
    });
  });

  describe('bad parameters', () => {
    const long = 'x'.repeat(65);
    const many = Array.from({ length: 101 }, (_, i) => `product_id=P${i}`).join('&');
    const cases: Array<[string, string]> = [
      ['/api/metrics/revenue/series?granularity=hour', 'granularity'],
      ['/api/metrics/revenue/series?granularity=', 'granularity'],
      ['/api/metrics/revenue/series?granularity=week&granularity=month', 'granularity'],
      ['/api/metrics/revenue/series?start=2024-02-30', 'start'],
      ['/api/metrics/revenue/series?start=2024-02-02&end=2024-02-01', 'start'],
      ['/api/metrics/revenue/series?start=2000-01-01&end=2010-01-08', 'end'],
      ['/api/metrics/revenue/series?start=1900-01-01&end=2010-01-08&granularity=month', 'end'],
      ['/api/metrics/revenue/series?start=1900-01-01&end=1980-01-08&granularity=week', 'end'],
      ['/api/metrics/revenue/series?product_id=', 'product_id'],
      [`/api/metrics/revenue/series?product_id=${long}`, 'product_id'],
      ['/api/metrics/revenue?product_id=', 'product_id'],
      ['/api/metrics/revenue?product_id=%20P-1', 'product_id'],
      [`/api/metrics/revenue?product_id=A&product_id=${long}`, 'product_id'],
      [`/api/metrics/revenue?${many}`, 'product_id'],
      ['/api/metrics/revenue?compare=previous', 'compare'],
      ['/api/metrics/revenue?compare=previous_period', 'compare'],
      ['/api/metrics/revenue?compare=previous_period&start=2024-01-01', 'compare'],
      ['/api/metrics/revenue?compare=previous_period&start=0000-01-01&end=0000-01-02', 'compare'],
      ['/api/metrics/revenue/by-product?limit=0', 'limit'],
      ['/api/metrics/revenue/by-product?limit=501', 'limit'],
      ['/api/metrics/revenue/by-product?limit=ten', 'limit'],
      ['/api/metrics/revenue/by-product?limit=1.5', 'limit'],
      ['/api/metrics/revenue/by-product?order=price', 'order'],
      ['/api/metrics/revenue/by-product?start=2024-13-01', 'start'],
      ['/api/metrics/revenue/by-product?start=2024-02-02&end=2024-02-01', 'start'],
    ];
    for (const [url, field] of cases) {
      it(`when ${url.slice(0, 90)} is asked, then it answers 400 naming ${field}`, async () => {
        const { status, body } = await get(url);
        expect(status).toBe(400);
        expect(body).toEqual({ error: 'invalid_parameter', message: expect.stringContaining(field), field });
      });
    }

    it('when a coarse series spans many years, then it is answered up to the limits', async () => {
      expect((await get('/api/metrics/revenue/series?start=1950-01-01&end=2049-12-31&granularity=year')).body.periods).toHaveLength(100);
      expect((await get('/api/metrics/revenue/series?start=2024-01-01&end=2024-12-31&granularity=day')).body.periods).toHaveLength(366);
    });
  });

  it('when /docs is asked, then the new endpoints and parameters are documented', async () => {
    const { body } = await get('/docs/json');
    const names = (path: string) => body.paths[path].get.parameters.map((p: { name: string }) => p.name);
    expect(names('/api/metrics/revenue')).toEqual(['start', 'end', 'product_id', 'compare']);
    expect(names('/api/metrics/revenue/series')).toEqual(['start', 'end', 'granularity', 'product_id']);
    expect(names('/api/metrics/revenue/by-product')).toEqual(['start', 'end', 'limit', 'order']);
    expect(names('/api/metrics/revenue/daily')).toEqual(['start', 'end']);
    const granularity = body.paths['/api/metrics/revenue/series'].get.parameters.find((p: { name: string }) => p.name === 'granularity');
    expect(granularity.schema.enum).toEqual(['day', 'week', 'month', 'quarter', 'year']);
  });

  describe('kept from the stream of rows', () => {
    it('when an import finishes, then its log says where the rollup time went, table by table, with the rows each got', async () => {
      const file = h.writeCsv('profiled.csv', csv([
        ['2024-06-03', 'F-1', 'P-1', '1.00'],
        ['2024-06-03', 'F-1', 'P-2', '2.00'],
        ['2024-06-04', 'F-2', 'P-1', '3.00'],
        ['2024-06-11', 'F-3', 'P-1', '4.00'],
      ]));
      const finished: Array<Record<string, unknown>> = [];
      const log = { info: (obj: object, msg?: string) => void (msg === 'import finished' && finished.push(obj as Record<string, unknown>)), warn: () => {}, error: () => {} };
      const outcome = await importFile(h.database, file, 'profiled.csv', { onError: 'fail', log });
      expect(outcome.status).toBe('success');
      const { phases, rollups } = finished[0] as { phases: Record<string, number>; rollups: { mode: string; tables: Record<string, { rows: number; ms: number }> } };
      expect(Object.keys(phases).sort()).toEqual(['aggregate_ms', 'commit_ms', 'load_ms', 'read_ms', 'rollups_ms']);
      expect(rollups.mode).toBe('stream');
      const rows = Object.fromEntries(Object.entries(rollups.tables).map(([table, t]) => [table, t.rows]));
      // Three dates; (product, date): P-1 ×3, P-2 ×1; (product, week): P-1 in two weeks, P-2 in one;
      // one basket (P-1 + P-2) on one date, with its two products.
      expect(rows).toMatchObject({
        revenue_daily: 3,
        revenue_daily_product: 4,
        revenue_weekly_product: 3,
        revenue_monthly_product: 2,
        revenue_daily_basket: 1,
        revenue_basket_products: 2,
      });
      for (const t of Object.values(rollups.tables)) expect(t.ms).toBeGreaterThanOrEqual(0);
      await expectRollupsMatchRebuild(h.database);
    });

    it('when an order continues in a later file whose order ids meet the first one\'s, then its facts are recomputed once', async () => {
      await load([
        ['2024-05-01', 'A-1', 'P-1', '1.00'],
        ['2024-05-01', 'A-1', 'P-2', '2.00'],
        ['2024-05-02', 'A-3', 'P-1', '3.00'],
      ]);
      // A-2 lies between A-1 and A-3: the ranges meet, so A-1's other lines are looked for and found.
      await load([
        ['2024-05-01', 'A-1', 'P-3', '4.00'],
        ['2024-05-03', 'A-2', 'P-1', '5.00'],
      ]);
      const may = (await get('/api/metrics/revenue/daily?start=2024-05-01&end=2024-05-03')).body.days;
      expect(may.map((d: { order_count: number; sale_count: number }) => [d.order_count, d.sale_count])).toEqual([[1, 3], [1, 1], [1, 1]]);
      const basket = await get('/api/metrics/revenue?start=2024-05-01&end=2024-05-01&product_id=P-1&product_id=P-3');
      expect(basket.body).toMatchObject({ order_count: 1, sale_count: 2 });
      await expectRollupsMatchRebuild(h.database);
    });

    it('when an order\'s lines are not side by side in the file, then it still counts once a day and its basket is whole', async () => {
      await load([
        ['2024-05-06', 'B-2', 'P-1', '1.00'],
        ['2024-05-06', 'B-1', 'P-1', '1.00'],
        ['2024-05-06', 'B-2', 'P-2', '1.00'],
        ['2024-05-07', 'B-1', 'P-2', '1.00'],
      ]);
      const days = (await get('/api/metrics/revenue/daily?start=2024-05-06&end=2024-05-07')).body.days;
      expect(days.map((d: { order_count: number }) => d.order_count)).toEqual([2, 1]);
      const both = await get('/api/metrics/revenue?start=2024-05-06&end=2024-05-07&product_id=P-1&product_id=P-2');
      expect(both.body).toMatchObject({ order_count: 2, sale_count: 4 });
      await expectRollupsMatchRebuild(h.database);
    });

    it('when a skipped repeat names an earlier identity on another date, then only the first line counts', async () => {
      h.writeCsv('repeats.csv', csv([
        ['2024-05-13', 'C-1', 'P-1', '1.00'],
        ['2024-05-13', 'C-1', 'P-2', '2.00'],
        ['2024-05-14', 'C-1', 'P-1', '9.00'],
      ]));
      const res = await h.app.inject({ method: 'POST', url: '/api/import-sales/?on_error=skip' });
      expect(res.json().summary, res.body).toMatchObject({ partial: 1 });
      const days = (await get('/api/metrics/revenue/daily?start=2024-05-13&end=2024-05-14')).body.days;
      expect(days.map((d: { revenue: string; order_count: number }) => [d.revenue, d.order_count])).toEqual([['3.00', 1], ['0.00', 0]]);
      await expectRollupsMatchRebuild(h.database);
    });

    it('when product ids hold characters above U+FFFF and just below, then baskets are named as the database sorts them', async () => {
      // UTF-16 puts an astral character (a surrogate pair) before U+FFFD; code points, as the databases sort, after.
      const astral = 'P-\u{1F600}';
      const high = 'P-\uFFFD';
      await load([
        ['2024-05-20', 'D-1', astral, '1.00'],
        ['2024-05-20', 'D-1', high, '1.00'],
        ['2024-05-20', 'D-1', 'P-a', '1.00'],
      ]);
      const all = await get(`/api/metrics/revenue?start=2024-05-20&end=2024-05-20&product_id=${encodeURIComponent(astral)}&product_id=${encodeURIComponent(high)}`);
      expect(all.body).toMatchObject({ order_count: 1, sale_count: 2 });
      await expectRollupsMatchRebuild(h.database);
    });

    it('when ids differ only by characters below a space at their end, then ranges and baskets follow the database\'s order', async () => {
      // MySQL's utf8mb4_bin pads the shorter id with spaces: 'A' sorts after 'A\u0001' there, before it on SQLite.
      await load([['2024-06-03', 'A', 'P-1', '1.00']]);
      await load([
        ['2024-06-03', 'A', 'P-2', '2.00'],
        ['2024-06-03', 'A\u0001', 'P-3', '3.00'],
        ['2024-06-03', 'A\u0001', 'P-3\u0001', '4.00'],
      ]);
      const day = (await get('/api/metrics/revenue/daily?start=2024-06-03&end=2024-06-03')).body.days[0];
      expect(day).toMatchObject({ order_count: 2, sale_count: 4 });
      await expectRollupsMatchRebuild(h.database);
    });

    it('when a file mostly replaces stored rows and also brings new ones and a repeat, then each is stored once as it should be', async () => {
      const first = Array.from({ length: 30 }, (_, i) => ['2024-07-01', `F-${String(i).padStart(2, '0')}`, 'P-1', '1.00']);
      await load(first);
      // Every stored row again with another amount, then new orders, then a repeat of a new one.
      h.writeCsv('again.csv', csv([
        ...first.map(([date, order, product]) => [date!, order!, product!, '2.00']),
        ['2024-07-02', 'F-90', 'P-1', '5.00'],
        ['2024-07-02', 'F-90', 'P-2', '6.00'],
        ['2024-07-03', 'F-90', 'P-2', '7.00'],
      ]));
      const res = await h.app.inject({ method: 'POST', url: '/api/import-sales/?on_error=skip' });
      const file = (res.json().files as Array<{ status: string; num_rows: number; rows_rejected: number }>)[0]!;
      expect(file, res.body).toMatchObject({ status: 'partial', num_rows: 32, rows_rejected: 1 });
      const history = await sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM sales_history`.execute(h.database.db);
      expect(Number(history.rows[0]!.n)).toBe(30);
      const july = await get('/api/metrics/revenue?start=2024-07-01&end=2024-07-31');
      expect(july.body).toMatchObject({ total_revenue: '71.00', order_count: 31, sale_count: 32 });
      await expectRollupsMatchRebuild(h.database);
    });

    it('when an undo takes away the lines that joined two files\' order, then the first file\'s facts come back', async () => {
      await load([['2024-05-27', 'E-1', 'P-1', '1.00'], ['2024-05-28', 'E-2', 'P-1', '1.00']]);
      h.writeCsv('more.csv', csv([['2024-05-27', 'E-1', 'P-2', '2.00'], ['2024-05-29', 'E-1', 'P-3', '3.00']]));
      const second = await h.app.inject({ method: 'POST', url: '/api/import-sales/' });
      const id = (second.json().files as Array<{ id: number; status: string }>).find((f) => f.status === 'success')!.id;
      expect(await multiDay()).toHaveLength(3);
      await expectRollupsMatchRebuild(h.database, 'after the second file');
      expect((await h.app.inject({ method: 'DELETE', url: `/api/imports/${id}` })).statusCode).toBe(200);
      expect(await multiDay()).toEqual([]);
      await expectRollupsMatchRebuild(h.database, 'after its undo');
    });
  });

  it('when a replace moves a row to another date, then both dates and the spanning-order table follow', async () => {
    const o = orderId();
    await load([['2024-06-01', o, 'P-1', '1.00'], ['2024-06-10', o, 'P-2', '2.00']]);
    expect((await get('/api/metrics/revenue?start=2024-06-01&end=2024-06-30')).body.order_count).toBe(1);
    expect(await multiDay()).toEqual([`${o}|P-1|2024-06-01`, `${o}|P-2|2024-06-10`]);
    // The second line moves to the first one's date: the order no longer spans dates.
    await load([['2024-06-01', o, 'P-2', '3.00']]);
    const daily = await get('/api/metrics/revenue/daily?start=2024-06-01&end=2024-06-10');
    expect(daily.body.days[0]).toEqual({ date: '2024-06-01', revenue: '4.00', order_count: 1, sale_count: 2 });
    expect(daily.body.days[9]).toEqual({ date: '2024-06-10', revenue: '0.00', order_count: 0, sale_count: 0 });
    expect(await multiDay()).toEqual([]);
    const month = await get('/api/metrics/revenue/series?start=2024-06-01&end=2024-06-30&granularity=month');
    expect(figures(month.body.periods)).toEqual([['2024-06-01', '2024-06-01', '2024-06-30', false, '4.00', 1, 2]]);
    // A new line on another date makes it span dates again.
    await load([['2024-07-02', o, 'P-3', '5.00']]);
    expect(await multiDay()).toHaveLength(3);
    expect((await get('/api/metrics/revenue?start=2024-06-01&end=2024-07-31')).body).toMatchObject({ order_count: 1, sale_count: 3 });

    // rebuildRollups recomputes the same tables from scratch.
    const before = await snapshot();
    await rebuildRollups(h.database);
    expect(await snapshot()).toEqual(before);
  });

  it('when a basket loses its last order, then the tables are those of a rebuild', async () => {
    const o = orderId();
    await load([['2024-09-02', o, 'P-1', '1.00'], ['2024-09-02', o, 'P-2', '2.00'], ['2024-09-03', orderId(), 'P-3', '3.00']]);
    const both = 'start=2024-09-01&end=2024-09-30&product_id=P-1&product_id=P-2';
    expect((await get(`/api/metrics/revenue?${both}`)).body).toMatchObject({ order_count: 1, sale_count: 2 });
    // P-2 moves to another date: the order's basket {P-1, P-2} has no order left.
    await load([['2024-09-09', o, 'P-2', '2.00']]);
    expect((await get(`/api/metrics/revenue?${both}`)).body).toMatchObject({ order_count: 1, sale_count: 2 });
    const weeks = await get(`/api/metrics/revenue/series?${both}&granularity=week`);
    expect(weeks.body.periods.map((p: { order_count: number }) => p.order_count)).toEqual([0, 1, 1, 0, 0, 0]);
    const before = await snapshot();
    await rebuildRollups(h.database);
    expect(await snapshot()).toEqual(before);
  });

  it('when an undo removes the middle date of an order spanning three, then it still spans two and counts once', async () => {
    const o = orderId();
    await load([['2024-08-01', o, 'P-1', '1.00'], ['2024-08-20', o, 'P-3', '3.00'], ['2024-08-02', orderId(), 'P-9', '9.00']]);
    h.writeCsv(`${orderId('file')}.csv`, csv([['2024-08-10', o, 'P-2', '2.00']]));
    const second = await h.app.inject({ method: 'POST', url: '/api/import-sales' });
    const id = (second.json().files as Array<{ id: number; status: string }>).find((f) => f.status === 'success')!.id;
    expect((await get('/api/metrics/revenue?start=2024-08-01&end=2024-08-31')).body).toMatchObject({ order_count: 2, sale_count: 4 });
    const undo = await h.app.inject({ method: 'DELETE', url: `/api/imports/${id}` });
    expect(undo.statusCode, undo.body).toBe(200);
    expect((await get('/api/metrics/revenue?start=2024-08-01&end=2024-08-31')).body).toMatchObject({
      total_revenue: '13.00',
      order_count: 2,
      sale_count: 3,
    });
    const weeks = await get('/api/metrics/revenue/series?start=2024-07-29&end=2024-08-25&granularity=month');
    expect(figures(weeks.body.periods)).toEqual([
      ['2024-07-01', '2024-07-29', '2024-07-31', true, '0.00', 0, 0],
      ['2024-08-01', '2024-08-01', '2024-08-25', true, '13.00', 2, 3],
    ]);
    expect(await multiDay()).toEqual([`${o}|P-1|2024-08-01`, `${o}|P-3|2024-08-20`]);
  });

  async function multiDay(): Promise<string[]> {
    const { rows } = await sql<{ order_id: string; product_id: string; date: string }>`
      SELECT order_id, product_id, date FROM revenue_multiday_lines ORDER BY order_id, product_id`.execute(h.database.db);
    return rows.map((r) => `${r.order_id}|${r.product_id}|${r.date}`);
  }
  const snapshot = () => rollupSnapshot(h.database);
});

describe.each(DIALECTS)('the rollup migration on %s', (kind) => {
  it('when sales exist before it runs, then it backfills the rollups from them, and down removes them', async () => {
    const testDb = await createTestDatabase(kind);
    const database = openDatabase(testDb.config);
    try {
      const migrator = createMigrator(database.writer);
      const result = await migrator.migrateTo('2026-11-25T0100-sales-history');
      expect(result.error).toBeUndefined();
      await sql`INSERT INTO imported_files (filename, sha256, size_bytes, imported_at, num_rows, status, errors, warnings, on_error)
        VALUES ('old.csv', ${'a'.repeat(64)}, 1, '2024-01-01 00:00:00.000', 4, 'success', '[]', '[]', 'fail')`.execute(database.writer);
      // Its id as generated (a Galera node steps ids by the cluster's size, from its own offset).
      const { id: fileId } = await database.db.selectFrom('imported_files').select('id').executeTakeFirstOrThrow();
      // As the database's money column takes it (DECIMAL text, or integer cents).
      const money = (v: string) => dialectModule(kind).centsToDb(decimalToCents(v));
      for (const [date, order, product, amount] of [
        ['2024-01-01', 'A', 'P-1', '1.50'],
        ['2024-01-02', 'A', 'P-2', '2.50'],
        ['2024-01-02', 'B', 'P-1', '-0.25'],
        ['2024-02-01', 'C', 'P-1', '10.00'],
        ['2024-03-04', 'D', 'P-1', '1.00'],
        ['2024-03-04', 'D', 'P-2', '1.00'],
      ] as const) {
        await sql`INSERT INTO sales (date, order_id, product_id, amount_sgd, imported_file_id, source_line)
          VALUES (${date}, ${order}, ${product}, ${money(amount)}, ${fileId}, 2)`.execute(database.writer);
      }
      expect(await migrateToLatest(database.writer)).toEqual([
        '2026-11-25T0200-revenue-rollups',
        '2026-12-01T0000-basket-rollups',
        '2026-12-01T0100-period-rollups',
        '2026-12-06T0000-stream-rollups',
        '2026-12-07T0000-import-progress',
      ]);
      // The import's range of order ids is backfilled from its rows; the rollups are a rebuild's.
      const record = await database.db.selectFrom('imported_files').select(['order_id_min', 'order_id_max']).executeTakeFirstOrThrow();
      expect(record).toEqual({ order_id_min: 'A', order_id_max: 'D' });
      await expectRollupsMatchRebuild(database, 'after the migrations');
      const { buildApp } = await import('../src/app.js');
      const app = await buildApp({
        config: { ...loadConfig({ SALES_DIR: process.cwd(), LOG_LEVEL: 'silent' }), database: testDb.config },
        database,
        logger: false,
      });
      expect((await app.inject({ url: '/api/metrics/revenue?start=2024-01-01&end=2024-01-31' })).json()).toMatchObject({
        total_revenue: '3.75',
        order_count: 2,
        sale_count: 3,
      });
      const series = (await app.inject({ url: '/api/metrics/revenue/series?granularity=month' })).json();
      expect(series.periods.map((p: { order_count: number }) => p.order_count)).toEqual([2, 1, 1]);
      // Several products: order A spans two dates, order D holds both products on one.
      const both = (await app.inject({ url: '/api/metrics/revenue?product_id=P-1&product_id=P-2' })).json();
      expect(both).toMatchObject({ total_revenue: '15.75', order_count: 4, sale_count: 6 });
      const weeks = (await app.inject({ url: '/api/metrics/revenue/series?start=2024-01-01&end=2024-03-10&granularity=week&product_id=P-1&product_id=P-2' })).json();
      expect(weeks.periods.filter((p: { order_count: number }) => p.order_count > 0).map((p: { period: string; order_count: number }) => [p.period, p.order_count])).toEqual([
        ['2024-01-01', 2],
        ['2024-01-29', 1],
        ['2024-03-04', 1],
      ]);
      const top = (await app.inject({ url: '/api/metrics/revenue/by-product' })).json();
      expect(top.products.map((p: { product_id: string; revenue: string }) => [p.product_id, p.revenue])).toEqual([
        ['P-1', '12.25'],
        ['P-2', '3.50'],
      ]);
      const part = (await app.inject({ url: '/api/metrics/revenue/by-product?start=2024-01-02&end=2024-02-01' })).json();
      expect(part.products.map((p: { product_id: string; revenue: string }) => [p.product_id, p.revenue])).toEqual([
        ['P-1', '9.75'],
        ['P-2', '2.50'],
      ]);
      await app.close();

      // Down of the stream-rollups migration: month-to-date sums and basket samples come back.
      const downToPeriods = await migrator.migrateTo('2026-12-01T0100-period-rollups');
      expect(downToPeriods.error).toBeUndefined();
      const mtd = await sql<{ product_id: string; date: string; sale_count: number }>`
        SELECT product_id, date, sale_count FROM revenue_product_mtd WHERE product_id = 'P-1' ORDER BY date`.execute(database.db);
      expect(mtd.rows.map((r) => [r.date, Number(r.sale_count)])).toEqual([
        ['2024-01-01', 1],
        ['2024-01-02', 2],
        ['2024-02-01', 1],
        ['2024-03-04', 1],
      ]);
      const samples = await sql<{ sample_order_id: string }>`SELECT sample_order_id FROM revenue_daily_basket`.execute(database.db);
      expect(samples.rows.map((r) => r.sample_order_id)).toEqual(['D']);
      const weekly = await sql<{ week: string; order_count: number }>`SELECT week, order_count FROM revenue_weekly_basket`.execute(database.db);
      expect(weekly.rows.map((r) => [r.week, Number(r.order_count)])).toEqual([['2024-03-04', 1]]);
      const columns = (await database.db.introspection.getTables()).find((t) => t.name === 'imported_files')!.columns.map((c) => c.name);
      expect(columns).not.toContain('order_id_min');

      const downToRollups = await migrator.migrateTo('2026-11-25T0200-revenue-rollups');
      expect(downToRollups.error).toBeUndefined();
      const rollupTables = (await database.db.introspection.getTables()).map((t) => t.name);
      expect(rollupTables).toContain('revenue_daily');
      for (const table of ['revenue_daily_basket', 'revenue_basket_products', 'revenue_weekly_product', 'revenue_weekly_basket', 'revenue_monthly_basket']) {
        expect(rollupTables).not.toContain(table);
      }
      const down = await migrator.migrateTo('2026-11-25T0100-sales-history');
      expect(down.error).toBeUndefined();
      const tables = (await database.db.introspection.getTables()).map((t) => t.name);
      expect(tables).not.toContain('revenue_daily');
      expect(tables).not.toContain('data_version');
      expect(tables).toContain('sales');
    } finally {
      await database.close();
      await testDb.drop();
    }
  });
});
