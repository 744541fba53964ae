import { MysqlAdapter, PostgresAdapter, sql, type Kysely } from 'kysely';

// Frozen in time: this file never imports application code.

export async function up(db: Kysely<any>): Promise<void> {
  const mysql = db.getExecutor().adapter instanceof MysqlAdapter;
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  if (postgres) {
    // Ids are measured and ordered as characters: lengths, 64-character limits and basket keys
    // agree with the application's only in a UTF8 database (SQL_ASCII counts bytes).
    const { rows } = await sql<{ server_encoding: string }>`SHOW server_encoding`.execute(db);
    if (rows[0]?.server_encoding !== 'UTF8') {
      throw new Error(
        `the database's encoding is ${rows[0]?.server_encoding}; Zinc needs a UTF8 database (CREATE DATABASE … ENCODING 'UTF8' TEMPLATE template0)`,
      );
    }
  }
  const text = mysql ? sql`MEDIUMTEXT` : sql`TEXT`;

  await db.schema
    .createTable('imported_files')
    .addColumn('id', mysql || postgres ? 'bigint' : 'integer', (c) =>
      postgres ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement(),
    )
    .addColumn('filename', 'varchar(255)', (c) => c.notNull())
    .addColumn(
      'sha256',
      mysql ? sql`CHAR(64) CHARACTER SET ascii COLLATE ascii_bin` : postgres ? sql`CHAR(64) COLLATE "C"` : 'text',
      (c) => c.notNull().unique(),
    )
    .addColumn('size_bytes', 'bigint', (c) => c.notNull())
    .addColumn('imported_at', mysql ? sql`DATETIME(3)` : postgres ? sql`TIMESTAMP(3)` : 'text', (c) => c.notNull())
    .addColumn('num_rows', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('rows_rejected', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('error_message', 'text')
    .addColumn('error_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('errors', text, (c) => c.notNull())
    .addColumn('warnings', text, (c) => c.notNull())
    .addColumn('on_error', 'varchar(8)', (c) => c.notNull())
    .addColumn('owner', 'varchar(128)')
    .addColumn('duration_ms', 'integer')
    .modifyEnd(mysql ? sql`ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin` : sql``)
    .execute();
  await db.schema.createIndex('imported_files_status').on('imported_files').column('status').execute();

  // Identities compare byte for byte: utf8mb4_bin on MySQL, "C" on PostgreSQL, SQLite's default BINARY collation.
  const idType = mysql ? sql`VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin` : postgres ? sql`VARCHAR(64) COLLATE "C"` : sql`TEXT`;
  await db.schema
    .createTable('sales')
    // On SQLite an INTEGER PRIMARY KEY is the rowid itself: no separate index to maintain.
    .addColumn('id', mysql || postgres ? 'bigint' : 'integer', (c) =>
      mysql ? c.primaryKey().autoIncrement() : postgres ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey(),
    )
    .addColumn('date', mysql || postgres ? 'date' : 'text', (c) => c.notNull())
    .addColumn('order_id', idType, (c) => c.notNull())
    .addColumn('product_id', idType, (c) => c.notNull())
    // SQLite has no exact decimal type, so there the column holds integer cents.
    .addColumn('amount_sgd', mysql ? sql`DECIMAL(14,2)` : postgres ? sql`NUMERIC(14,2)` : 'integer', (c) => c.notNull())
    .addColumn('imported_file_id', mysql || postgres ? 'bigint' : 'integer', (c) => c.notNull())
    .addColumn('source_line', 'integer', (c) => c.notNull())
    .addUniqueConstraint('sales_identity', ['order_id', 'product_id'])
    // PostgreSQL checks a foreign key with a trigger per row: a third of a 1M-row COPY (7.2 s
    // with it, 4.8 s without, on the bench machine). There the import is the only writer of
    // sales rows, always for its own record in the same transaction, and records are never
    // deleted: the key stays on MySQL and SQLite, where it costs nothing measurable.
    .$call((table) => (postgres ? table : table.addForeignKeyConstraint('fk_sales_imported_file', ['imported_file_id'], 'imported_files', ['id'])))
    .modifyEnd(mysql ? sql`ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin` : sql``)
    .execute();
  await db.schema.createIndex('sales_date').on('sales').column('date').execute();
  // MySQL indexes a foreign key by itself; SQLite and PostgreSQL need it spelled out.
  if (!mysql) {
    await db.schema.createIndex('sales_imported_file').on('sales').column('imported_file_id').execute();
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('sales').execute();
  await db.schema.dropTable('imported_files').execute();
}

