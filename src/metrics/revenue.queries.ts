import { sql, type RawBuilder } from 'kysely';
import type { Database } from '../db/database.js';
import { addDays, addMonths, daysInclusive, lastDayOfMonth, nextPeriodStart, periodEnd, periodStart, type Granularity } from '../calendar.js';

/**
 * Reads ("selectors") over the revenue rollups (src/db/tables.ts; kept by src/write/). Dates are `YYYY-MM-DD` strings;
 * bounds are inclusive. Every answer is exact:
 *
 * - revenue and sale counts add up across days and products;
 * - distinct orders per day add up across days except for orders whose lines carry several
 *   dates; those are all in the small side tables revenue_multiday_lines / _days, and an order
 *   on k days of a range is counted k − 1 times too many: exactly its (order, date) pairs in the
 *   range whose previous date (prev_date) is in the range too, so sum − COUNT of those;
 * - for one product, orders = sale rows: (order_id, product_id) is unique in sales, so an order
 *   has at most one line of a product;
 * - for several products, an order with lines of k ≥ 2 of them on one date is counted k times by
 *   their sale rows: its basket (its products that date) holds k of them. The baskets holding two
 *   or more of the products (revenue_basket_products) and their orders per date
 *   (revenue_daily_basket, read by day and labelled by period) give that over-count, k − 1 per order
 *   and date, without reading a sales line. Orders whose lines of those products carry several
 *   dates are in revenue_multiday_lines: their distinct (order, date) pairs there less their
 *   distinct orders is what the daily counts count too many.
 *
 * An answer that takes several statements is read in one transaction (readConsistently).
 */

export interface RevenueTotals {
  revenueCents: bigint;
  orderCount: number;
  saleCount: number;
}

export interface DayRevenue extends RevenueTotals {
  date: string;
}

export interface DateRange {
  start?: string | undefined;
  end?: string | undefined;
}

export interface RevenueFilter extends DateRange {
  /** Only these products (sorted, unique); empty or absent: all. */
  productIds?: readonly string[] | undefined;
}

type Num = string | number | bigint | null;

function inRange(column: string, range: DateRange): RawBuilder<unknown> {
  const parts: RawBuilder<unknown>[] = [];
  if (range.start) parts.push(sql`${sql.ref(column)} >= ${range.start}`);
  if (range.end) parts.push(sql`${sql.ref(column)} <= ${range.end}`);
  return parts.length === 0 ? sql`1 = 1` : sql.join(parts, sql` AND `);
}

function products(column: string, ids: readonly string[]): RawBuilder<unknown> {
  return ids.length === 1 ? sql`${sql.ref(column)} = ${ids[0]}` : sql`${sql.ref(column)} IN (${sql.join(ids)})`;
}

/** Total revenue, distinct orders and sales between two dates, for all or some products. */
export async function revenueTotals(database: Database, filter: RevenueFilter): Promise<RevenueTotals> {
  const db = database.db;
  const ids = filter.productIds ?? [];
  if (ids.length === 0) {
    const row = (
      await sql<{ revenue: Num; sales: Num; orders: Num; overlap: Num }>`
        SELECT SUM(revenue) AS revenue, SUM(sale_count) AS sales, SUM(order_count) AS orders,
          (SELECT COUNT(*) FROM revenue_multiday_days WHERE ${inRange('date', filter)}
            AND ${filter.start ? sql`prev_date >= ${filter.start}` : sql`prev_date IS NOT NULL`}) AS overlap
        FROM revenue_daily WHERE ${inRange('date', filter)}`.execute(db)
    ).rows[0]!;
    return {
      revenueCents: database.dialect.centsFromDb(row.revenue),
      orderCount: Number(row.orders ?? 0) - Number(row.overlap ?? 0),
      saleCount: Number(row.sales ?? 0),
    };
  }
  // Revenue and sale rows from the running sums (a few rows per product); distinct orders: for one
  // product its sale rows, for several those less the over-counts (see the top of this file).
  const [sums, baskets, multiDate] = await Promise.all([
    sql<{ revenue: Num; sales: Num }>`SELECT SUM(revenue) AS revenue, SUM(sale_count) AS sales
      FROM (${sql.join(productPrefixParts(database, filter, ids), sql` UNION ALL `)}) segments`.execute(db),
    // A total may cut its range anywhere: whole months, then whole weeks, then days.
    ids.length === 1
      ? 0
      : basketOverCount(
          database,
          ids,
          cutRange(filter, 'month').flatMap((piece) => (piece.grain === 'day' ? cutRange(piece, 'week') : [piece])),
        ).then(sumOverCounts),
    ids.length === 1
      ? undefined
      : sql<{ order_days: Num; orders: Num }>`SELECT
          (SELECT COUNT(*) FROM (SELECT DISTINCT order_id, date FROM revenue_multiday_lines
            WHERE ${products('product_id', ids)} AND ${inRange('date', filter)}) p) AS order_days,
          (SELECT COUNT(DISTINCT order_id) FROM revenue_multiday_lines
            WHERE ${products('product_id', ids)} AND ${inRange('date', filter)}) AS orders`.execute(db),
  ]);
  const saleCount = Number(sums.rows[0]?.sales ?? 0);
  const m = multiDate?.rows[0];
  const overCount = baskets + (m ? Number(m.order_days ?? 0) - Number(m.orders ?? 0) : 0);
  return {
    revenueCents: database.dialect.centsFromDb(sums.rows[0]?.revenue ?? null),
    orderCount: saleCount - overCount,
    saleCount,
  };
}

