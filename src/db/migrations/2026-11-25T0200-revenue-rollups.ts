import { MysqlAdapter, PostgresAdapter, sql, type Kysely } from 'kysely';

// Frozen in time: this file never imports application code.
//
// Pre-aggregated revenue, kept in step with `sales` inside every transaction that changes it
// (src/metrics/rollups.ts), so that answers cost what the number of days asked about costs:
//
//   revenue_daily            one row per date with sales: revenue, sale rows, distinct orders that day
//   revenue_daily_product    one row per (product, date): revenue, sale rows
//   revenue_monthly_product  one row per (month, product): the same summed over the month
//   revenue_product_mtd      per (product, date) the month-to-date running sums
//   revenue_product_cum      per (product, month) the running sums over all months so far: with
//                            the month-to-date sums, any range costs a few rows per product
//   revenue_multiday_lines   every line of the (few) orders whose lines carry more than one date;
//                            daily distinct order counts add up exactly once these are corrected for
//   revenue_multiday_days    their distinct (order, date) pairs with the order's previous date: in a
//                            range, the pairs whose previous date is in it too are the over-count
//   data_version             one row whose number changes with every change to sales (answer caches)
//
// The index sales_product_date lets a filter on several products count distinct orders exactly
// from the matching lines only. Money is DECIMAL(20,2) on MySQL, NUMERIC(20,2) on PostgreSQL
// and integer cents on SQLite.

