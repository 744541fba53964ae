import { sql } from 'kysely';
import { bumpDataVersion } from '../db/data-version.js';
import type { Database, DB } from '../db/database.js';
import { basketName, splitBasketKey } from './rollup-delta.js';
import { changeSales } from './sales-change.js';

/**
 * The rollup tables (src/db/tables.ts, RollupTables) recomputed from `sales`: the reference that
 * the upkeep of every change (rollup-upkeep.ts) is tested against, and a repair.
 */


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
 * hand), holding the write lock as imports and undo do, on a connection of `via`. Set-based SQL throughout, written apart
 * from the deltas on purpose: tests hold the tables the deltas keep against this.
 */
export async function rebuildRollups(database: Database, via: DB = database.writer): Promise<void> {
  await via.connection().execute((conn) =>
    changeSales(database, conn, async (trx) => {
      // A basket's products are its name: its rows stay, as the deltas keep them.
      for (const table of ROLLUP_TABLES) if (table !== 'revenue_basket_products') await trx.deleteFrom(table).execute();
      await database.dialect.withLargeAggregates(trx, () => rebuildPasses(trx, database.dialect));
      await bumpDataVersion(trx, database.dialect);
    }),
  );
}

/**
 * Every rollup from passes over `sales` rather than index look-ups: on MySQL a table scan sorted
 * once (SQL_BIG_RESULT) beats millions of random reads through an index.
 */
async function rebuildPasses(db: DB, dialect: Database['dialect']) {
  const scan = dialect.sql.scanned('sales', 'sales_date');
  const big = dialect.sql.bigResult;
  await sql`INSERT INTO revenue_daily (date, revenue, sale_count, order_count)
    SELECT date, SUM(amount_sgd), COUNT(*), COUNT(DISTINCT order_id) FROM ${scan} GROUP BY date`.execute(db);
  await sql`INSERT INTO revenue_daily_product (product_id, date, revenue, sale_count)
    SELECT ${big}product_id, date, SUM(amount_sgd), COUNT(*) FROM ${scan} GROUP BY product_id, date`.execute(db);

  // The few multi-date orders first, then their lines through the identity index. Left to
  // itself, MySQL may read every row of `sales` and probe the derived table for each.
  const straight = dialect.sql.selectInOrder;
  await sql`INSERT INTO revenue_multiday_lines (order_id, product_id, date)
    SELECT ${straight}s.order_id, s.product_id, s.date
    FROM (SELECT ${big}order_id FROM ${scan} GROUP BY order_id HAVING MIN(date) <> MAX(date)) m
    JOIN sales s ON s.order_id = m.order_id`.execute(db);
  await sql`INSERT INTO revenue_multiday_days (order_id, date, prev_date)
    SELECT order_id, date, LAG(date) OVER (PARTITION BY order_id ORDER BY date)
    FROM (SELECT DISTINCT order_id, date FROM revenue_multiday_lines) pairs`.execute(db);

  // Baskets: every (order, date) with lines of two or more products, named by the SHA-256 of its
  // product ids, sorted, each prefixed by its length in characters.
  const products = dialect.sql.basketKey('product_id');
  const hash = dialect.sql.sha256;
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
    const values = rows.slice(i, i + 1000).map((r) => sql`(${r.product_id}, ${r.basket})`);
    await dialect.sql.insertIgnoring(sql`revenue_basket_products (product_id, basket)`, sql`VALUES ${sql.join(values)}`).execute(db);
  }

  const month = dialect.sql.monthOf(sql.ref('date'));
  const week = dialect.sql.weekOf(sql.ref('date'));
  await sql`INSERT INTO revenue_monthly_product (month, product_id, revenue, sale_count)
    SELECT ${month}, product_id, SUM(revenue), SUM(sale_count) FROM revenue_daily_product GROUP BY ${month}, product_id`.execute(db);
  await sql`INSERT INTO revenue_weekly_product (product_id, week, revenue, sale_count)
    SELECT product_id, ${week}, SUM(revenue), SUM(sale_count) FROM revenue_daily_product GROUP BY product_id, ${week}`.execute(db);
  await refreshCumulative(db, undefined);
}

/** Recomputes the all-time running sums per product from `from` (a month) on; all when undefined. */
export async function refreshCumulative(db: DB, from: string | undefined): Promise<void> {
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
