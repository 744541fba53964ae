import { sql, type Kysely, type RawBuilder } from 'kysely';
import { SORTING_CACHE_KIB, type DB } from '../db/connection.js';
import type { Tables } from '../db/tables.js';
import { withWriteLock } from '../db/write-lock.js';
import { lastDayOfMonth, periodEnd, periodStart } from './calendar.js';

/**
 * The pre-aggregated revenue tables (created by migrations 2026-11-25T0200-revenue-rollups,
 * 2026-12-01T0000-basket-rollups and 2026-12-01T0100-period-rollups) and their maintenance.
 * Money columns hold what `sales.amount_sgd` holds on each database
 * (DECIMAL on MySQL, integer cents on SQLite); read them only through `centsFromDb`.
 */
export type RollupTables = {
  revenue_daily: { date: string; revenue: string | number; sale_count: number; order_count: number };
  revenue_daily_product: { product_id: string; date: string; revenue: string | number; sale_count: number };
  revenue_monthly_product: { month: string; product_id: string; revenue: string | number; sale_count: number };
  /** Month-to-date running sums of revenue_daily_product (each month starts from zero). */
  revenue_product_mtd: { product_id: string; date: string; revenue: string | number; sale_count: number };
  /** Running sums of revenue_monthly_product over all months so far, per product. */
  revenue_product_cum: { product_id: string; month: string; revenue: string | number; sale_count: number | string };
  revenue_multiday_lines: { order_id: string; product_id: string; date: string };
  /** The distinct (order, date) pairs of revenue_multiday_lines, with the order's date before. */
  revenue_multiday_days: { order_id: string; date: string; prev_date: string | null };
  /**
   * Per basket (an order's set of products on one date, when it holds two or more) and date: how
   * many orders hold exactly that set that day, and one of them.
   */
  revenue_daily_basket: { basket: string; date: string; order_count: number; sample_order_id: string };
  /** The products of each basket (never removed: a basket's products are its name). */
  revenue_basket_products: { product_id: string; basket: string };
  /** revenue_daily_product summed by ISO week (labelled by its Monday). */
  revenue_weekly_product: { product_id: string; week: string; revenue: string | number; sale_count: number };
  /** revenue_daily_basket summed by week and by month. */
  revenue_weekly_basket: { basket: string; week: string; order_count: number };
  revenue_monthly_basket: { basket: string; month: string; order_count: number };
  data_version: { id: number; version: number | string };
};

export type RollupDB = Kysely<Tables & RollupTables>;

/**
 * When the changed days are more than this share of the dates with sales, the rollups are
 * recomputed for the whole span of those days in passes over `sales`; below it, day by day and
 * order by order through the indexes. Both give the same tables (tests set 0 or Infinity to run
 * each way).
 */
export const rollupTuning = { wholeTableShare: 0.25 };

/** Dates per statement: far below both databases' placeholder limits. */
const DATES_PER_STATEMENT = 500;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const ROLLUP_TABLES = [
  'revenue_daily',
  'revenue_daily_product',
  'revenue_monthly_product',
  'revenue_product_mtd',
  'revenue_product_cum',
  'revenue_multiday_lines',
  'revenue_multiday_days',
  'revenue_daily_basket',
  'revenue_basket_products',
  'revenue_weekly_product',
  'revenue_weekly_basket',
  'revenue_monthly_basket',
] as const;

/**
 * Keeps the pre-aggregated revenue tables in step with `sales`. Called inside the same
 * transaction as every change to `sales` (import, replace, undo), with every date whose rows
 * changed (old dates of replaced or deleted rows included). Recomputes those days from `sales`
 * (set-based), the side table of multi-date orders for every order that has, or had, a line on
 * one of them, those days' baskets, the weeks and months they fall in and the running sums after
 * them, and bumps the data version.
 */
