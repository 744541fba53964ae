import { MysqlAdapter, PostgresAdapter, sql, type Kysely } from 'kysely';

// Frozen in time: this file never imports application code.
//
// Rollups kept from the import's stream of rows instead of recomputed from `sales`:
//
//   revenue_product_mtd            dropped: as many rows as revenue_daily_product, rewritten for
//                                  every month an import touched; top products read whole months
//                                  (revenue_product_cum), whole weeks and edge days instead
//   revenue_daily_basket           loses sample_order_id, a MIN over orders that no delta can keep
//                                  (a basket's products are known from the rows themselves)
//   sales_product_date (index)     dropped: nothing reads sales by product any more, and it cost
//                                  the bulk load a random insert per row
//   imported_files.order_id_min/max the range of order ids the import stored; an import whose
//                                  range meets no other import's shares no order with them, and
//                                  its orders' rollups follow from its own rows alone
//   revenue_weekly_basket,         dropped: in a wide catalogue (nearly every order a basket of its
//   revenue_monthly_basket         own) they hold a row per order each, as the daily table does; a
//                                  series or total reads the daily rows of the few baskets mixing
//                                  the products asked about instead
//   two basket indexes             dropped (revenue_daily_basket_date, revenue_basket_products_basket):
//                                  answers read baskets by their key, and writes paid for them
//   rollup_orders                  work list of one change (import or undo): the orders whose
//                                  rollups it recomputes from their stored lines; emptied before
//                                  the change commits

/** Indexes no answer reads: [table, index, column]. */
const UNREAD_INDEXES = [
  ['revenue_daily_basket', 'revenue_daily_basket_date', 'date'],
  ['revenue_basket_products', 'revenue_basket_products_basket', 'basket'],
] as const;
const PERIOD_BASKETS = [
  ['revenue_weekly_basket', 'week'],
  ['revenue_monthly_basket', 'month'],
] as const;