/**
 * Revenue per day that has sales in [start, end], ascending; days without sales are absent.
 * Each day's order_count is that day's distinct orders.
 */
export async function revenueByDay(database: Database, filter: RevenueFilter): Promise<DayRevenue[]> {
  const db = database.db;
  const ids = filter.productIds ?? [];
  if (ids.length === 0) {
    const { rows } = await sql<{ date: string; revenue: Num; sale_count: Num; order_count: Num }>`
      SELECT date, revenue, sale_count, order_count FROM revenue_daily
      WHERE ${inRange('date', filter)} ORDER BY date`.execute(db);
    return rows.map((r) => ({
      date: r.date,
      revenueCents: database.dialect.centsFromDb(r.revenue),
      orderCount: Number(r.order_count),
      saleCount: Number(r.sale_count),
    }));
  }
  return productSeries(database, ids, [{ grain: 'day', start: filter.start, end: filter.end }]);
}

/** Where each grain of rollup lives: per day, per ISO week (its Monday), per month (its 1st). */
const GRAINS = {
  day: { product: 'revenue_daily_product', basket: 'revenue_daily_basket', key: 'date' },
  week: { product: 'revenue_weekly_product', basket: 'revenue_daily_basket', key: 'week' },
  month: { product: 'revenue_monthly_product', basket: 'revenue_daily_basket', key: 'month' },
} as const;
type Grain = keyof typeof GRAINS;

/**
 * A range cut into the fewest rollup rows: its whole periods of `unit` (by their first days), and
 * the days of a partial first or last one (all days when a bound is open).
 */
function cutRange(range: DateRange, unit: 'week' | 'month'): Array<{ grain: Grain } & DateRange> {
  const { start, end } = range;
  if (!start || !end) return [{ grain: 'day', start, end }];
  const first = periodStart(start, unit) === start ? start : nextPeriodStart(periodStart(start, unit), unit);
  const lastWholeDay = periodEnd(periodStart(end, unit), unit) === end ? end : addDays(periodStart(end, unit), -1);
  if (lastWholeDay < first) return [{ grain: 'day', start, end }];
  const pieces: Array<{ grain: Grain } & DateRange> = [];
  if (start < first) pieces.push({ grain: 'day', start, end: addDays(first, -1) });
  pieces.push({ grain: unit, start: first, end: periodStart(lastWholeDay, unit) });
  if (lastWholeDay < end) pieces.push({ grain: 'day', start: addDays(lastWholeDay, 1), end });
  return pieces;
}

/**
 * Σ (k − 1) over the orders with lines of k ≥ 2 of the products on one date, per row of the
 * pieces' basket rollups (a date, week or month: `date`). The baskets holding two or more of the
 * products are found first, so that each rollup is then read by (basket, period) ranges.
 */
