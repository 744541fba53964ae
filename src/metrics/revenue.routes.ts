import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Database } from '../db/connection.js';
import { invalidParameter } from '../http/errors.js';
import { daysInclusive, eachDay } from './calendar.js';
import { presentDay, presentTotals } from './revenue.presenter.js';
import { revenueByDay, revenueTotals, saleDateBounds } from './revenue.queries.js';
import { DailyRevenueResponse, RangeQuery, RevenueTotalsResponse } from './revenue.schemas.js';

/** Longest range the daily series answers (ten years and change). */
export const MAX_SERIES_DAYS = 3660;

const errors = { 400: { $ref: 'ErrorResponse#' }, 503: { $ref: 'ErrorResponse#' } } as const;

function checkOrder(start: string | undefined, end: string | undefined): void {
  if (start && end && start > end) throw invalidParameter('start', `start (${start}) must not be after end (${end})`);
}

export const revenueRoutes: FastifyPluginAsyncTypebox<{ database: Database }> = async (app, { database }) => {
  app.get(
    '/api/metrics/revenue',
    {
      schema: {
        tags: ['metrics'],
        summary: 'Total revenue, distinct orders and sales in a date range',
        querystring: RangeQuery,
        response: { 200: RevenueTotalsResponse, ...errors },
      },
    },
    async (request) => {
      const { start, end } = request.query;
      checkOrder(start, end);
      return presentTotals(start ?? null, end ?? null, await revenueTotals(database, { start, end }));
    },
  );

  app.get(
    '/api/metrics/revenue/daily',
    {
      schema: {
        tags: ['metrics'],
        summary: 'Revenue per calendar day, zero-filled',
        description: `Absent bounds default to the first / last sale date. At most ${MAX_SERIES_DAYS} days.`,
        querystring: RangeQuery,
        response: { 200: DailyRevenueResponse, ...errors },
      },
    },
    async (request) => {
      checkOrder(request.query.start, request.query.end);
      let { start, end } = request.query;
      if (!start || !end) {
        const bounds = await saleDateBounds(database);
        if (!bounds) return { start: start ?? null, end: end ?? null, currency: 'SGD' as const, days: [] };
        start ??= bounds.first;
        end ??= bounds.last;
        if (start > end) return { start, end, currency: 'SGD' as const, days: [] };
      }
      if (daysInclusive(start, end) > MAX_SERIES_DAYS) {
        throw invalidParameter('end', `the range ${start}..${end} is longer than ${MAX_SERIES_DAYS} days`);
      }
      const byDate = new Map((await revenueByDay(database, { start, end })).map((d) => [d.date, d]));
      const days = eachDay(start, end).map((date) =>
        presentDay(byDate.get(date) ?? { date, revenueCents: 0n, orderCount: 0, saleCount: 0 }),
      );
      return { start, end, currency: 'SGD' as const, days };
    },
  );
};
