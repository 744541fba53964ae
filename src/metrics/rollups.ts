import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { DB } from '../db/connection.js';
import type { Tables } from '../db/tables.js';
import { lastDayOfMonth } from './calendar.js';

/**
 * The pre-aggregated revenue tables (created by migration 2026-11-25T0200-revenue-rollups) and
 * their maintenance. Money columns hold what `sales.amount_sgd` holds on each database
 * (DECIMAL on MySQL, integer cents on SQLite); read them only through `centsFromDb`.
 */
export type RollupTables = {
  revenue_daily: { date: string; revenue: string | number; sale_count: number; order_count: number };
  revenue_daily_product: { product_id: string; date: string; revenue: string | number; sale_count: number };
  revenue_monthly_product: { month: string; product_id: string; revenue: string | number; sale_count: number };
  /** Month-to-date running sums of revenue_daily_product (each month starts from zero). */
  revenue_product_mtd: { product_id: string; date: string; revenue: string | number; sale_count: number };
  revenue_multiday_lines: { order_id: string; product_id: string; date: string };
  data_version: { id: number; version: number | string };
};

export type RollupDB = Kysely<Tables & RollupTables>;

/** Dates per statement: far below both databases' placeholder limits. */
const DATES_PER_STATEMENT = 500;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

/**
 * Keeps the pre-aggregated revenue tables in step with `sales`. Called inside the same
 * transaction as every change to `sales` (import, replace, undo), with every date whose rows
 * changed (old dates of replaced or deleted rows included). Recomputes those days from `sales`
 * (set-based, whatever the number of rows), the side table of multi-date orders for every order
 * that has, or had, a line on one of them, the months they fall in, and bumps the data version.
 */
export async function refreshRollups(trx: DB, kind: 'mysql' | 'sqlite', dates: Iterable<string>): Promise<void> {
  const unique = [...new Set(dates)].sort();
  if (unique.length === 0) return;
  for (const d of unique) if (!DATE.test(d)) throw new Error(`refreshRollups: not a YYYY-MM-DD date: ${JSON.stringify(d)}`);
  const db = trx.withTables<RollupTables>();
  for (let i = 0; i < unique.length; i += DATES_PER_STATEMENT) {
    await refreshDays(db, unique.slice(i, i + DATES_PER_STATEMENT));
  }
  const months = [...new Set(unique.map((d) => `${d.slice(0, 8)}01`))];
  for (let i = 0; i < months.length; i += 100) await refreshMonths(db, kind, months.slice(i, i + 100));
  await bumpDataVersion(db, kind);
}

/** Recomputes every rollup from `sales` (repair, or after bulk changes made outside the import). */
export async function rebuildRollups(db: DB, kind: 'mysql' | 'sqlite'): Promise<void> {
  const r = db.withTables<RollupTables>();
  await r.transaction().execute(async (trx) => {
    for (const table of [
      'revenue_daily',
      'revenue_daily_product',
      'revenue_monthly_product',
      'revenue_product_mtd',
      'revenue_multiday_lines',
    ] as const) {
      await trx.deleteFrom(table).execute();
    }
    await sql`INSERT INTO revenue_daily (date, revenue, sale_count, order_count)
      SELECT date, SUM(amount_sgd), COUNT(*), COUNT(DISTINCT order_id) FROM sales GROUP BY date`.execute(trx);
    await sql`INSERT INTO revenue_daily_product (product_id, date, revenue, sale_count)
      SELECT product_id, date, SUM(amount_sgd), COUNT(*) FROM sales GROUP BY product_id, date`.execute(trx);
    const month = monthOf(kind, sql.ref('date'));
    await sql`INSERT INTO revenue_monthly_product (month, product_id, revenue, sale_count)
      SELECT ${month}, product_id, SUM(revenue), SUM(sale_count) FROM revenue_daily_product
      GROUP BY ${month}, product_id`.execute(trx);
    await sql`INSERT INTO revenue_product_mtd (product_id, date, revenue, sale_count)
      SELECT product_id, date,
        SUM(revenue) OVER (PARTITION BY product_id, ${month} ORDER BY date),
        SUM(sale_count) OVER (PARTITION BY product_id, ${month} ORDER BY date)
      FROM revenue_daily_product`.execute(trx);
    await sql`INSERT INTO revenue_multiday_lines (order_id, product_id, date)
      SELECT s.order_id, s.product_id, s.date FROM sales s
      JOIN (SELECT order_id FROM sales GROUP BY order_id HAVING MIN(date) <> MAX(date)) m ON m.order_id = s.order_id`.execute(trx);
    await bumpDataVersion(trx, kind);
  });
}

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

  // Multi-date orders touched by the change: those that had a line on one of the dates before
  // (their side-table rows carry the old dates) and those that have one now and span dates.
  // The derived tables let MySQL read the table a DELETE targets.
  const spanning = sql`SELECT DISTINCT u.order_id FROM sales u
    JOIN sales t ON t.order_id = u.order_id AND t.date <> u.date
    WHERE u.date IN (${inDates})`;
  await sql`DELETE FROM revenue_multiday_lines WHERE order_id IN (
      SELECT order_id FROM (SELECT order_id FROM revenue_multiday_lines WHERE date IN (${inDates})) old_orders
    ) OR order_id IN (SELECT order_id FROM (${spanning}) new_orders)`.execute(db);
  await sql`INSERT INTO revenue_multiday_lines (order_id, product_id, date)
    SELECT s.order_id, s.product_id, s.date FROM sales s
    WHERE s.order_id IN (SELECT order_id FROM (${spanning}) new_orders)`.execute(db);
}

async function refreshMonths(db: RollupDB, kind: 'mysql' | 'sqlite', months: string[]): Promise<void> {
  await sql`DELETE FROM revenue_monthly_product WHERE month IN (${sql.join(months)})`.execute(db);
  const ranges = sql.join(
    months.map((m) => sql`(date >= ${m} AND date <= ${lastDayOfMonth(m)})`),
    sql` OR `,
  );
  const month = monthOf(kind, sql.ref('date'));
  await sql`INSERT INTO revenue_monthly_product (month, product_id, revenue, sale_count)
    SELECT ${month}, product_id, SUM(revenue), SUM(sale_count) FROM revenue_daily_product
    WHERE ${ranges} GROUP BY ${month}, product_id`.execute(db);
  for (const m of months) {
    const last = lastDayOfMonth(m);
    await sql`DELETE FROM revenue_product_mtd WHERE date >= ${m} AND date <= ${last}`.execute(db);
    await sql`INSERT INTO revenue_product_mtd (product_id, date, revenue, sale_count)
      SELECT product_id, date,
        SUM(revenue) OVER (PARTITION BY product_id ORDER BY date),
        SUM(sale_count) OVER (PARTITION BY product_id ORDER BY date)
      FROM revenue_daily_product WHERE date >= ${m} AND date <= ${last}`.execute(db);
  }
}

/** The first day of the date's month, as the database's date type. */
function monthOf(kind: 'mysql' | 'sqlite', date: RawBuilder<unknown>) {
  return kind === 'mysql' ? sql`DATE_FORMAT(${date}, '%Y-%m-01')` : sql`(substr(${date}, 1, 8) || '01')`;
}

/**
 * Changes the data version inside the caller's transaction. A missing row (a database emptied
 * by hand) starts again from a random number, so versions from before are not repeated.
 */
export async function bumpDataVersion(db: Kysely<any>, kind: 'mysql' | 'sqlite'): Promise<void> {
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