async function basketOverCount(
  database: Database,
  ids: readonly string[],
  pieces: Array<{ grain: Grain } & DateRange>,
): Promise<Array<{ date: string; overCount: number }>> {
  const db = database.db;
  const { rows: mixing } = await sql<{ basket: string; n: Num }>`
    SELECT basket, COUNT(*) AS n FROM revenue_basket_products WHERE ${products('product_id', ids)}
    GROUP BY basket HAVING COUNT(*) > 1`.execute(db);
  if (mixing.length === 0) return [];
  const byShare = new Map<number, string[]>();
  for (const { basket, n } of mixing) {
    const list = byShare.get(Number(n));
    if (list) list.push(basket);
    else byShare.set(Number(n), [basket]);
  }
  // Statements of at most basketTuning.perStatement names and 400 parts, whatever the pieces: far
  // below both databases' placeholder limits (SQLite: 32,766) and SQLite's 500 terms of a
  // compound SELECT.
  const statements: RawBuilder<unknown>[][] = [[]];
  let names = 0;
  for (const { grain, ...range } of pieces) {
    // Baskets are kept by day only: a week or month piece reads its days, labelled by its period.
    const { basket } = GRAINS[grain];
    const days = grain === 'day' ? range : { start: range.start, end: range.end && periodEnd(range.end, grain) };
    const label = grain === 'day' ? sql.ref('date') : (grain === 'week' ? database.dialect.sql.weekOf : database.dialect.sql.monthOf)(sql.ref('date'));
    for (const [n, list] of byShare) {
      for (let i = 0; i < list.length; i += basketTuning.perStatement) {
        const chunk = list.slice(i, i + basketTuning.perStatement);
        if (names + chunk.length > basketTuning.perStatement || statements.at(-1)!.length >= 400) {
          statements.push([]);
          names = 0;
        }
        names += chunk.length;
        statements.at(-1)!.push(sql`SELECT ${label} AS date, order_count * ${sql.lit(n - 1)} AS over_count
          FROM ${sql.table(basket)} WHERE basket IN (${sql.join(chunk)}) AND ${inRange('date', days)}`);
      }
    }
  }
  const over: Array<{ date: string; overCount: number }> = [];
  for (const parts of statements) {
    const { rows } = await sql<{ date: string; over_count: Num }>`${sql.join(parts, sql` UNION ALL `)}`.execute(db);
    for (const r of rows) over.push({ date: r.date, overCount: Number(r.over_count) });
  }
  return over;
}

/** Basket names per statement (see basketOverCount); a property so tests can make it small. */
export const basketTuning = { perStatement: 2_000 };

const sumOverCounts = (rows: Array<{ overCount: number }>) => rows.reduce((sum, r) => sum + r.overCount, 0);

/**
 * Revenue of some products in [start, end] for a series by week (unit 'week') or by month,
 * quarter or year (unit 'month'): each whole week or month of the range as one entry dated on its
 * first day, the days of a partial first or last one as they are. Bucketed by the series' periods
 * the sums are those of the days (distinct orders are daily counts summed, less the baskets'
 * over-count, corrected by `seriesOverCount` as the days' are), from one row per period and
 * product (and mixing basket) instead of one per day.
 */
export async function revenueByPeriod(
  database: Database,
  filter: { start: string; end: string; productIds: readonly string[] },
  unit: 'week' | 'month',
): Promise<DayRevenue[]> {
  return productSeries(database, filter.productIds, cutRange(filter, unit));
}

/**
 * Revenue of some products per row of each piece's grain (a date, week or month), ascending: rows
 * read by (product, period) ranges and added up here.
 */
async function productSeries(
  database: Database,
  ids: readonly string[],
  pieces: Array<{ grain: Grain } & DateRange>,
): Promise<DayRevenue[]> {
  const parts = pieces.map(({ grain, ...range }) => {
    const { product, key } = GRAINS[grain];
    return sql`SELECT ${sql.ref(key)} AS date, revenue, sale_count FROM ${sql.table(product)}
      WHERE ${products('product_id', ids)} AND ${inRange(key, range)}`;
  });
  const [sums, over] = await Promise.all([
    sql<{ date: string; revenue: Num; sale_count: Num }>`${sql.join(parts, sql` UNION ALL `)}`.execute(database.db),
    // One product: one line per order and product, nothing to take off.
    ids.length === 1 ? [] : basketOverCount(database, ids, pieces),
  ]);
  const byDate = new Map<string, DayRevenue>();
  for (const r of sums.rows) {
    const entry = byDate.get(r.date) ?? { date: r.date, revenueCents: 0n, orderCount: 0, saleCount: 0 };
    entry.revenueCents += database.dialect.centsFromDb(r.revenue);
    entry.saleCount += Number(r.sale_count);
    entry.orderCount += Number(r.sale_count);
    byDate.set(r.date, entry);
  }
  for (const { date, overCount } of over) {
    const entry = byDate.get(date) ?? { date, revenueCents: 0n, orderCount: 0, saleCount: 0 };
    entry.orderCount -= overCount;
    byDate.set(date, entry);
  }
  return [...byDate.values()].sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
}