export async function up(db: Kysely<any>): Promise<void> {
  const mysql = db.getExecutor().adapter instanceof MysqlAdapter;
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  const idType = mysql ? sql`VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin` : postgres ? sql`VARCHAR(64) COLLATE "C"` : sql`TEXT`;

  await db.schema.dropTable('revenue_product_mtd').execute();
  if (mysql) await sql`DROP INDEX sales_product_date ON sales`.execute(db);
  else await db.schema.dropIndex('sales_product_date').execute();
  await db.schema.alterTable('revenue_daily_basket').dropColumn('sample_order_id').execute();
  for (const [table, index] of UNREAD_INDEXES) {
    if (mysql) await sql`DROP INDEX ${sql.id(index)} ON ${sql.table(table)}`.execute(db);
    else await db.schema.dropIndex(index).execute();
  }
  for (const [table] of PERIOD_BASKETS) await db.schema.dropTable(table).execute();

  await db.schema
    .createTable('rollup_orders')
    .addColumn('change_id', mysql || postgres ? 'bigint' : 'integer', (c) => c.notNull())
    .addColumn('order_id', idType, (c) => c.notNull())
    .addPrimaryKeyConstraint('rollup_orders_pk', ['change_id', 'order_id'])
    .modifyEnd(mysql ? sql`ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin` : postgres ? sql`` : sql`WITHOUT ROWID`)
    .execute();

  await db.schema.alterTable('imported_files').addColumn('order_id_min', idType).execute();
  await db.schema.alterTable('imported_files').addColumn('order_id_max', idType).execute();
  // Rows an import stored live in sales, or in sales_history once a later import replaced them.
  for (const edge of ['MIN', 'MAX'] as const) {
    const column = sql.ref(`order_id_${edge.toLowerCase()}`);
    const fn = sql.raw(edge);
    const pick = mysql || postgres ? sql.raw(edge === 'MIN' ? 'LEAST' : 'GREATEST') : fn;
    const live = sql`(SELECT ${fn}(order_id) FROM sales WHERE imported_file_id = imported_files.id)`;
    const replaced = sql`(SELECT ${fn}(order_id) FROM sales_history WHERE imported_file_id = imported_files.id)`;
    await sql`UPDATE imported_files SET ${column} = ${pick}(COALESCE(${live}, ${replaced}), COALESCE(${replaced}, ${live}))`.execute(db);
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  const mysql = db.getExecutor().adapter instanceof MysqlAdapter;
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  const idType = mysql ? sql`VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin` : postgres ? sql`VARCHAR(64) COLLATE "C"` : sql`TEXT`;
  const dateType = mysql || postgres ? 'date' : 'text';
  const money = mysql ? sql`DECIMAL(20,2)` : postgres ? sql`NUMERIC(20,2)` : 'integer';
  const tableEnd = mysql ? sql`ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin` : postgres ? sql`` : sql`WITHOUT ROWID`;
  const month = mysql
    ? sql`DATE_FORMAT(date, '%Y-%m-01')`
    : postgres
      ? sql`date_trunc('month', date::timestamp)::date`
      : sql`substr(date, 1, 8) || '01'`;

  await db.schema.dropTable('rollup_orders').execute();
  await db.schema.alterTable('imported_files').dropColumn('order_id_max').execute();
  await db.schema.alterTable('imported_files').dropColumn('order_id_min').execute();

  // SQLite cannot add a NOT NULL column without a default: add it with one, then fill it.
  await db.schema
    .alterTable('revenue_daily_basket')
    .addColumn('sample_order_id', idType, (c) => c.notNull().defaultTo(''))
    .execute();
  if (mysql) await sql`SET SESSION group_concat_max_len = 4294967295`.execute(db);
  const basket = mysql
    ? sql`SHA2(GROUP_CONCAT(CONCAT(CHAR_LENGTH(product_id), ':', product_id) ORDER BY product_id SEPARATOR ''), 256)`
    : postgres
      ? sql`encode(sha256(convert_to(string_agg(length(product_id) || ':' || product_id, '' ORDER BY product_id), 'UTF8')), 'hex')`
      : sql`zinc_sha256(group_concat(length(product_id) || ':' || product_id, '' ORDER BY product_id))`;
  // SHA2 answers in the connection's character set: compared as the column's ascii_bin.
  const named = mysql ? sql`CONVERT(${basket} USING ascii) COLLATE ascii_bin` : basket;
  const samples = sql`(SELECT basket, date, MIN(order_id) AS sample FROM (
      SELECT order_id, date, ${named} AS basket FROM sales GROUP BY order_id, date HAVING COUNT(*) > 1
    ) o GROUP BY basket, date)`;
  if (mysql) {
    await sql`UPDATE revenue_daily_basket d JOIN ${samples} x ON x.basket = d.basket AND x.date = d.date
      SET d.sample_order_id = x.sample`.execute(db);
  } else {
    await sql`UPDATE revenue_daily_basket SET sample_order_id = x.sample FROM ${samples} x
      WHERE x.basket = revenue_daily_basket.basket AND x.date = revenue_daily_basket.date`.execute(db);
  }

  for (const [table, index, column] of UNREAD_INDEXES) await db.schema.createIndex(index).on(table).column(column).execute();
  const basketType = mysql ? sql`CHAR(64) CHARACTER SET ascii COLLATE ascii_bin` : postgres ? sql`CHAR(64) COLLATE "C"` : sql`TEXT`;
  const week = mysql
    ? sql`DATE_SUB(date, INTERVAL WEEKDAY(date) DAY)`
    : postgres
      ? sql`date_trunc('week', date::timestamp)::date`
      : sql`date(date, '-6 days', 'weekday 1')`;
  const period = { week, month };
  for (const [table, key] of PERIOD_BASKETS) {
    await db.schema
      .createTable(table)
      .addColumn('basket', basketType, (c) => c.notNull())
      .addColumn(key, dateType, (c) => c.notNull())
      .addColumn('order_count', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint(`${table}_pk`, ['basket', key])
      .modifyEnd(tableEnd)
      .execute();
    await db.schema.createIndex(`${table}_${key}`).on(table).column(key).execute();
    await sql`INSERT INTO ${sql.table(table)} (basket, ${sql.ref(key)}, order_count)
      SELECT basket, ${period[key]}, SUM(order_count) FROM revenue_daily_basket GROUP BY basket, ${period[key]}`.execute(db);
  }
  await db.schema.createIndex('sales_product_date').on('sales').columns(['product_id', 'date', 'order_id']).execute();

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
  await sql`INSERT INTO revenue_product_mtd (product_id, date, revenue, sale_count)
    SELECT product_id, date,
      SUM(revenue) OVER (PARTITION BY product_id, ${month} ORDER BY date),
      SUM(sale_count) OVER (PARTITION BY product_id, ${month} ORDER BY date)
    FROM revenue_daily_product`.execute(db);
}
