import { readConsistently, type Database } from '../db/database.js';
import { invalidParameter } from '../http/errors.js';
import { addDays, daysInclusive, eachDay, toDayNumber, type Granularity } from '../calendar.js';
import { DailySnapshots, type DailySnapshot } from './daily-snapshot.js';
import {
  revenueByDay,
  revenueByPeriod,
  revenueByProduct,
  revenueTotals,
  saleDateBounds,
  seriesOverCount,
  type DateRange,
  type DayRevenue,
  type ProductRevenue,
  type RevenueFilter,
  type RevenueTotals,
} from './revenue.queries.js';
import { buildSeries, countPeriods, type PeriodRevenue } from './revenue.series.js';

/**
 * The revenue questions the metrics routes answer, without HTTP. Asking is two steps, so that a
 * bad question is refused before any database work (and before a cached answer could match it):
 *
 * 1. a `*Question` function checks the parameters (AppError `invalid_parameter` when wrong) and
 *    gives the question its cache key;
 * 2. `RevenueService.answer` answers it over the data of one data version.
 *
 * @example
 * const revenue = new RevenueService(database);
 * const answer = await revenue.answer(totalsQuestion({ start: '2024-01-01', end: '2024-01-31' }), version);
 * answer.totals.revenueCents; // 1550n
 */

/** Longest range the daily series answers (ten years and change); also the most periods of any series. */
export const MAX_SERIES_DAYS = 3660;
/** Longest range any series answers, whatever its granularity (a hundred years and change). */
export const MAX_SERIES_SPAN_DAYS = 36_600;

const FIRST_DAY = toDayNumber('0000-01-01');

/** Where the answers of one data version come from. */
export interface RevenueSource {
  /** The database, or the read transaction the answer is computed in. */
  reader: Database;
  bounds(): Promise<{ first: string; last: string } | undefined>;
  totals(filter: RevenueFilter): Promise<RevenueTotals>;
  byDay(filter: RevenueFilter & { start: string; end: string }): Promise<DayRevenue[]>;
  overCount(filter: RevenueFilter & { start: string; end: string }, granularity: Granularity): Promise<string[]>;
}

/** A checked question: what names it among the questions of one data version, and how to answer it. */
export interface RevenueQuestion<T> {
  /** Unique per question (the answer cache's key within a data version). */
  readonly key: string;
  /** It reads the rollup tables even when the daily snapshot is kept (product filters, rankings). */
  readonly tables: boolean;
  compute(data: RevenueSource): Promise<T>;
}

export interface TotalsAnswer {
  start: string | null;
  end: string | null;
  /** The product filter as applied (sorted, unique); empty: every product. */
  productIds: string[];
  totals: RevenueTotals;
  /** With compare=previous_period: the equally long period just before, and its totals. */
  previous?: { start: string; end: string; totals: RevenueTotals };
}

export interface DailyAnswer {
  /** The range answered: absent bounds filled from the data; null only when there are no sales. */
  start: string | null;
  end: string | null;
  /** Every day of the range, zero-filled; none when there is nothing to list. */
  days: DayRevenue[];
}

export interface SeriesAnswer {
  start: string | null;
  end: string | null;
  granularity: Granularity;
  productIds: string[];
  periods: PeriodRevenue[];
}

export interface ByProductAnswer {
  start: string | null;
  end: string | null;
  order: 'revenue' | 'orders';
  limit: number;
  /** The range's revenue over every product (what each product's share is of). */
  totalCents: bigint;
  products: ProductRevenue[];
}

export interface TotalsParams extends DateRange {
  productIds?: string[] | undefined;
  compare?: 'previous_period' | undefined;
}

export interface SeriesParams extends DateRange {
  /** Default `day`. */
  granularity?: Granularity | undefined;
  productIds?: string[] | undefined;
}