/**
 * The over-count of summing daily distinct orders over the periods of a series: one date per
 * (order, date) pair whose order also has an earlier date in the same period. An order on k days
 * of a period thus takes k − 1 off that period's sum. Empty for days, and for one product (one
 * line per order and product).
 */
export async function seriesOverCount(
  database: Database,
  filter: RevenueFilter & { start: string; end: string },
  granularity: Granularity,
): Promise<string[]> {
  const ids = filter.productIds ?? [];
  if (granularity === 'day' || ids.length === 1) return [];
  const db = database.db;
  if (ids.length === 0) {
    const { rows } = await sql<{ date: string; prev_date: string }>`
      SELECT date, prev_date FROM revenue_multiday_days
      WHERE ${inRange('date', filter)} AND prev_date >= ${filter.start}`.execute(db);
    return rows.filter((r) => r.prev_date >= periodStart(r.date, granularity)).map((r) => r.date);
  }
  // Several products: the previous date must be one with a line of those products.
  const { rows } = await sql<{ order_id: string; date: string }>`
    SELECT DISTINCT order_id, date FROM revenue_multiday_lines
    WHERE ${inRange('date', filter)} AND ${products('product_id', ids)} ORDER BY order_id, date`.execute(db);
  const dates: string[] = [];
  for (let i = 1; i < rows.length; i++) {
    const before = rows[i - 1]!;
    const row = rows[i]!;
    if (before.order_id === row.order_id && periodStart(before.date, granularity) === periodStart(row.date, granularity)) {
      dates.push(row.date);
    }
  }
  return dates;
}

/** First and last sale date, or undefined when there are no sales. */
export async function saleDateBounds(database: Database): Promise<{ first: string; last: string } | undefined> {
  const row = await database.db
    .selectFrom('revenue_daily')
    .select((eb) => [eb.fn.min('date').as('first'), eb.fn.max('date').as('last')])
    .executeTakeFirstOrThrow();
  return row.first === null || row.last === null ? undefined : { first: row.first, last: row.last };
}

export interface ProductRevenue {
  productId: string;
  revenueCents: bigint;
  orderCount: number;
  saleCount: number;
}

/**
 * UNION ALL parts whose rows, summed per product, are each product's revenue and sale rows over
 * the range: + prefix(end) − prefix(start − 1), where prefix(x) = the all-time running sums through
 * the month before x's month (revenue_product_cum) + the sums from x's month's 1st through x
 * (whole weeks of revenue_weekly_product, then days). At most a dozen rows per product whatever
 * the range; `ids`: only those products.
 */