export async function refreshRollups(trx: DB, kind: 'mysql' | 'sqlite', dates: Iterable<string>): Promise<void> {
  const unique = [...new Set(dates)].sort();
  if (unique.length === 0) return;
  for (const d of unique) if (!DATE.test(d)) throw new Error(`refreshRollups: not a YYYY-MM-DD date: ${JSON.stringify(d)}`);
  const db = trx.withTables<RollupTables>();
  const chunks: string[][] = [];
  for (let i = 0; i < unique.length; i += DATES_PER_STATEMENT) chunks.push(unique.slice(i, i + DATES_PER_STATEMENT));

  if (await isBulk(db, unique)) {
    // Recomputing days that did not change is harmless: every rollup row is a function of sales.
    await refreshSpan(db, kind, unique[0]!, unique.at(-1)!);
  } else {
    for (const chunk of chunks) await refreshDays(db, chunk);
    for (const chunk of chunks) await refreshMultiDateOrders(db, kind, chunk);
    for (const chunk of chunks) {
      await refreshBaskets(db, kind, (column) => sql`${sql.ref(column)} IN (${sql.join(chunk)})`, sql`sales`);
    }
    const months = [...new Set(unique.map((d) => `${d.slice(0, 8)}01`))];
    for (const month of months) await refreshMonths(db, kind, month, lastDayOfMonth(month));
    for (const week of new Set(unique.map((d) => periodStart(d, 'week')))) {
      await refreshWeeks(db, kind, week, periodEnd(week, 'week'));
    }
    await refreshCumulative(db, months[0]);
  }
  await bumpDataVersion(db, kind);
}

/**
 * Recomputes every rollup from `sales` in one transaction (repair, or after changes made by
 * hand), holding the write lock as imports and undo do.
 */
export async function rebuildRollups(db: DB, kind: 'mysql' | 'sqlite'): Promise<void> {
  await db.connection().execute((conn) =>
    withWriteLock(kind, conn, () =>
      conn.transaction().execute(async (trx) => {
        const r = trx.withTables<RollupTables>();
        // A basket's products are its name: its rows stay, as the refresh keeps them.
        for (const table of ROLLUP_TABLES) if (table !== 'revenue_basket_products') await r.deleteFrom(table).execute();
        await refreshSpan(r, kind, undefined, undefined);
        await bumpDataVersion(r, kind);
      }),
    ),
  );
}

/**
 * Whether the change is a large part of the data: more than `wholeTableShare` of the dates known
 * before it (any change to an empty table is). Dates stand in for rows, which would cost a count
 * over `sales` to know; the choice only decides how the same tables are recomputed.
 */
async function isBulk(db: RollupDB, dates: string[]): Promise<boolean> {
  const share = rollupTuning.wholeTableShare;
  if (share <= 0) return true;
  if (!Number.isFinite(share)) return false;
  const { rows } = await sql<{ n: string | number }>`SELECT COUNT(*) AS n FROM revenue_daily`.execute(db);
  return dates.length > share * Math.max(dates.length, Number(rows[0]?.n ?? 0));
}

const range = (column: string, from: string | undefined, to: string | undefined) =>
  sql.join(
    [sql`1 = 1`, ...(from ? [sql`${sql.ref(column)} >= ${from}`] : []), ...(to ? [sql`${sql.ref(column)} <= ${to}`] : [])],
    sql` AND `,
  );

/**
 * Every rollup for the days from `from` to `to` (unbounded when undefined), in passes over
 * `sales` rather than index look-ups: on MySQL a table scan sorted once (SQL_BIG_RESULT) beats
 * millions of random reads through the date index once the span holds much of the table.
 */
async function refreshSpan(db: RollupDB, kind: 'mysql' | 'sqlite', from: string | undefined, to: string | undefined) {
  if (kind === 'mysql') return refreshSpanPasses(db, kind, from, to);
  // The basket pass nests several large sorts (see SORTING_CACHE_KIB): 225 MB at the import's
  // 32 MiB cache, 177 MB at 16 MiB, for that pass alone at 5M rows, and no slower.
  const { rows } = await sql<{ cache_size: number }>`PRAGMA cache_size`.execute(db);
  await sql`PRAGMA cache_size = ${sql.raw(String(SORTING_CACHE_KIB))}`.execute(db);
  try {
    await refreshSpanPasses(db, kind, from, to);
  } finally {
    await sql`PRAGMA cache_size = ${sql.raw(String(Number(rows[0]!.cache_size)))}`.execute(db);
  }
}

