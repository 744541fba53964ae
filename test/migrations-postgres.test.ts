import { createHash, randomBytes } from 'node:crypto';
import { Kysely, Migrator, NO_MIGRATIONS, PostgresDialect, sql, type MigrationResultSet } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { migrations } from '../src/db/migrations/index.js';

/**
 * The migrations on a real PostgreSQL server, named by ZINC_TEST_POSTGRES_URL
 * (postgres://user@host:port, no database). Each test creates its own database and drops it.
 */
const POSTGRES_URL = process.env.ZINC_TEST_POSTGRES_URL?.replace(/\/+$/, '');
const NAMES = Object.keys(migrations);

/** Only raw SQL here: the schema under test is the migrations', not today's table types. */
type Db = Kysely<Record<string, never>>;

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: `${POSTGRES_URL}/postgres` });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Runs fn against a new, empty database, dropped afterwards. */
async function withDatabase(fn: (db: Db, migrator: Migrator) => Promise<void>): Promise<void> {
  const name = `zinc_test_${randomBytes(5).toString('hex')}`;
  await admin(async (client) => {
    // A linguistic default collation (where the server has ICU), so that byte order can only come
    // from the columns' own COLLATE "C".
    try {
      await client.query(`CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`);
    } catch {
      await client.query(`CREATE DATABASE ${name}`);
    }
  });
  const db = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: `${POSTGRES_URL}/${name}` }) }) });
  try {
    const migrator = new Migrator({
      db,
      provider: { getMigrations: async () => migrations },
      migrationTableName: 'zinc_migrations',
      migrationLockTableName: 'zinc_migrations_lock',
    });
    await fn(db, migrator);
  } finally {
    await db.destroy();
    await admin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  }
}

/** The names a migrator run applied or reverted, or its error. */
function applied({ error, results }: MigrationResultSet): string[] {
  if (error) throw error;
  return (results ?? []).map((r) => r.migrationName);
}

async function rows(db: Db, query: ReturnType<typeof sql>): Promise<unknown[][]> {
  const result = await query.execute(db);
  return (result.rows as Record<string, unknown>[]).map((r) => Object.values(r));
}

async function column(db: Db, table: string, name: string) {
  const { rows: found } = await sql<Record<string, unknown>>`
    SELECT data_type, character_maximum_length, numeric_precision, numeric_scale, datetime_precision, collation_name, is_identity
    FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ${table} AND column_name = ${name}`.execute(db);
  expect(found, `${table}.${name}`).toHaveLength(1);
  return found[0]!;
}

async function tables(db: Db): Promise<string[]> {
  const { rows: found } = await sql<{ table_name: string }>`
    SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name`.execute(db);
  return found.map((r) => r.table_name);
}

async function indexes(db: Db): Promise<string[]> {
  const { rows: found } = await sql<{ indexname: string }>`
    SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() ORDER BY indexname`.execute(db);
  return found.map((r) => r.indexname);
}