function productPrefixParts(database: Database, range: DateRange, ids: readonly string[]): RawBuilder<unknown>[] {
  const parts: RawBuilder<unknown>[] = [];
  const only = (column: string) => (ids.length === 0 ? sql`1 = 1` : products(column, ids));
  const signed = (column: RawBuilder<unknown>, sign: 1 | -1) => (sign === 1 ? column : sql`-${column}`);
  /** Per product, ± the row of `table` with the latest `key` in [from, to]. */
  const latest = (table: 'revenue_product_cum', from: string | undefined, to: string | undefined, sign: 1 | -1) => {
    const key = 'month';
    // Each product's latest row, by a loose index scan of the primary key (named where needed).
    const scan = database.dialect.sql.indexed(table, 'p', 'PRIMARY');
    parts.push(sql`SELECT t.product_id AS product_id, ${signed(sql.ref('t.revenue'), sign)} AS revenue,
        ${signed(sql.ref('t.sale_count'), sign)} AS sale_count
      FROM (SELECT product_id, MAX(${sql.ref(key)}) AS k FROM ${scan}
        WHERE ${inRange(key, { start: from, end: to })} AND ${only('product_id')} GROUP BY product_id) last
      JOIN ${sql.table(table)} t ON t.product_id = last.product_id AND ${sql.ref(`t.${key}`)} = last.k`);
  };
  /** Per product, ± its sums of the days `days` (whole weeks, then days). */
  const days = (span: { start: string; end: string }, sign: 1 | -1) => {
    for (const piece of cutRange(span, 'week')) {
      const { product: table, key } = GRAINS[piece.grain];
      parts.push(sql`SELECT product_id, ${signed(sql`SUM(revenue)`, sign)} AS revenue, ${signed(sql`SUM(sale_count)`, sign)} AS sale_count
        FROM ${sql.table(table)} WHERE ${inRange(key, piece)} AND ${only('product_id')} GROUP BY product_id`);
    }
  };
  /**
   * Per product, ± its sums from the 1st of `month` through `through`: the days up to it, or the
   * whole month less the days after it, whichever reads fewer rows.
   */
  const monthToDate = (month: string, through: string, sign: 1 | -1) => {
    const last = lastDayOfMonth(month);
    if (through === last || daysInclusive(month, through) > daysInclusive(through, last)) {
      parts.push(sql`SELECT product_id, ${signed(sql.ref('revenue'), sign)} AS revenue, ${signed(sql.ref('sale_count'), sign)} AS sale_count
        FROM revenue_monthly_product WHERE month = ${month} AND ${only('product_id')}`);
      if (through !== last) days({ start: addDays(through, 1), end: last }, sign === 1 ? -1 : 1);
    } else {
      days({ start: month, end: through }, sign);
    }
  };

  const { start, end } = range;
  const startMonth = start && `${start.slice(0, 8)}01`;
  const endMonth = end && `${end.slice(0, 8)}01`;
  // + prefix(end); both prefixes' whole months cancel out when start and end share a month.
  if (!end) latest('revenue_product_cum', undefined, undefined, 1);
  else if (startMonth !== endMonth) latest('revenue_product_cum', undefined, addMonths(endMonth!, -1), 1);
  if (end) monthToDate(endMonth!, end, 1);
  // − prefix(start − 1)
  if (start && startMonth !== endMonth) latest('revenue_product_cum', undefined, addMonths(startMonth!, -1), -1);
  if (start && start !== startMonth) monthToDate(startMonth!, addDays(start, -1), -1);
  return parts;
}

/**
 * The top products of a range by revenue (ties: product id) or by orders (ties: revenue, then
 * product id), and the range's total revenue. A product's figures over [start, end] are
 * prefix(end) − prefix(start − 1), where prefix(x) = its all-time running sums through the month
 * before x's month (revenue_product_cum) + its sums from x's month's 1st through x (weeks, then
 * days): a few rows per product, whatever the length of the range or the number of sales.
 */
export async function revenueByProduct(
  database: Database,
  range: DateRange,
  order: 'revenue' | 'orders',
  limit: number,
): Promise<{ totalCents: bigint; products: ProductRevenue[] }> {
  const db = database.db;
  const parts = productPrefixParts(database, range, []);
  const orderBy =
    order === 'revenue'
      ? sql`revenue DESC, product_id ASC`
      : sql`sales DESC, revenue DESC, product_id ASC`;
  const [top, total] = await Promise.all([
    sql<{ product_id: string; revenue: Num; sales: Num }>`
      SELECT product_id, SUM(revenue) AS revenue, SUM(sale_count) AS sales
      FROM (${sql.join(parts, sql` UNION ALL `)}) segments
      GROUP BY product_id HAVING SUM(sale_count) > 0 ORDER BY ${orderBy} LIMIT ${limit}`.execute(db),
    sql<{ revenue: Num }>`SELECT SUM(revenue) AS revenue FROM revenue_daily WHERE ${inRange('date', range)}`.execute(db),
  ]);
  return {
    totalCents: database.dialect.centsFromDb(total.rows[0]?.revenue ?? null),
    products: top.rows.map((r) => ({
      productId: r.product_id,
      revenueCents: database.dialect.centsFromDb(r.revenue),
      // One line per (order, product): a product's orders are its sale rows.
      orderCount: Number(r.sales),
      saleCount: Number(r.sales),
    })),
  };
}
