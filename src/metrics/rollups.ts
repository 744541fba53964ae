import { sql, type Kysely, type RawBuilder } from 'kysely';
import { SORTING_CACHE_KIB, type DB } from '../db/connection.js';
import type { Tables } from '../db/tables.js';
import { withWriteLock } from '../db/write-lock.js';
import { basketName, splitBasketKey } from './rollup-delta.js';

/**
 * The pre-aggregated revenue tables (created by migrations 2026-11-25T0200-revenue-rollups,
 * 2026-12-01T0000-basket-rollups, 2026-12-01T0100-period-rollups, reshaped by
 * 2026-12-06T0000-stream-rollups) and their rebuild from `sales`. Imports and undo keep them by
 * deltas (rollup-delta.ts, rollup-merge.ts, rollup-upkeep.ts); the rebuild is the reference
 * those deltas are tested against.
 * Money columns hold what `sales.amount_sgd` holds on each database
 * (DECIMAL on MySQL, integer cents on SQLite); read them only through `centsFromDb`.
 */
export type RollupTables = {
  revenue_daily: { date: string; revenue: string | number; sale_count: number; order_count: number };
  revenue_daily_product: { product_id: string; date: string; revenue: string | number; sale_count: number };
  revenue_monthly_product: { month: string; product_id: string; revenue: string | number; sale_count: number };
  /** Running sums of revenue_monthly_product over all months so far, per product. */
  revenue_product_cum: { product_id: string; month: string; revenue: string | number; sale_count: number | string };
  revenue_multiday_lines: { order_id: string; product_id: string; date: string };
  /** The distinct (order, date) pairs of revenue_multiday_lines, with the order's date before. */
  revenue_multiday_days: { order_id: string; date: string; prev_date: string | null };
  /**
   * Per basket (an order's set of products on one date, when it holds two or more) and date: how
   * many orders hold exactly that set that day.
   */
  revenue_daily_basket: { basket: string; date: string; order_count: number };
  /** The products of each basket (never removed: a basket's products are its name). */
  revenue_basket_products: { product_id: string; basket: string };
  /** revenue_daily_product summed by ISO week (labelled by its Monday). */
  revenue_weekly_product: { product_id: string; week: string; revenue: string | number; sale_count: number };
  data_version: { id: number; version: number | string };
  /** The orders one change (import or undo, by id) recomputes from their stored lines. */
  rollup_orders: { change_id: number; order_id: string };
};

export type RollupDB = Kysely<Tables & RollupTables>;

const ROLLUP_TABLES = [
  'revenue_daily',
  'revenue_daily_product',
  'revenue_monthly_product',
  'revenue_product_cum',
  'revenue_multiday_lines',
  'revenue_multiday_days',
  'revenue_daily_basket',
  'revenue_basket_products',
  'revenue_weekly_product',
] as const;

/**
 * Recomputes every rollup from `sales` in one transaction (repair, or after changes made by
 * hand), holding the write lock as imports and undo do. Set-based SQL throughout, written apart
 * from the deltas on purpose: tests hold the tables the deltas keep against this.
 */
export async function rebuildRollups(db: DB, kind: 'mysql' | 'sqlite'): Promise<void> {
  await db.connection().execute((conn) =>
    withWriteLock(kind, conn, () =>
      conn.transaction().execute(async (trx) => {
        const r = trx.withTables<RollupTables>();
        // A basket's products are its name: its rows stay, as the deltas keep them.
        for (const table of ROLLUP_TABLES) if (table !== 'revenue_basket_products') await r.deleteFrom(table).execute();
        await withSortingCache(r, kind, () => rebuildPasses(r, kind));
        await bumpDataVersion(r, kind);
      }),
    ),
  );
}

/**
 * SQLite sorts in memory up to its page cache before spilling to temporary files: the basket
 * pass nests several large sorts (225 MB at the writer's 32 MiB cache, 177 MB at 16 MiB, for
 * that pass alone at 5M rows, and no slower).
 */
async function withSortingCache(db: RollupDB, kind: 'mysql' | 'sqlite', run: () => Promise<void>): Promise<void> {
  if (kind === 'mysql') return run();
  const { rows } = await sql<{ cache_size: number }>`PRAGMA cache_size`.execute(db);
  await sql`PRAGMA cache_size = ${sql.raw(String(SORTING_CACHE_KIB))}`.execute(db);
  try {
    await run();
  } finally {
    await sql`PRAGMA cache_size = ${sql.raw(String(Number(rows[0]!.cache_size)))}`.execute(db);
  }
}

