import { MysqlAdapter, PostgresAdapter, sql, type Kysely } from 'kysely';

// Frozen in time: this file never imports application code.
//
// Distinct orders over several products, from rollups instead of the products' sales lines.
// An order's "basket" on a date is the set of products of its lines on that date; a basket is
// named by the SHA-256 of its product ids, sorted, each prefixed by its length in characters
// ("5:SKU-1" "5:SKU-8"…, so that no two sets give the same string). Only baskets of two or more
// products are kept: an order with k ≥ 2 lines of the products asked about on one date is the
// only case where a product's sale rows (one per order and product) over-count its orders.
//
//   revenue_daily_basket     per (basket, date): the orders whose lines that date form the basket,
//                            and one of them (sample_order_id: where a new basket's products are read)
//   revenue_basket_products  per basket its products; a basket's products never change, so rows
//                            stay when its last order goes
//
// The SQLite connections provide zinc_sha256() (src/db/connection.ts).

export async function up(db: Kysely<any>): Promise<void> {
  const mysql = db.getExecutor().adapter instanceof MysqlAdapter;
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  const idType = mysql ? sql`VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin` : postgres ? sql`VARCHAR(64) COLLATE "C"` : sql`TEXT`;
  const basketType = mysql ? sql`CHAR(64) CHARACTER SET ascii COLLATE ascii_bin` : postgres ? sql`CHAR(64) COLLATE "C"` : sql`TEXT`;
  const dateType = mysql || postgres ? 'date' : 'text';
  const tableEnd = mysql ? sql`ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin` : postgres ? sql`` : sql`WITHOUT ROWID`;

  await db.schema
    .createTable('revenue_daily_basket')
    .addColumn('basket', basketType, (c) => c.notNull())
    .addColumn('date', dateType, (c) => c.notNull())
    .addColumn('order_count', 'integer', (c) => c.notNull())
    .addColumn('sample_order_id', idType, (c) => c.notNull())
    .addPrimaryKeyConstraint('revenue_daily_basket_pk', ['basket', 'date'])
    .modifyEnd(tableEnd)
    .execute();
  await db.schema.createIndex('revenue_daily_basket_date').on('revenue_daily_basket').column('date').execute();

  await db.schema
    .createTable('revenue_basket_products')
    .addColumn('product_id', idType, (c) => c.notNull())
    .addColumn('basket', basketType, (c) => c.notNull())
    .addPrimaryKeyConstraint('revenue_basket_products_pk', ['product_id', 'basket'])
    .modifyEnd(tableEnd)
    .execute();
  await db.schema.createIndex('revenue_basket_products_basket').on('revenue_basket_products').column('basket').execute();

  // Backfill from the sales stored so far.
  if (mysql) await sql`SET SESSION group_concat_max_len = 4294967295`.execute(db);
  const basket = mysql
    ? sql`SHA2(GROUP_CONCAT(CONCAT(CHAR_LENGTH(product_id), ':', product_id) ORDER BY product_id SEPARATOR ''), 256)`
    : postgres
      ? sql`encode(sha256(convert_to(string_agg(length(product_id) || ':' || product_id, '' ORDER BY product_id), 'UTF8')), 'hex')`
      : sql`zinc_sha256(group_concat(length(product_id) || ':' || product_id, '' ORDER BY product_id))`;
  await sql`INSERT INTO revenue_daily_basket (basket, date, order_count, sample_order_id)
    SELECT basket, date, COUNT(*), MIN(order_id) FROM (
      SELECT order_id, date, ${basket} AS basket FROM sales GROUP BY order_id, date HAVING COUNT(*) > 1
    ) o GROUP BY basket, date`.execute(db);
  await sql`INSERT INTO revenue_basket_products (product_id, basket)
    SELECT s.product_id, d.basket FROM revenue_daily_basket d
    JOIN sales s ON s.order_id = d.sample_order_id AND s.date = d.date
    WHERE d.date = (SELECT MIN(f.date) FROM revenue_daily_basket f WHERE f.basket = d.basket)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('revenue_basket_products').execute();
  await db.schema.dropTable('revenue_daily_basket').execute();
}