async function refreshSpanPasses(db: RollupDB, kind: 'mysql' | 'sqlite', from: string | undefined, to: string | undefined) {
  const mysql = kind === 'mysql';
  const scan = mysql ? sql`sales IGNORE INDEX (sales_date)` : sql`sales NOT INDEXED`;
  const big = mysql ? sql`SQL_BIG_RESULT ` : sql``;
  const days = range('date', from, to);
  await sql`DELETE FROM revenue_daily WHERE ${days}`.execute(db);
  await sql`INSERT INTO revenue_daily (date, revenue, sale_count, order_count)
    SELECT date, SUM(amount_sgd), COUNT(*), COUNT(DISTINCT order_id) FROM ${scan}
    WHERE ${days} GROUP BY date`.execute(db);
  await sql`DELETE FROM revenue_daily_product WHERE ${days}`.execute(db);
  await sql`INSERT INTO revenue_daily_product (product_id, date, revenue, sale_count)
    SELECT ${big}product_id, date, SUM(amount_sgd), COUNT(*) FROM ${scan}
    WHERE ${days} GROUP BY product_id, date`.execute(db);

  // Multi-date orders: all of them afresh (an order with a line in the span may span beyond it).
  await sql`DELETE FROM revenue_multiday_days`.execute(db);
  await sql`DELETE FROM revenue_multiday_lines`.execute(db);
  await sql`INSERT INTO revenue_multiday_lines (order_id, product_id, date) ${multiDateLines(kind, undefined)}`.execute(db);
  await sql`INSERT INTO revenue_multiday_days (order_id, date, prev_date) ${multiDateDays(sql`1 = 1`)}`.execute(db);
  await refreshBaskets(db, kind, (column) => range(column, from, to), scan);

  // Whole months and weeks around the span, from the daily rows (those outside it did not change).
  const firstMonth = from && `${from.slice(0, 8)}01`;
  await refreshMonths(db, kind, firstMonth, to && lastDayOfMonth(to));
  await refreshCumulative(db, firstMonth);
  await refreshWeeks(db, kind, from && periodStart(from, 'week'), to && periodEnd(periodStart(to, 'week'), 'week'));
}

/** The given days' rows of revenue_daily and revenue_daily_product, through the date index. */
async function refreshDays(db: RollupDB, dates: string[]): Promise<void> {
  const inDates = sql.join(dates);
  await sql`DELETE FROM revenue_daily WHERE date IN (${inDates})`.execute(db);
  await sql`INSERT INTO revenue_daily (date, revenue, sale_count, order_count)
    SELECT date, SUM(amount_sgd), COUNT(*), COUNT(DISTINCT order_id) FROM sales
    WHERE date IN (${inDates}) GROUP BY date`.execute(db);
  await sql`DELETE FROM revenue_daily_product WHERE date IN (${inDates})`.execute(db);
  await sql`INSERT INTO revenue_daily_product (product_id, date, revenue, sale_count)
    SELECT product_id, date, SUM(amount_sgd), COUNT(*) FROM sales
    WHERE date IN (${inDates}) GROUP BY product_id, date`.execute(db);
}

/**
 * The basket rows of the days `days` selects: every (order, date) with lines of two or more
 * products, grouped by its basket, named by the SHA-256 of its product ids, sorted, each prefixed
 * by its length in characters, so that no two sets of ids give the same string. Then the
 * products of each basket seen for the first time, from the lines of one of its orders. Runs
 * after the side table of multi-date orders is up to date.
 */
async function refreshBaskets(
  db: RollupDB,
  kind: 'mysql' | 'sqlite',
  days: (column: string) => RawBuilder<unknown>,
  /** `sales`, or for a span a pass over the table (SQLite through the date index: 3× slower at 5M rows). */
  sales: RawBuilder<unknown>,
) {
  await sql`DELETE FROM revenue_daily_basket WHERE ${days('date')}`.execute(db);
  if (kind === 'mysql') {
    // GROUP_CONCAT cuts its result at this length (1024 bytes by default on MySQL): a cut string
    // would give two baskets one name.
    await sql`SET SESSION group_concat_max_len = 4294967295`.execute(db);
    const basket = sql`SHA2(GROUP_CONCAT(CONCAT(CHAR_LENGTH(product_id), ':', product_id) ORDER BY product_id SEPARATOR ''), 256)`;
    await sql`INSERT INTO revenue_daily_basket (basket, date, order_count, sample_order_id)
      SELECT basket, date, COUNT(*), MIN(order_id) FROM (
        SELECT SQL_BIG_RESULT order_id, date, ${basket} AS basket FROM ${sales}
        WHERE ${days('date')} GROUP BY order_id, date HAVING COUNT(*) > 1
      ) o GROUP BY basket, date`.execute(db);
  } else {
    // Grouped by order alone (one sort of the orders, no sort by date within them); only the
    // orders on several dates (in the side table) are grouped by order and date. Hashed once per
    // basket and date rather than per order.
    const products = sql`group_concat(length(product_id) || ':' || product_id, '' ORDER BY product_id)`;
    const multiDate = sql`SELECT order_id FROM revenue_multiday_lines`;
    await sql`INSERT INTO revenue_daily_basket (basket, date, order_count, sample_order_id)
      SELECT zinc_sha256(products), date, COUNT(*), MIN(order_id) FROM (
        SELECT order_id, MIN(date) AS date, ${products} AS products FROM ${sales} WHERE ${days('date')}
        GROUP BY order_id HAVING COUNT(*) > 1 AND order_id NOT IN (${multiDate})
        UNION ALL
        SELECT order_id, date, ${products} FROM sales WHERE ${days('date')} AND order_id IN (${multiDate})
        GROUP BY order_id, date HAVING COUNT(*) > 1
      ) o GROUP BY products, date`.execute(db);
  }
  // A basket new to the table has all its rows among those just written: one of them is read.
  await sql`INSERT INTO revenue_basket_products (product_id, basket)
    SELECT s.product_id, d.basket FROM revenue_daily_basket d
    JOIN sales s ON s.order_id = d.sample_order_id AND s.date = d.date
    WHERE ${days('d.date')}
      AND NOT EXISTS (SELECT 1 FROM revenue_basket_products k WHERE k.basket = d.basket)
      AND d.date = (SELECT MIN(f.date) FROM revenue_daily_basket f WHERE f.basket = d.basket)`.execute(db);
}

