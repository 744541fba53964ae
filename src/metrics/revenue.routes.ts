import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { readConsistently, type Database } from '../db/connection.js';
import { invalidParameter } from '../http/errors.js';
import { formatCents } from '../money.js';
import { ifNoneMatch, type MetricsCache } from './answer-cache.js';
import { DailySnapshots, type DailySnapshot } from './daily-snapshot.js';
import { addDays, daysInclusive, eachDay, toDayNumber, type Granularity } from './calendar.js';
import { presentComparison, presentDay, presentPeriod, presentProduct, presentTotals } from './revenue.presenter.js';
import {
  revenueByDay,
  revenueByPeriod,
  revenueByProduct,
  revenueTotals,
  saleDateBounds,
  seriesOverCount,
  type DateRange,
  type DayRevenue,
  type RevenueFilter,
  type RevenueTotals,
} from './revenue.queries.js';
import {
  ByProductQuery,
  ByProductResponse,
  DailyRevenueResponse,
  RangeQuery,
  RevenueTotalsResponse,
  SeriesQuery,
  SeriesResponse,
  TotalsQuery,
} from './revenue.schemas.js';
import { buildSeries, countPeriods } from './revenue.series.js';

/** Longest range the daily series answers (ten years and change); also the most periods of any series. */
export const MAX_SERIES_DAYS = 3660;
/** Longest range any series answers, whatever its granularity (a hundred years and change). */
export const MAX_SERIES_SPAN_DAYS = 36_600;

const errors = { 400: { $ref: 'ErrorResponse#' }, 503: { $ref: 'ErrorResponse#' } } as const;
const FIRST_DAY = toDayNumber('0000-01-01');

function checkOrder(start: string | undefined, end: string | undefined): void {
  if (start && end && start > end) throw invalidParameter('start', `start (${start}) must not be after end (${end})`);
}

/** A series answers at most MAX_SERIES_DAYS periods over at most MAX_SERIES_SPAN_DAYS days. */
function checkSeriesLength(start: string, end: string, granularity: Granularity | 'daily'): void {
  if (granularity === 'daily') {
    // The daily endpoint's message, as it always was.
    if (daysInclusive(start, end) > MAX_SERIES_DAYS) {
      throw invalidParameter('end', `the range ${start}..${end} is longer than ${MAX_SERIES_DAYS} days`);
    }
    return;
  }
  const limit = granularity === 'day' ? MAX_SERIES_DAYS : MAX_SERIES_SPAN_DAYS;
  if (daysInclusive(start, end) > limit) {
    throw invalidParameter('end', `end is too far from start: the range ${start}..${end} is longer than ${limit} days`);
  }
  if (countPeriods(start, end, granularity) > MAX_SERIES_DAYS) {
    throw invalidParameter(
      'end',
      `end is too far from start: the range ${start}..${end} has more than ${MAX_SERIES_DAYS} periods of granularity ${granularity}`,
    );
  }
}

