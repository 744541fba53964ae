import { MysqlAdapter, PostgresAdapter, sql, type Kysely } from 'kysely';

// Frozen in time: this file never imports application code.
//
// import_progress: how far each running import has got, one row per import record, written by
// the instance running it (about once a second, on a connection of its own) and deleted when it
// ends, so that every instance on the database can show it. A table of its own rather than
// columns of imported_files: the import's transaction locks its record's row (MySQL's foreign
// key check from sales, the final status written before COMMIT), and a progress write to that row
// from another connection would wait for the commit. No foreign key either, for the same reason.

export async function up(db: Kysely<any>): Promise<void> {
  const mysql = db.getExecutor().adapter instanceof MysqlAdapter;
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  const time = mysql ? sql`DATETIME(3)` : postgres ? sql`TIMESTAMP(3)` : 'text';
  await db.schema
    .createTable('import_progress')
    .addColumn('import_id', mysql || postgres ? 'bigint' : 'integer', (c) => c.primaryKey())
    .addColumn('bytes_read', 'bigint', (c) => c.notNull())
    .addColumn('bytes_total', 'bigint', (c) => c.notNull())
    .addColumn('rows_read', 'bigint', (c) => c.notNull())
    .addColumn('started_at', time, (c) => c.notNull())
    .addColumn('updated_at', time, (c) => c.notNull())
    .modifyEnd(mysql ? sql`ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin` : sql``)
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('import_progress').execute();
}