/**
 * Every line of the orders whose lines carry several dates: among the orders `orders` selects
 * (`t` is sales), or all of them (then on MySQL one sorted pass over a covering index).
 */
function multiDateLines(kind: 'mysql' | 'sqlite', orders: RawBuilder<unknown> | undefined) {
  const mysql = kind === 'mysql';
  const source =
    orders === undefined && mysql
      ? sql`SELECT SQL_BIG_RESULT t.order_id FROM sales t FORCE INDEX (sales_product_date)`
      : sql`SELECT t.order_id FROM sales t WHERE ${orders ?? sql`1 = 1`}`;
  // The few multi-date orders first, then their lines through the identity index. Left to itself,
  // MySQL may read every row of `sales` and probe the derived table for each (measured inside an
  // import's transaction: 5× slower at 1M rows, over 50× at 5M).
  const straight = mysql ? sql`STRAIGHT_JOIN ` : sql``;
  return sql`SELECT ${straight}s.order_id, s.product_id, s.date
    FROM (${source} GROUP BY t.order_id HAVING MIN(t.date) <> MAX(t.date)) m
    JOIN sales s ON s.order_id = m.order_id`;
}

/**
 * The side tables for the orders that had a line on one of the dates (known from their rows
 * there, which carry the old dates) or have one now: their rows go, and those spanning several
 * dates now come back whole. The derived tables let MySQL read the table a DELETE targets.
 */
async function refreshMultiDateOrders(db: RollupDB, kind: 'mysql' | 'sqlite', dates: string[]): Promise<void> {
  const inDates = sql.join(dates);
  const targets = sql`SELECT order_id FROM (
      SELECT order_id FROM revenue_multiday_days WHERE date IN (${inDates})
      UNION SELECT u.order_id FROM sales u WHERE u.date IN (${inDates})
    ) targets`;
  await sql`DELETE FROM revenue_multiday_lines WHERE order_id IN (${targets})`.execute(db);
  await sql`INSERT INTO revenue_multiday_lines (order_id, product_id, date)
    ${multiDateLines(kind, sql`t.order_id IN (${targets})`)}`.execute(db);
  await sql`DELETE FROM revenue_multiday_days WHERE order_id IN (${targets})`.execute(db);
  // The orders of the lines table that have no rows here any more are exactly those to redo.
  await sql`INSERT INTO revenue_multiday_days (order_id, date, prev_date)
    ${multiDateDays(sql`NOT EXISTS (SELECT 1 FROM revenue_multiday_days d WHERE d.order_id = l.order_id)`)}`.execute(db);
}

/** The (order, date, previous date) rows of the multi-date orders `orders` selects from the lines. */
function multiDateDays(orders: RawBuilder<unknown>) {
  return sql`SELECT order_id, date, LAG(date) OVER (PARTITION BY order_id ORDER BY date)
    FROM (SELECT DISTINCT l.order_id AS order_id, l.date AS date FROM revenue_multiday_lines l WHERE ${orders}) pairs`;
}

/**
 * The rows of revenue_monthly_product, revenue_product_mtd and revenue_monthly_basket for the
 * months from the one starting on `from` to the one ending on `to` (all when undefined), from the
 * daily rows.
 */