/** The product filter, sorted and without repeats; ids are compared exactly, as stored (trimmed). */
function productFilter(ids: string[] | undefined): string[] {
  if (!ids || ids.length === 0) return [];
  for (const id of ids) {
    if (id.trim() !== id) throw invalidParameter('product_id', `product_id "${id}" must not start or end with white space`);
  }
  return [...new Set(ids)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Absent bounds of a series default to the first / last sale date. `empty` when there is nothing
 * to list: no sales at all (then an absent bound stays null), or a given bound beyond the data.
 */
async function seriesBounds(
  data: Source,
  range: DateRange,
): Promise<{ start: string; end: string; empty: false } | { start: string | null; end: string | null; empty: true }> {
  const { start, end } = range;
  if (start && end) return { start, end, empty: false };
  const bounds = await data.bounds();
  if (!bounds) return { start: start ?? null, end: end ?? null, empty: true };
  const first = start ?? bounds.first;
  const last = end ?? bounds.last;
  return first > last ? { start: first, end: last, empty: true } : { start: first, end: last, empty: false };
}

/** Where the answers of one data version come from. */
interface Source {
  /** The database, or the read transaction the answer is computed in. */
  reader: Database;
  bounds(): Promise<{ first: string; last: string } | undefined>;
  totals(filter: RevenueFilter): Promise<RevenueTotals>;
  byDay(filter: RevenueFilter & { start: string; end: string }): Promise<DayRevenue[]>;
  overCount(filter: RevenueFilter & { start: string; end: string }, granularity: Granularity): Promise<string[]>;
}

export const revenueRoutes: FastifyPluginAsyncTypebox<{ database: Database; cache: MetricsCache }> = async (
  app,
  { database, cache },
) => {
  const snapshots = new DailySnapshots(database);

  /**
   * Questions without a product filter are answered from the in-memory snapshot of the daily
   * rollup for the version (no query at all once it is loaded); the others from the rollup tables
   * through `reader`.
   */
  function source(snapshot: DailySnapshot | undefined, reader: Database): Source {
    const all = (f: RevenueFilter) => !f.productIds || f.productIds.length === 0;
    return {
      reader,
      bounds: async () => (snapshot ? snapshot.bounds() : saleDateBounds(reader)),
      totals: async (f) => (snapshot && all(f) ? snapshot.totals(f.start, f.end) : revenueTotals(reader, f)),
      byDay: async (f) => (snapshot && all(f) ? snapshot.byDay(f.start, f.end) : revenueByDay(reader, f)),
      overCount: async (f, g) => (snapshot && all(f) ? snapshot.overCount(f.start, f.end, g) : seriesOverCount(reader, f, g)),
    };
  }

  /**
   * Answers from the cache when it can: the ETag is the data version, so a matching
   * If-None-Match gets 304 without any work; otherwise the serialized answer of (version,
   * question) is sent, computed once per version. A question that reads the rollup tables
   * (`tables`, or any when the snapshot is not kept) is computed in one read-only transaction:
   * its several statements see one committed state, never half of an import.
   */
  async function answer(
    request: FastifyRequest,
    reply: FastifyReply,
    key: string,
    tables: boolean,
    compute: (data: Source) => Promise<unknown>,
  ) {
    const version = await cache.version.current();
    const etag = cache.etag(version);
    reply.header('etag', etag).header('cache-control', cache.cacheControl);
    if (ifNoneMatch(request.headers['if-none-match'], etag)) return reply.code(304).send();
    let body: Buffer;
    try {
      body = await cache.answers.get(version, key, async () => {
        const snapshot = await snapshots.get(version);
        const value =
          tables || !snapshot
            ? await readConsistently(database, (reader) => compute(source(snapshot, reader)))
            : await compute(source(snapshot, database));
        return reply.serialize(value) as string;
      });
    } catch (error) {
      reply.removeHeader('etag').removeHeader('cache-control');
      throw error;
    }
    return reply.type('application/json; charset=utf-8').send(body);
  }

  app.get(
    '/api/metrics/revenue',
    {
      schema: {
        tags: ['metrics'],
        summary: 'Total revenue, distinct orders and sales in a date range',
        description:
          'Optionally for some products only (product_id, repeatable), and compared with the equally long ' +
          'period just before (compare=previous_period, needs start and end).',
        querystring: TotalsQuery,
        response: { 200: RevenueTotalsResponse, ...errors },
      },
    },
    async (request, reply) => {
      const { start, end, compare } = request.query;
      checkOrder(start, end);
      const productIds = productFilter(request.query.product_id);
      let previous: { start: string; end: string } | undefined;
      if (compare === 'previous_period') {
        if (!start || !end) throw invalidParameter('compare', 'compare=previous_period needs both start and end');
        const length = daysInclusive(start, end);
        if (toDayNumber(start) - length < FIRST_DAY) {
          throw invalidParameter('compare', 'compare=previous_period: the previous period would start before the year 0000');
        }
        previous = { start: addDays(start, -length), end: addDays(start, -1) };
      }
      const key = `total|${start ?? ''}|${end ?? ''}|${compare ?? ''}|${productIds.join('\u0000')}`;
      return answer(request, reply, key, productIds.length > 0, async (data) => {
        const filter = { start, end, productIds };
        const [now, before] = await Promise.all([
          data.totals(filter),
          previous ? data.totals({ ...previous, productIds }) : undefined,
        ]);
        const body = {
          ...presentTotals(start ?? null, end ?? null, now),
          ...(productIds.length > 0 ? { product_ids: productIds } : {}),
        };
        return previous && before ? presentComparison(body, now, { ...previous, totals: before }) : body;
      });
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
    async (request, reply) => {
      const { start, end } = request.query;
      checkOrder(start, end);
      if (start && end) checkSeriesLength(start, end, 'daily');
      return answer(request, reply, `daily|${start ?? ''}|${end ?? ''}`, false, async (data) => {
        const bounds = await seriesBounds(data, { start, end });
        if (bounds.empty) return { start: bounds.start, end: bounds.end, currency: 'SGD' as const, days: [] };
        checkSeriesLength(bounds.start, bounds.end, 'daily');
        const byDate = new Map((await data.byDay(bounds)).map((d) => [d.date, d]));
        const days = eachDay(bounds.start, bounds.end).map((date) =>
          presentDay(byDate.get(date) ?? { date, revenueCents: 0n, orderCount: 0, saleCount: 0 }),
        );
        return { start: bounds.start, end: bounds.end, currency: 'SGD' as const, days };
      });
    },
  );

  app.get(
    '/api/metrics/revenue/series',
    {
      schema: {
        tags: ['metrics'],
        summary: 'Revenue per day, ISO week, month, quarter or year, zero-filled',
        description:
          'Periods are labelled by their first day; the first and last are clipped to the range and flagged ' +
          '`partial` when the range cuts them. Absent bounds default to the first / last sale date. ' +
          `At most ${MAX_SERIES_DAYS} periods and ${MAX_SERIES_SPAN_DAYS} days.`,
        querystring: SeriesQuery,
        response: { 200: SeriesResponse, ...errors },
      },
    },
    async (request, reply) => {
      const { start, end } = request.query;
      const granularity: Granularity = request.query.granularity ?? 'day';
      checkOrder(start, end);
      const productIds = productFilter(request.query.product_id);
      if (start && end) checkSeriesLength(start, end, granularity);
      const key = `series|${start ?? ''}|${end ?? ''}|${granularity}|${productIds.join('\u0000')}`;
      return answer(request, reply, key, productIds.length > 0, async (data) => {
        const filterEcho = productIds.length > 0 ? { product_ids: productIds } : {};
        const bounds = await seriesBounds(data, { start, end });
        if (bounds.empty) {
          return { start: bounds.start, end: bounds.end, granularity, currency: 'SGD' as const, ...filterEcho, periods: [] };
        }
        checkSeriesLength(bounds.start, bounds.end, granularity);
        const filter = { start: bounds.start, end: bounds.end, productIds };
        // With products, whole weeks or months come from the period rollups.
        const entries =
          productIds.length > 0 && granularity !== 'day'
            ? revenueByPeriod(data.reader, { start: bounds.start, end: bounds.end, productIds }, granularity === 'week' ? 'week' : 'month')
            : data.byDay(filter);
        const [days, overCount] = await Promise.all([entries, data.overCount(filter, granularity)]);
        const periods = buildSeries(days, overCount, bounds.start, bounds.end, granularity).map(presentPeriod);
        return { start: bounds.start, end: bounds.end, granularity, currency: 'SGD' as const, ...filterEcho, periods };
      });
    },
  );

  app.get(
    '/api/metrics/revenue/by-product',
    {
      schema: {
        tags: ['metrics'],
        summary: 'Top products in a date range by revenue or by orders',
        description:
          'Each with its revenue, share of the range’s total revenue, distinct orders and sales. ' +
          'Ties rank by product id (by revenue, then product id, when ordered by orders).',
        querystring: ByProductQuery,
        response: { 200: ByProductResponse, ...errors },
      },
    },
    async (request, reply) => {
      const { start, end } = request.query;
      const limit = request.query.limit ?? 10;
      const order = request.query.order ?? 'revenue';
      checkOrder(start, end);
      return answer(request, reply, `by-product|${start ?? ''}|${end ?? ''}|${limit}|${order}`, true, async (data) => {
        const { totalCents, products } = await revenueByProduct(data.reader, { start, end }, order, limit);
        return {
          start: start ?? null,
          end: end ?? null,
          currency: 'SGD' as const,
          order,
          limit,
          total_revenue: formatCents(totalCents),
          products: products.map((p) => presentProduct(p, totalCents)),
        };
      });
    },
  );
};