export async function up(db: Kysely<any>): Promise<void> {
  const mysql = db.getExecutor().adapter instanceof MysqlAdapter;
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  const idType = mysql ? sql`VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin` : postgres ? sql`VARCHAR(64) COLLATE "C"` : sql`TEXT`;
  const dateType = mysql || postgres ? 'date' : 'text';
  const money = mysql ? sql`DECIMAL(20,2)` : postgres ? sql`NUMERIC(20,2)` : 'integer';
  const tableEnd = mysql ? sql`ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin` : postgres ? sql`` : sql`WITHOUT ROWID`;

  await db.schema
    .createTable('revenue_daily')
    .addColumn('date', dateType, (c) => c.notNull().primaryKey())
    .addColumn('revenue', money, (c) => c.notNull())
    .addColumn('sale_count', 'integer', (c) => c.notNull())
    .addColumn('order_count', 'integer', (c) => c.notNull())
    .modifyEnd(tableEnd)
    .execute();

  await db.schema
    .createTable('revenue_daily_product')
    .addColumn('product_id', idType, (c) => c.notNull())
    .addColumn('date', dateType, (c) => c.notNull())
    .addColumn('revenue', money, (c) => c.notNull())
    .addColumn('sale_count', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('revenue_daily_product_pk', ['product_id', 'date'])
    .modifyEnd(tableEnd)
    .execute();
  await db.schema.createIndex('revenue_daily_product_date').on('revenue_daily_product').column('date').execute();

  await db.schema
    .createTable('revenue_monthly_product')
    .addColumn('month', dateType, (c) => c.notNull())
    .addColumn('product_id', idType, (c) => c.notNull())
    .addColumn('revenue', money, (c) => c.notNull())
    .addColumn('sale_count', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('revenue_monthly_product_pk', ['month', 'product_id'])
    .modifyEnd(tableEnd)
    .execute();

  await db.schema
    .createTable('revenue_product_mtd')
    .addColumn('product_id', idType, (c) => c.notNull())
    .addColumn('date', dateType, (c) => c.notNull())
    .addColumn('revenue', money, (c) => c.notNull())
    .addColumn('sale_count', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('revenue_product_mtd_pk', ['product_id', 'date'])
    .modifyEnd(tableEnd)
    .execute();
  await db.schema.createIndex('revenue_product_mtd_date').on('revenue_product_mtd').column('date').execute();

  await db.schema
    .createTable('revenue_product_cum')
    .addColumn('product_id', idType, (c) => c.notNull())
    .addColumn('month', dateType, (c) => c.notNull())
    .addColumn('revenue', money, (c) => c.notNull())
    .addColumn('sale_count', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('revenue_product_cum_pk', ['product_id', 'month'])
    .modifyEnd(tableEnd)
    .execute();
  await db.schema.createIndex('revenue_product_cum_month').on('revenue_product_cum').column('month').execute();

  await db.schema
    .createTable('revenue_multiday_lines')
    .addColumn('order_id', idType, (c) => c.notNull())
    .addColumn('product_id', idType, (c) => c.notNull())
    .addColumn('date', dateType, (c) => c.notNull())
    .addPrimaryKeyConstraint('revenue_multiday_lines_pk', ['order_id', 'product_id'])
    .modifyEnd(tableEnd)
    .execute();
  await db.schema
    .createIndex('revenue_multiday_lines_date')
    .on('revenue_multiday_lines')
    .columns(['date', 'order_id'])
    .execute();

  await db.schema
    .createTable('revenue_multiday_days')
    .addColumn('order_id', idType, (c) => c.notNull())
    .addColumn('date', dateType, (c) => c.notNull())
    .addColumn('prev_date', dateType)
    .addPrimaryKeyConstraint('revenue_multiday_days_pk', ['order_id', 'date'])
    .modifyEnd(tableEnd)
    .execute();
  await db.schema
    .createIndex('revenue_multiday_days_date')
    .on('revenue_multiday_days')
    .columns(['date', 'prev_date'])
    .execute();

  await db.schema
    .createTable('data_version')
    .addColumn('id', 'integer', (c) => c.notNull().primaryKey())
    .addColumn('version', 'bigint', (c) => c.notNull())
    .modifyEnd(mysql ? sql`ENGINE=InnoDB` : sql``)
    .execute();

  await db.schema.createIndex('sales_product_date').on('sales').columns(['product_id', 'date', 'order_id']).execute();

  // Backfill from the sales stored so far.
  const month = mysql
    ? sql`DATE_FORMAT(date, '%Y-%m-01')`
    : postgres
      ? sql`date_trunc('month', date::timestamp)::date`
      : sql`substr(date, 1, 8) || '01'`;
  await sql`INSERT INTO revenue_daily (date, revenue, sale_count, order_count)
    SELECT date, SUM(amount_sgd), COUNT(*), COUNT(DISTINCT order_id) FROM sales GROUP BY date`.execute(db);
  await sql`INSERT INTO revenue_daily_product (product_id, date, revenue, sale_count)
    SELECT product_id, date, SUM(amount_sgd), COUNT(*) FROM sales GROUP BY product_id, date`.execute(db);
  await sql`INSERT INTO revenue_monthly_product (month, product_id, revenue, sale_count)
    SELECT ${month}, product_id, SUM(revenue), SUM(sale_count) FROM revenue_daily_product
    GROUP BY ${month}, product_id`.execute(db);
  await sql`INSERT INTO revenue_product_mtd (product_id, date, revenue, sale_count)
    SELECT product_id, date,
      SUM(revenue) OVER (PARTITION BY product_id, ${month} ORDER BY date),
      SUM(sale_count) OVER (PARTITION BY product_id, ${month} ORDER BY date)
    FROM revenue_daily_product`.execute(db);
  await sql`INSERT INTO revenue_product_cum (product_id, month, revenue, sale_count)
    SELECT product_id, month,
      SUM(revenue) OVER (PARTITION BY product_id ORDER BY month),
      SUM(sale_count) OVER (PARTITION BY product_id ORDER BY month)
    FROM revenue_monthly_product`.execute(db);
  await sql`INSERT INTO revenue_multiday_lines (order_id, product_id, date)
    SELECT s.order_id, s.product_id, s.date FROM sales s
    JOIN (SELECT order_id FROM sales GROUP BY order_id HAVING MIN(date) <> MAX(date)) m ON m.order_id = s.order_id`.execute(db);
  await sql`INSERT INTO revenue_multiday_days (order_id, date, prev_date)
    SELECT order_id, date, LAG(date) OVER (PARTITION BY order_id ORDER BY date)
    FROM (SELECT DISTINCT order_id, date FROM revenue_multiday_lines) pairs`.execute(db);
  // A random start, so that a database rebuilt from scratch never repeats an earlier version.
  const start = Math.floor(Math.random() * 2 ** 40);
  await sql`INSERT INTO data_version (id, version) VALUES (1, ${start})`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  const mysql = db.getExecutor().adapter instanceof MysqlAdapter;
  if (mysql) await sql`DROP INDEX sales_product_date ON sales`.execute(db);
  else await db.schema.dropIndex('sales_product_date').execute();
  await db.schema.dropTable('data_version').execute();
  await db.schema.dropTable('revenue_multiday_days').execute();
  await db.schema.dropTable('revenue_multiday_lines').execute();
  await db.schema.dropTable('revenue_product_cum').execute();
  await db.schema.dropTable('revenue_product_mtd').execute();
  await db.schema.dropTable('revenue_monthly_product').execute();
  await db.schema.dropTable('revenue_daily_product').execute();
  await db.schema.dropTable('revenue_daily').execute();
}