/**
 * Every rollup from passes over `sales` rather than index look-ups: on MySQL a table scan sorted
 * once (SQL_BIG_RESULT) beats millions of random reads through an index.
 */
async function rebuildPasses(db: RollupDB, kind: 'mysql' | 'sqlite') {
  const mysql = kind === 'mysql';
  const scan = mysql ? sql`sales IGNORE INDEX (sales_date)` : sql`sales NOT INDEXED`;
  const big = mysql ? sql`SQL_BIG_RESULT ` : sql``;
  await sql`INSERT INTO revenue_daily (date, revenue, sale_count, order_count)
    SELECT date, SUM(amount_sgd), COUNT(*), COUNT(DISTINCT order_id) FROM ${scan} GROUP BY date`.execute(db);
  await sql`INSERT INTO revenue_daily_product (product_id, date, revenue, sale_count)
    SELECT ${big}product_id, date, SUM(amount_sgd), COUNT(*) FROM ${scan} GROUP BY product_id, date`.execute(db);

  // The few multi-date orders first, then their lines through the identity index. Left to
  // itself, MySQL may read every row of `sales` and probe the derived table for each.
  const straight = mysql ? sql`STRAIGHT_JOIN ` : sql``;
  await sql`INSERT INTO revenue_multiday_lines (order_id, product_id, date)
    SELECT ${straight}s.order_id, s.product_id, s.date
    FROM (SELECT ${big}order_id FROM ${scan} GROUP BY order_id HAVING MIN(date) <> MAX(date)) m
    JOIN sales s ON s.order_id = m.order_id`.execute(db);
  await sql`INSERT INTO revenue_multiday_days (order_id, date, prev_date)
    SELECT order_id, date, LAG(date) OVER (PARTITION BY order_id ORDER BY date)
    FROM (SELECT DISTINCT order_id, date FROM revenue_multiday_lines) pairs`.execute(db);

  // Baskets: every (order, date) with lines of two or more products, named by the SHA-256 of its
  // product ids, sorted, each prefixed by its length in characters.
  if (mysql) await sql`SET SESSION group_concat_max_len = 4294967295`.execute(db);
  const products = mysql
    ? sql`GROUP_CONCAT(CONCAT(CHAR_LENGTH(product_id), ':', product_id) ORDER BY product_id SEPARATOR '')`
    : sql`group_concat(length(product_id) || ':' || product_id, '' ORDER BY product_id)`;
  const hash = (text: RawBuilder<unknown>) => (mysql ? sql`SHA2(${text}, 256)` : sql`zinc_sha256(${text})`);
  const orderBaskets = sql`SELECT ${big}order_id, date, ${products} AS products FROM ${scan}
    GROUP BY order_id, date HAVING COUNT(*) > 1`;
  await sql`INSERT INTO revenue_daily_basket (basket, date, order_count)
    SELECT ${hash(sql.ref('products'))}, date, COUNT(*) FROM (${orderBaskets}) o GROUP BY products, date`.execute(db);
  // Each basket's products, read off its key (the rows of baskets known before stay as they are).
  const keys = await sql<{ products: string }>`SELECT DISTINCT o.products FROM (${orderBaskets}) o`.execute(db);
  const rows = keys.rows.flatMap(({ products: key }) => {
    const basket = basketName(key);
    return splitBasketKey(key).map((product_id) => ({ product_id, basket }));
  });
  for (let i = 0; i < rows.length; i += 1000) {
    await db.insertInto('revenue_basket_products').orIgnore().values(rows.slice(i, i + 1000)).execute();
  }

  const month = monthOf(kind, sql.ref('date'));
  const week = weekOf(kind, sql.ref('date'));
  await sql`INSERT INTO revenue_monthly_product (month, product_id, revenue, sale_count)
    SELECT ${month}, product_id, SUM(revenue), SUM(sale_count) FROM revenue_daily_product GROUP BY ${month}, product_id`.execute(db);
  await sql`INSERT INTO revenue_weekly_product (product_id, week, revenue, sale_count)
    SELECT product_id, ${week}, SUM(revenue), SUM(sale_count) FROM revenue_daily_product GROUP BY product_id, ${week}`.execute(db);
  await refreshCumulative(db, undefined);
}

/** Recomputes the all-time running sums per product from `from` (a month) on; all when undefined. */
export async function refreshCumulative(db: RollupDB, from: string | undefined): Promise<void> {
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

/** The first day of the week or month of `date`, as the database computes it (its date type). */
export function periodOf(kind: 'mysql' | 'sqlite', grain: 'week' | 'month', date: RawBuilder<unknown>) {
  return grain === 'week' ? weekOf(kind, date) : monthOf(kind, date);
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
