import { MysqlAdapter, PostgresAdapter, sql, type Kysely } from 'kysely';

// Frozen in time: this file never imports application code.
//
// Weekly and monthly sums for series filtered on products, so that a year of weeks or months
// costs one row per period and product (and per basket mixing them), not one per day:
//
//   revenue_weekly_product   per (product, ISO week labelled by its Monday): revenue, sale rows
//   revenue_weekly_basket    per (basket, week): orders holding the basket on a day of that week
//   revenue_monthly_basket   per (basket, month): the same by month (revenue_monthly_product exists)

export async function up(db: Kysely<any>): Promise<void> {
  const mysql = db.getExecutor().adapter instanceof MysqlAdapter;
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  const idType = mysql ? sql`VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin` : postgres ? sql`VARCHAR(64) COLLATE "C"` : sql`TEXT`;
  const basketType = mysql ? sql`CHAR(64) CHARACTER SET ascii COLLATE ascii_bin` : postgres ? sql`CHAR(64) COLLATE "C"` : sql`TEXT`;
  const dateType = mysql || postgres ? 'date' : 'text';
  const money = mysql ? sql`DECIMAL(20,2)` : postgres ? sql`NUMERIC(20,2)` : 'integer';
  const tableEnd = mysql ? sql`ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin` : postgres ? sql`` : sql`WITHOUT ROWID`;

  await db.schema
    .createTable('revenue_weekly_product')
    .addColumn('product_id', idType, (c) => c.notNull())
    .addColumn('week', dateType, (c) => c.notNull())
    .addColumn('revenue', money, (c) => c.notNull())
    .addColumn('sale_count', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('revenue_weekly_product_pk', ['product_id', 'week'])
    .modifyEnd(tableEnd)
    .execute();
  await db.schema.createIndex('revenue_weekly_product_week').on('revenue_weekly_product').column('week').execute();

  for (const [table, key] of [
    ['revenue_weekly_basket', 'week'],
    ['revenue_monthly_basket', 'month'],
  ] as const) {
    await db.schema
      .createTable(table)
      .addColumn('basket', basketType, (c) => c.notNull())
      .addColumn(key, dateType, (c) => c.notNull())
      .addColumn('order_count', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint(`${table}_pk`, ['basket', key])
      .modifyEnd(tableEnd)
      .execute();
    await db.schema.createIndex(`${table}_${key}`).on(table).column(key).execute();
  }

  // Backfill from the daily rollups.
  const week = mysql
    ? sql`DATE_SUB(date, INTERVAL WEEKDAY(date) DAY)`
    : postgres
      ? sql`date_trunc('week', date::timestamp)::date`
      : sql`date(date, '-6 days', 'weekday 1')`;
  const month = mysql
    ? sql`DATE_FORMAT(date, '%Y-%m-01')`
    : postgres
      ? sql`date_trunc('month', date::timestamp)::date`
      : sql`(substr(date, 1, 8) || '01')`;
  await sql`INSERT INTO revenue_weekly_product (product_id, week, revenue, sale_count)
    SELECT product_id, ${week}, SUM(revenue), SUM(sale_count) FROM revenue_daily_product
    GROUP BY product_id, ${week}`.execute(db);
  await sql`INSERT INTO revenue_weekly_basket (basket, week, order_count)
    SELECT basket, ${week}, SUM(order_count) FROM revenue_daily_basket GROUP BY basket, ${week}`.execute(db);
  await sql`INSERT INTO revenue_monthly_basket (basket, month, order_count)
    SELECT basket, ${month}, SUM(order_count) FROM revenue_daily_basket GROUP BY basket, ${month}`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('revenue_monthly_basket').execute();
  await db.schema.dropTable('revenue_weekly_basket').execute();
  await db.schema.dropTable('revenue_weekly_product').execute();
}
