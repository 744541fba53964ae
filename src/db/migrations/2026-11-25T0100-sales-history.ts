import { MysqlAdapter, PostgresAdapter, sql, type Kysely } from 'kysely';

// Frozen in time: this file never imports application code.
//
// sales_history keeps every row an import replaced, so undoing that import can bring it back.
// sales_staging is where MySQL reconciles a bulk load whose identities were partly stored already.

export async function up(db: Kysely<any>): Promise<void> {
  const mysql = db.getExecutor().adapter instanceof MysqlAdapter;
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  const idType = mysql ? sql`VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin` : postgres ? sql`VARCHAR(64) COLLATE "C"` : sql`TEXT`;
  const bigint = mysql || postgres ? 'bigint' : 'integer';
  const tableEnd = mysql ? sql`ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin` : sql``;

  await db.schema
    .createTable('sales_history')
    .addColumn('id', bigint, (c) => (postgres ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement()))
    .addColumn('replaced_by_import_id', bigint, (c) => c.notNull())
    .addColumn('date', mysql || postgres ? 'date' : 'text', (c) => c.notNull())
    .addColumn('order_id', idType, (c) => c.notNull())
    .addColumn('product_id', idType, (c) => c.notNull())
    .addColumn('amount_sgd', mysql ? sql`DECIMAL(14,2)` : postgres ? sql`NUMERIC(14,2)` : 'integer', (c) => c.notNull())
    .addColumn('imported_file_id', bigint, (c) => c.notNull())
    .addColumn('source_line', 'integer', (c) => c.notNull())
    .modifyEnd(tableEnd)
    .execute();
  await db.schema.createIndex('sales_history_replaced_by').on('sales_history').column('replaced_by_import_id').execute();
  await db.schema.createIndex('sales_history_owner').on('sales_history').columns(['imported_file_id', 'order_id', 'product_id']).execute();

  await db.schema
    .createTable('sales_staging')
    .addColumn('import_id', bigint, (c) => c.notNull())
    .addColumn('line', 'integer', (c) => c.notNull())
    .addColumn('date', mysql || postgres ? 'date' : 'text', (c) => c.notNull())
    .addColumn('order_id', idType, (c) => c.notNull())
    .addColumn('product_id', idType, (c) => c.notNull())
    .addColumn('amount_sgd', mysql ? sql`DECIMAL(14,2)` : postgres ? sql`NUMERIC(14,2)` : 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('sales_staging_pk', ['import_id', 'line'])
    .modifyEnd(tableEnd)
    .execute();
  await db.schema.createIndex('sales_staging_identity').on('sales_staging').columns(['import_id', 'order_id', 'product_id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('sales_staging').execute();
  await db.schema.dropTable('sales_history').execute();
}
