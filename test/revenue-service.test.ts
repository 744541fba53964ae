import { describe, expect, it } from 'vitest';
import { readDataVersion } from '../src/db/data-version.js';
import { AppError } from '../src/http/errors.js';
import { importFolder } from '../src/imports/import.service.js';
import { dailyQuestion, RevenueService, seriesQuestion, totalsQuestion } from '../src/metrics/revenue.service.js';
import { csv, orderId, useHarness } from './support/harness.js';

const quiet = { info: () => {}, warn: () => {}, error: () => {} };

describe('revenue service, without HTTP (sqlite)', () => {
  const h = useHarness('sqlite');

  async function importRows(rows: string[][]) {
    h.writeCsv(`${orderId('file')}.csv`, csv(rows));
    const result = await importFolder(h.database, h.salesDir, { onError: 'fail', log: quiet });
    expect(result.summary.imported).toBe(1);
  }

  it('when two rows are imported, then the total is their sum, and the days between them are zero-filled', async () => {
    await importRows([
      ['2024-03-01', orderId(), 'P-1', '12.34'],
      ['2024-03-03', orderId(), 'P-2', '0.66'],
    ]);
    const revenue = new RevenueService(h.database);
    const version = await readDataVersion(h.database.db);

    const all = await revenue.answer(totalsQuestion({}), version);
    expect(all).toEqual({ start: null, end: null, productIds: [], totals: { revenueCents: 1300n, orderCount: 2, saleCount: 2 } });
    // A product filter is answered from the rollup tables rather than the snapshot: same figures.
    const one = await revenue.answer(totalsQuestion({ productIds: ['P-2', 'P-2'] }), version);
    expect(one).toMatchObject({ productIds: ['P-2'], totals: { revenueCents: 66n, orderCount: 1, saleCount: 1 } });

    const daily = await revenue.answer(dailyQuestion({}), version);
    expect(daily.start).toBe('2024-03-01');
    expect(daily.days.map((d) => [d.date, d.revenueCents])).toEqual([
      ['2024-03-01', 1234n],
      ['2024-03-02', 0n],
      ['2024-03-03', 66n],
    ]);

    const compared = await revenue.answer(totalsQuestion({ start: '2024-03-03', end: '2024-03-04', compare: 'previous_period' }), version);
    expect(compared.previous).toEqual({ start: '2024-03-01', end: '2024-03-02', totals: { revenueCents: 1234n, orderCount: 1, saleCount: 1 } });
    const monthly = await revenue.answer(seriesQuestion({ granularity: 'month' }), version);
    expect(monthly.periods).toMatchObject([{ period: '2024-03-01', revenueCents: 1300n, orderCount: 2 }]);
  });

  it('when a question is invalid, then asking it throws invalid_parameter before any database work', () => {
    const invalid = (ask: () => unknown) => {
      try {
        ask();
      } catch (error) {
        return error instanceof AppError ? [error.code, error.field] : error;
      }
      return 'no error';
    };
    expect(invalid(() => totalsQuestion({ start: '2024-02-01', end: '2024-01-01' }))).toEqual(['invalid_parameter', 'start']);
    expect(invalid(() => totalsQuestion({ start: '2024-02-01', compare: 'previous_period' }))).toEqual(['invalid_parameter', 'compare']);
    expect(invalid(() => dailyQuestion({ start: '2000-01-01', end: '2020-01-01' }))).toEqual(['invalid_parameter', 'end']);
    expect(invalid(() => seriesQuestion({ productIds: [' P'] }))).toEqual(['invalid_parameter', 'product_id']);
    expect(invalid(() => totalsQuestion({ productIds: ['P\u0000'] }))).toEqual(['invalid_parameter', 'product_id']);
  });
});