async function refreshMonths(db: RollupDB, kind: 'mysql' | 'sqlite', from: string | undefined, to: string | undefined) {
  const days = range('date', from, to);
  const month = monthOf(kind, sql.ref('date'));
  await sql`DELETE FROM revenue_monthly_product WHERE ${range('month', from, to)}`.execute(db);
  await sql`INSERT INTO revenue_monthly_product (month, product_id, revenue, sale_count)
    SELECT ${month}, product_id, SUM(revenue), SUM(sale_count) FROM revenue_daily_product
    WHERE ${days} GROUP BY ${month}, product_id`.execute(db);
  await sql`DELETE FROM revenue_product_mtd WHERE ${days}`.execute(db);
  await sql`INSERT INTO revenue_product_mtd (product_id, date, revenue, sale_count)
    SELECT product_id, date,
      SUM(revenue) OVER (PARTITION BY product_id, ${month} ORDER BY date),
      SUM(sale_count) OVER (PARTITION BY product_id, ${month} ORDER BY date)
    FROM revenue_daily_product WHERE ${days}`.execute(db);
  await sql`DELETE FROM revenue_monthly_basket WHERE ${range('month', from, to)}`.execute(db);
  await sql`INSERT INTO revenue_monthly_basket (basket, month, order_count)
    SELECT basket, ${month}, SUM(order_count) FROM revenue_daily_basket
    WHERE ${days} GROUP BY basket, ${month}`.execute(db);
}

/** The weekly rows of the weeks from the one starting on `from` to the one ending on `to` (all when undefined). */
async function refreshWeeks(db: RollupDB, kind: 'mysql' | 'sqlite', from: string | undefined, to: string | undefined) {
  const week = weekOf(kind, sql.ref('date'));
  const days = range('date', from, to);
  await sql`DELETE FROM revenue_weekly_product WHERE ${range('week', from, to)}`.execute(db);
  await sql`INSERT INTO revenue_weekly_product (product_id, week, revenue, sale_count)
    SELECT product_id, ${week}, SUM(revenue), SUM(sale_count) FROM revenue_daily_product
    WHERE ${days} GROUP BY product_id, ${week}`.execute(db);
  await sql`DELETE FROM revenue_weekly_basket WHERE ${range('week', from, to)}`.execute(db);
  await sql`INSERT INTO revenue_weekly_basket (basket, week, order_count)
    SELECT basket, ${week}, SUM(order_count) FROM revenue_daily_basket
    WHERE ${days} GROUP BY basket, ${week}`.execute(db);
}

/** Recomputes the all-time running sums per product from `from` (a month) on; all when undefined. */
async function refreshCumulative(db: RollupDB, from: string | undefined): Promise<void> {
  const since = from ? sql`month >= ${from}` : sql`1 = 1`;
  await sql`DELETE FROM revenue_product_cum WHERE ${since}`.execute(db);
  await sql`INSERT INTO revenue_product_cum (product_id, month, revenue, sale_count)
    SELECT product_id, month, revenue, sale_count FROM (
      SELECT product_id, month,
        SUM(revenue) OVER (PARTITION BY product_id ORDER BY month) AS revenue,
        SUM(sale_count) OVER (PARTITION BY product_id ORDER BY month) AS sale_count
      FROM revenue_monthly_product
    ) running WHERE ${since}`.execute(db);
}

/** The Monday of the date's ISO week, as the database's date type. */
function weekOf(kind: 'mysql' | 'sqlite', date: RawBuilder<unknown>) {
  return kind === 'mysql' ? sql`DATE_SUB(${date}, INTERVAL WEEKDAY(${date}) DAY)` : sql`date(${date}, '-6 days', 'weekday 1')`;
}

/** The first day of the date's month, as the database's date type. */
function monthOf(kind: 'mysql' | 'sqlite', date: RawBuilder<unknown>) {
  return kind === 'mysql' ? sql`DATE_FORMAT(${date}, '%Y-%m-01')` : sql`(substr(${date}, 1, 8) || '01')`;
}

/**
 * Changes the data version inside the caller's transaction. A missing row (a database emptied
 * by hand) starts again from a random number, so versions from before are not repeated.
 */
export async function bumpDataVersion(db: RollupDB, kind: 'mysql' | 'sqlite'): Promise<void> {
  const start = Math.floor(Math.random() * 2 ** 40);
  if (kind === 'mysql') {
    await sql`INSERT INTO data_version (id, version) VALUES (1, ${start})
      ON DUPLICATE KEY UPDATE version = version + 1`.execute(db);
  } else {
    await sql`INSERT INTO data_version (id, version) VALUES (1, ${start})
      ON CONFLICT (id) DO UPDATE SET version = version + 1`.execute(db);
  }
}

/** The current data version as a string ("0" when the row is missing). */
export async function readDataVersion(db: DB): Promise<string> {
  const row = await db
    .withTables<RollupTables>()
    .selectFrom('data_version')
    .select('version')
    .where('id', '=', 1)
    .executeTakeFirst();
  return row ? String(row.version) : '0';
}