/** The basket name the migrations compute: sorted product ids, each prefixed by its length, SHA-256 in hex. */
function basketOf(products: string[]): string {
  const key = [...products].sort().map((p) => `${p.length}:${p}`).join('');
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

describe.skipIf(!POSTGRES_URL)('the migrations on PostgreSQL', () => {
  it('when they all run, then ids are byte-ordered, money exact, dates dates, and every foreign key indexed', async () => {
    await withDatabase(async (db, migrator) => {
      expect(applied(await migrator.migrateToLatest())).toEqual(NAMES);

      expect(await column(db, 'sales', 'order_id')).toMatchObject({ data_type: 'character varying', character_maximum_length: 64, collation_name: 'C' });
      expect(await column(db, 'sales', 'amount_sgd')).toMatchObject({ data_type: 'numeric', numeric_precision: 14, numeric_scale: 2 });
      expect(await column(db, 'sales', 'date')).toMatchObject({ data_type: 'date' });
      expect(await column(db, 'sales', 'id')).toMatchObject({ data_type: 'bigint', is_identity: 'YES' });
      expect(await column(db, 'sales', 'imported_file_id')).toMatchObject({ data_type: 'bigint' });
      expect(await column(db, 'sales_history', 'id')).toMatchObject({ data_type: 'bigint', is_identity: 'YES' });
      expect(await column(db, 'sales_staging', 'amount_sgd')).toMatchObject({ numeric_precision: 14, numeric_scale: 2 });
      expect(await column(db, 'imported_files', 'id')).toMatchObject({ data_type: 'bigint', is_identity: 'YES' });
      expect(await column(db, 'imported_files', 'sha256')).toMatchObject({ data_type: 'character', character_maximum_length: 64, collation_name: 'C' });
      expect(await column(db, 'imported_files', 'imported_at')).toMatchObject({ data_type: 'timestamp without time zone', datetime_precision: 3 });
      expect(await column(db, 'imported_files', 'errors')).toMatchObject({ data_type: 'text' });
      expect(await column(db, 'revenue_daily', 'revenue')).toMatchObject({ data_type: 'numeric', numeric_precision: 20, numeric_scale: 2 });
      expect(await column(db, 'revenue_product_cum', 'sale_count')).toMatchObject({ data_type: 'bigint' });
      expect(await column(db, 'rollup_orders', 'change_id')).toMatchObject({ data_type: 'bigint' });
      expect(await column(db, 'import_progress', 'import_id')).toMatchObject({ data_type: 'bigint', is_identity: 'NO' });
      expect(await column(db, 'import_progress', 'bytes_read')).toMatchObject({ data_type: 'bigint' });
      expect(await column(db, 'import_progress', 'updated_at')).toMatchObject({ data_type: 'timestamp without time zone', datetime_precision: 3 });

      // Every column holding an order id, a product id or a basket compares byte for byte.
      const identities = await rows(
        db,
        sql`SELECT table_name, column_name, collation_name FROM information_schema.columns
          WHERE table_schema = current_schema() AND column_name IN ('order_id', 'product_id', 'basket', 'order_id_min', 'order_id_max')
          ORDER BY table_name, column_name`,
      );
      expect(identities.length).toBeGreaterThanOrEqual(10);
      expect(identities.filter(([, , collation]) => collation !== 'C')).toEqual([]);

      // PostgreSQL does not index a foreign key by itself.
      const unindexed = await rows(
        db,
        sql`SELECT c.conname FROM pg_constraint c WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace
          AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1])`,
      );
      expect(unindexed).toEqual([]);
      // sales.imported_file_id has no foreign key here: a per-row trigger would cost a third of a COPY.
      const salesKeys = await rows(db, sql`SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid = 'sales'::regclass`);
      expect(salesKeys).toEqual([]);
      expect(await indexes(db)).toContain('sales_imported_file');
      expect(await indexes(db)).not.toContain('sales_product_date');
    });
  });

  it('when sales exist before the rollup migrations, then each backfills them as MySQL would, and down brings back what up dropped', async () => {
    await withDatabase(async (db, migrator) => {
      expect(applied(await migrator.migrateTo('2026-11-25T0100-sales-history'))).toEqual(NAMES.slice(0, 2));
      const file = async (name: string) => {
        const { rows: inserted } = await sql<{ id: string }>`
          INSERT INTO imported_files (filename, sha256, size_bytes, imported_at, num_rows, status, errors, warnings, on_error)
          VALUES (${name}, ${createHash('sha256').update(name).digest('hex')}, 1, '2024-01-01 00:00:00.000', 1, 'success', '[]', '[]', 'fail')
          RETURNING id`.execute(db);
        return inserted[0]!.id;
      };
      const [first, second, empty] = [await file('first.csv'), await file('second.csv'), await file('empty.csv')];
      expect([first, second, empty]).toEqual(['1', '2', '3']);
      // Upper- and lower-case ids: byte order ('D' < 'P' < 'd' < 'p') is not a linguistic one.
      for (const [fileId, date, order, product, amount] of [
        [first, '2024-01-01', 'a-1', 'p-1', '1.50'],
        [first, '2024-01-02', 'a-1', 'P-2', '2.50'],
        [first, '2024-01-02', 'B-1', 'p-1', '-0.25'],
        [first, '2024-02-01', 'C-1', 'p-1', '10.00'],
        [first, '2024-03-04', 'd-1', 'p-1', '0.50'],
        [first, '2024-03-04', 'd-1', 'P-2', '0.50'],
        [first, '2024-03-04', 'D-2', 'p-1', '1.00'],
        [first, '2024-03-04', 'D-2', 'P-2', '1.00'],
        [first, '2024-03-06', 'E-1', 'P-2', '2.00'],
        [first, '2024-03-06', 'E-1', 'p-1', '3.00'],
        [second, '2024-03-10', 'b-9', 'p-1', '4.00'],
      ] as const) {
        await sql`INSERT INTO sales (date, order_id, product_id, amount_sgd, imported_file_id, source_line)
          VALUES (${date}, ${order}, ${product}, ${amount}, ${fileId}, 2)`.execute(db);
      }
      // A line of the second import that a later one replaced.
      await sql`INSERT INTO sales_history (replaced_by_import_id, date, order_id, product_id, amount_sgd, imported_file_id, source_line)
        VALUES (${first}, '2024-03-10', 'Z-0', 'p-1', '9.00', ${second}, 3)`.execute(db);

      expect(applied(await migrator.migrateTo('2026-11-25T0200-revenue-rollups'))).toEqual([NAMES[2]]);
      expect(await rows(db, sql`SELECT date::text, revenue::text, sale_count, order_count FROM revenue_daily ORDER BY date`)).toEqual([
        ['2024-01-01', '1.50', 1, 1],
        ['2024-01-02', '2.25', 2, 2],
        ['2024-02-01', '10.00', 1, 1],
        ['2024-03-04', '3.00', 4, 2],
        ['2024-03-06', '5.00', 2, 1],
        ['2024-03-10', '4.00', 1, 1],
      ]);
      expect(await rows(db, sql`SELECT month::text, revenue::text, sale_count FROM revenue_monthly_product WHERE product_id = 'p-1' ORDER BY month`)).toEqual([
        ['2024-01-01', '1.25', 2],
        ['2024-02-01', '10.00', 1],
        ['2024-03-01', '8.50', 4],
      ]);
      const mtd = sql`SELECT date::text, revenue::text, sale_count FROM revenue_product_mtd WHERE product_id = 'p-1' ORDER BY date`;
      const expectedMtd = [
        ['2024-01-01', '1.50', 1],
        ['2024-01-02', '1.25', 2],
        ['2024-02-01', '10.00', 1],
        ['2024-03-04', '1.50', 2],
        ['2024-03-06', '4.50', 3],
        ['2024-03-10', '8.50', 4],
      ];
      expect(await rows(db, mtd)).toEqual(expectedMtd);
      expect(await rows(db, sql`SELECT month::text, revenue::text, sale_count::text FROM revenue_product_cum WHERE product_id = 'p-1' ORDER BY month`)).toEqual([
        ['2024-01-01', '1.25', '2'],
        ['2024-02-01', '11.25', '3'],
        ['2024-03-01', '19.75', '7'],
      ]);
      expect(await rows(db, sql`SELECT order_id, product_id, date::text FROM revenue_multiday_lines ORDER BY product_id`)).toEqual([
        ['a-1', 'P-2', '2024-01-02'],
        ['a-1', 'p-1', '2024-01-01'],
      ]);
      expect(await rows(db, sql`SELECT order_id, date::text, prev_date::text FROM revenue_multiday_days ORDER BY date`)).toEqual([
        ['a-1', '2024-01-01', null],
        ['a-1', '2024-01-02', '2024-01-01'],
      ]);
      expect(await rows(db, sql`SELECT COUNT(*)::int FROM data_version`)).toEqual([[1]]);

      const basket = basketOf(['p-1', 'P-2']);
      expect(basket).toBe(createHash('sha256').update('3:P-23:p-1').digest('hex'));
      expect(applied(await migrator.migrateTo('2026-12-01T0000-basket-rollups'))).toEqual([NAMES[3]]);
      const samples = sql`SELECT basket, date::text, order_count, sample_order_id FROM revenue_daily_basket ORDER BY date`;
      const expectedSamples = [
        [basket, '2024-03-04', 2, 'D-2'],
        [basket, '2024-03-06', 1, 'E-1'],
      ];
      expect(await rows(db, samples)).toEqual(expectedSamples);
      expect(await rows(db, sql`SELECT product_id, basket FROM revenue_basket_products ORDER BY product_id`)).toEqual([
        ['P-2', basket],
        ['p-1', basket],
      ]);

      expect(applied(await migrator.migrateTo('2026-12-01T0100-period-rollups'))).toEqual([NAMES[4]]);
      // ISO weeks start on Monday: 2024-02-01 is a Thursday, 2024-03-10 a Sunday.
      expect(await rows(db, sql`SELECT week::text, revenue::text, sale_count FROM revenue_weekly_product WHERE product_id = 'p-1' ORDER BY week`)).toEqual([
        ['2024-01-01', '1.25', 2],
        ['2024-01-29', '10.00', 1],
        ['2024-03-04', '8.50', 4],
      ]);
      const weekly = sql`SELECT basket, week::text, order_count FROM revenue_weekly_basket`;
      expect(await rows(db, weekly)).toEqual([[basket, '2024-03-04', 3]]);
      const monthly = sql`SELECT basket, month::text, order_count FROM revenue_monthly_basket`;
      expect(await rows(db, monthly)).toEqual([[basket, '2024-03-01', 3]]);

      expect(applied(await migrator.migrateTo('2026-12-06T0000-stream-rollups'))).toEqual([NAMES[5]]);
      // Byte order: 'B-1' < 'a-1' and 'D-2' < 'd-1'; the second import's range spans its replaced line 'Z-0'.
      expect(await rows(db, sql`SELECT filename, order_id_min, order_id_max FROM imported_files ORDER BY id`)).toEqual([
        ['first.csv', 'B-1', 'd-1'],
        ['second.csv', 'Z-0', 'b-9'],
        ['empty.csv', null, null],
      ]);
      expect((await column(db, 'imported_files', 'order_id_min')).collation_name).toBe('C');
      expect(await tables(db)).not.toContain('revenue_product_mtd');
      expect(await indexes(db)).not.toContain('sales_product_date');
      await expect(sql`SELECT sample_order_id FROM revenue_daily_basket`.execute(db)).rejects.toThrow(/sample_order_id/);
      await sql`INSERT INTO rollup_orders (change_id, order_id) VALUES (1, 'a-1'), (1, 'A-1')`.execute(db);
      await sql`DELETE FROM rollup_orders`.execute(db);

      // Down of the stream rollups: month-to-date sums, basket samples and period baskets come back.
      expect(applied(await migrator.migrateTo('2026-12-01T0100-period-rollups'))).toEqual([NAMES[5]]);
      expect(await rows(db, mtd)).toEqual(expectedMtd);
      expect(await rows(db, samples)).toEqual(expectedSamples);
      expect(await rows(db, weekly)).toEqual([[basket, '2024-03-04', 3]]);
      expect(await rows(db, monthly)).toEqual([[basket, '2024-03-01', 3]]);
      expect(await indexes(db)).toEqual(expect.arrayContaining(['sales_product_date', 'revenue_daily_basket_date', 'revenue_basket_products_basket']));
      expect(await rows(db, sql`SELECT column_name FROM information_schema.columns WHERE table_name = 'imported_files' AND column_name LIKE 'order_id_%'`)).toEqual([]);

      expect(applied(await migrator.migrateToLatest())).toEqual(NAMES.slice(5));
      expect(await rows(db, sql`SELECT order_id_min, order_id_max FROM imported_files ORDER BY id`)).toEqual([
        ['B-1', 'd-1'],
        ['Z-0', 'b-9'],
        [null, null],
      ]);
    });
  });

  it('when every migration is run down and up again, then the schema is gone, then back and usable', async () => {
    await withDatabase(async (db, migrator) => {
      expect(applied(await migrator.migrateToLatest())).toEqual(NAMES);
      const schema = { tables: await tables(db), indexes: await indexes(db) };
      for (const name of [...NAMES].reverse()) expect(applied(await migrator.migrateDown())).toEqual([name]);
      expect(applied(await migrator.migrateDown())).toEqual([]);
      expect(await tables(db)).toEqual(['zinc_migrations', 'zinc_migrations_lock']);
      const { rows: sequences } = await sql`SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()`.execute(db);
      expect(sequences).toEqual([]);

      expect(applied(await migrator.migrateToLatest())).toEqual(NAMES);
      expect({ tables: await tables(db), indexes: await indexes(db) }).toEqual(schema);
      const { rows: inserted } = await sql<{ id: string }>`
        INSERT INTO imported_files (filename, sha256, size_bytes, imported_at, status, errors, warnings, on_error)
        VALUES ('again.csv', ${'b'.repeat(64)}, 1, '2024-01-01 00:00:00.000', 'success', '[]', '[]', 'fail') RETURNING id`.execute(db);
      await sql`INSERT INTO sales (date, order_id, product_id, amount_sgd, imported_file_id, source_line)
        VALUES ('2024-01-01', 'A', 'P', '1.00', ${inserted[0]!.id}, 2)`.execute(db);
      expect(await rows(db, sql`SELECT id::text, amount_sgd::text FROM sales`)).toEqual([['1', '1.00']]);
      // All the way down at once, with rows in place.
      expect(applied(await migrator.migrateTo(NO_MIGRATIONS))).toEqual([...NAMES].reverse());
      expect(await tables(db)).toEqual(['zinc_migrations', 'zinc_migrations_lock']);
    });
  });
});