export interface ByProductParams extends DateRange {
  /** Default 10. */
  limit?: number | undefined;
  /** Default `revenue`. */
  order?: 'revenue' | 'orders' | undefined;
}

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
    // No stored id holds one (files with NUL bytes are refused), and PostgreSQL's text cannot.
    if (id.includes('\u0000')) throw invalidParameter('product_id', 'product_id must not contain the NUL character (U+0000)');
  }
  return [...new Set(ids)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The equally long period just before [start, end], for compare=previous_period. */
function previousPeriod(start: string | undefined, end: string | undefined): { start: string; end: string } {
  if (!start || !end) throw invalidParameter('compare', 'compare=previous_period needs both start and end');
  const length = daysInclusive(start, end);
  if (toDayNumber(start) - length < FIRST_DAY) {
    throw invalidParameter('compare', 'compare=previous_period: the previous period would start before the year 0000');
  }
  return { start: addDays(start, -length), end: addDays(start, -1) };
}

/**
 * Absent bounds of a series default to the first / last sale date. `empty` when there is nothing
 * to list: no sales at all (then an absent bound stays null), or a given bound beyond the data.
 */
async function seriesBounds(
  data: RevenueSource,
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

/** Total revenue, distinct orders and sales in a range, for all or some products, optionally with the period before. */
export function totalsQuestion({ start, end, compare, productIds: ids }: TotalsParams): RevenueQuestion<TotalsAnswer> {
  checkOrder(start, end);
  const productIds = productFilter(ids);
  const previous = compare === 'previous_period' ? previousPeriod(start, end) : undefined;
  return {
    key: `total|${start ?? ''}|${end ?? ''}|${compare ?? ''}|${productIds.join('\u0000')}`,
    tables: productIds.length > 0,
    compute: async (data) => {
      const [totals, before] = await Promise.all([
        data.totals({ start, end, productIds }),
        previous ? data.totals({ ...previous, productIds }) : undefined,
      ]);
      const answer: TotalsAnswer = { start: start ?? null, end: end ?? null, productIds, totals };
      if (previous && before) answer.previous = { ...previous, totals: before };
      return answer;
    },
  };
}

/** Revenue per calendar day, zero-filled, over at most MAX_SERIES_DAYS days. */
export function dailyQuestion({ start, end }: DateRange): RevenueQuestion<DailyAnswer> {
  checkOrder(start, end);
  if (start && end) checkSeriesLength(start, end, 'daily');
  return {
    key: `daily|${start ?? ''}|${end ?? ''}`,
    tables: false,
    compute: async (data) => {
      const bounds = await seriesBounds(data, { start, end });
      if (bounds.empty) return { start: bounds.start, end: bounds.end, days: [] };
      // Only now, with absent bounds filled from the data, is the range's length known.
      checkSeriesLength(bounds.start, bounds.end, 'daily');
      const byDate = new Map((await data.byDay(bounds)).map((d) => [d.date, d]));
      const days = eachDay(bounds.start, bounds.end).map(
        (date) => byDate.get(date) ?? { date, revenueCents: 0n, orderCount: 0, saleCount: 0 },
      );
      return { start: bounds.start, end: bounds.end, days };
    },
  };
}

/** Revenue per day, ISO week, month, quarter or year, zero-filled, for all or some products. */
export function seriesQuestion({ start, end, granularity = 'day', productIds: ids }: SeriesParams): RevenueQuestion<SeriesAnswer> {
  checkOrder(start, end);
  const productIds = productFilter(ids);
  if (start && end) checkSeriesLength(start, end, granularity);
  return {
    key: `series|${start ?? ''}|${end ?? ''}|${granularity}|${productIds.join('\u0000')}`,
    tables: productIds.length > 0,
    compute: async (data) => {
      const bounds = await seriesBounds(data, { start, end });
      if (bounds.empty) return { start: bounds.start, end: bounds.end, granularity, productIds, periods: [] };
      checkSeriesLength(bounds.start, bounds.end, granularity);
      const filter = { start: bounds.start, end: bounds.end, productIds };
      // With products, whole weeks or months come from the period rollups.
      const entries =
        productIds.length > 0 && granularity !== 'day'
          ? revenueByPeriod(data.reader, filter, granularity === 'week' ? 'week' : 'month')
          : data.byDay(filter);
      const [days, overCount] = await Promise.all([entries, data.overCount(filter, granularity)]);
      const periods = buildSeries(days, overCount, bounds.start, bounds.end, granularity);
      return { start: bounds.start, end: bounds.end, granularity, productIds, periods };
    },
  };
}

/** The top products of a range by revenue or by orders, with the range's total revenue. */
export function byProductQuestion({ start, end, limit = 10, order = 'revenue' }: ByProductParams): RevenueQuestion<ByProductAnswer> {
  checkOrder(start, end);
  return {
    key: `by-product|${start ?? ''}|${end ?? ''}|${limit}|${order}`,
    tables: true,
    compute: async (data) => {
      const { totalCents, products } = await revenueByProduct(data.reader, { start, end }, order, limit);
      return { start: start ?? null, end: end ?? null, order, limit, totalCents, products };
    },
  };
}

/**
 * Questions without a product filter are answered from the in-memory snapshot of the daily
 * rollup for the version (no query at all once it is loaded); the others from the rollup tables
 * through `reader`.
 */
function source(snapshot: DailySnapshot | undefined, reader: Database): RevenueSource {
  const all = (f: RevenueFilter) => !f.productIds || f.productIds.length === 0;
  return {
    reader,
    bounds: async () => (snapshot ? snapshot.bounds() : saleDateBounds(reader)),
    totals: async (f) => (snapshot && all(f) ? snapshot.totals(f.start, f.end) : revenueTotals(reader, f)),
    byDay: async (f) => (snapshot && all(f) ? snapshot.byDay(f.start, f.end) : revenueByDay(reader, f)),
    overCount: async (f, g) => (snapshot && all(f) ? snapshot.overCount(f.start, f.end, g) : seriesOverCount(reader, f, g)),
  };
}

/** Answers revenue questions over one database (or its replicas), keeping the daily snapshot of the latest data version. */
export class RevenueService {
  constructor(
    private readonly database: Database,
    private readonly snapshots = new DailySnapshots(),
  ) {}

  /**
   * The answer to `question` over the data of `version` (the data version the caller holds, e.g.
   * the answer cache's; it names the snapshot to answer from), read from `from` (a replica; by
   * default the service's database). A question that reads the rollup tables (`tables`, or any
   * when the snapshot is not kept) is computed in one read-only transaction: its several
   * statements see one committed state, never half of an import.
   */
  async answer<T>(question: RevenueQuestion<T>, version: string, from: Database = this.database): Promise<T> {
    const snapshot = await this.snapshots.get(version, from);
    return question.tables || !snapshot
      ? readConsistently(from, (reader) => question.compute(source(snapshot, reader)))
      : question.compute(source(snapshot, from));
  }
}
