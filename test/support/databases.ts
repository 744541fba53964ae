import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { createConnection } from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import type { DatabaseConfig } from '../../src/config.js';
import type { Database } from '../../src/db/database.js';
import { bulkLoadTuning } from '../../src/db/dialects/sqlite/tuning.js';
import type { DialectName } from '../../src/db/database.js';

/**
 * The databases every component test runs against: an SQLite file always, MariaDB/MySQL when
 * ZINC_TEST_MYSQL_URL names a server (mysql://user:pass@host:port, no database), PostgreSQL when
 * ZINC_TEST_POSTGRES_URL does (postgres://user:pass@host:port). CI sets ZINC_REQUIRE_MYSQL=1 and
 * ZINC_REQUIRE_POSTGRES=1 so that a missing server fails the run instead of skipping.
 */
export const MYSQL_URL = process.env.ZINC_TEST_MYSQL_URL?.replace(/\/+$/, '');
export const POSTGRES_URL = process.env.ZINC_TEST_POSTGRES_URL?.replace(/\/+$/, '');

if (process.env.ZINC_REQUIRE_MYSQL === '1' && !MYSQL_URL) {
  throw new Error('ZINC_REQUIRE_MYSQL=1 but ZINC_TEST_MYSQL_URL is not set: the MySQL tests would not run');
}
/** A Redis server for the rate limit shared by instances (redis://host:port), when set. */
export const REDIS_URL = process.env.ZINC_TEST_REDIS_URL;
if (process.env.ZINC_REQUIRE_REDIS === '1' && !REDIS_URL) {
  throw new Error('ZINC_REQUIRE_REDIS=1 but ZINC_TEST_REDIS_URL is not set: the shared rate limit tests would not run');
}

if (process.env.ZINC_REQUIRE_POSTGRES === '1' && !POSTGRES_URL) {
  throw new Error('ZINC_REQUIRE_POSTGRES=1 but ZINC_TEST_POSTGRES_URL is not set: the PostgreSQL tests would not run');
}

export const DIALECTS: Array<DialectName> = [
  'sqlite',
  ...(MYSQL_URL ? (['mysql'] as const) : []),
  ...(POSTGRES_URL ? (['postgres'] as const) : []),
];

export interface TestDatabase {
  config: DatabaseConfig;
  drop(): Promise<void>;
}

/** Creates an empty database of the given kind, owned by the caller until `drop`. */
export async function createTestDatabase(kind: DialectName): Promise<TestDatabase> {
  if (kind === 'sqlite') {
    const dir = mkdtempSync(path.join(tmpdir(), 'zinc-test-'));
    return {
      config: { kind: 'sqlite', path: path.join(dir, 'zinc.sqlite') },
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const name = `zinc_test_${randomBytes(5).toString('hex')}`;
  if (kind === 'postgres') {
    const admin = new pg.Client({ connectionString: `${POSTGRES_URL}/postgres` });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${name}" TEMPLATE template0 ENCODING 'UTF8'`);
    await admin.end();
    const url = `${POSTGRES_URL}/${name}`;
    const parsed = new URL(url);
    return {
      config: { kind: 'postgres', url, host: parsed.hostname, port: Number(parsed.port || 5432), database: name },
      drop: async () => {
        const conn = new pg.Client({ connectionString: `${POSTGRES_URL}/postgres` });
        await conn.connect();
        await conn.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        await conn.end();
      },
    };
  }
  const admin = await createConnection(MYSQL_URL!);
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  await admin.end();
  const url = `${MYSQL_URL}/${name}`;
  const parsed = new URL(url);
  return {
    config: { kind: 'mysql', url, host: parsed.hostname, port: Number(parsed.port || 3306), database: name },
    drop: async () => {
      const conn = await createConnection(MYSQL_URL!);
      await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await conn.end();
    },
  };
}

/** Every store path of the import: SQLite, and on MySQL both LOAD DATA and the INSERT fallback. */
export const IMPORT_PATHS: Array<{
  name: string;
  kind: DialectName;
  mysqlLoadMethod: 'auto' | 'load-data' | 'insert';
  /** SQLite: build the secondary indexes after the load, as for large files (useImportPath sets it). */
  bulk?: boolean;
}> = [
  { name: 'sqlite', kind: 'sqlite', mysqlLoadMethod: 'auto' },
  { name: 'sqlite (bulk load)', kind: 'sqlite', mysqlLoadMethod: 'auto', bulk: true },
  ...(MYSQL_URL
    ? [
        { name: 'mysql (LOAD DATA)', kind: 'mysql' as const, mysqlLoadMethod: 'load-data' as const },
        { name: 'mysql (INSERT fallback)', kind: 'mysql' as const, mysqlLoadMethod: 'insert' as const },
      ]
    : []),
  ...(POSTGRES_URL ? [{ name: 'postgres (COPY)', kind: 'postgres' as const, mysqlLoadMethod: 'auto' as const }] : []),
];

/** Puts the enclosing describe on an import path's settings that are not in Config (the bulk-load threshold). */
export function useImportPath(path: { bulk?: boolean }): void {
  if (!path.bulk) return;
  const defaults = { ...bulkLoadTuning };
  beforeAll(() => {
    Object.assign(bulkLoadTuning, { minRows: 0, tableShare: 0 });
  });
  afterAll(() => {
    Object.assign(bulkLoadTuning, defaults);
  });
}

/** The names of the indexes on `sales`, sorted. */
export async function salesIndexes(database: Database): Promise<string[]> {
  if (database.dialect.name === 'sqlite') {
    const { rows } = await sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sales'`.execute(database.writer);
    return rows.map((r) => r.name).sort();
  }
  if (database.dialect.name === 'postgres') {
    const { rows } = await sql<{ name: string }>`SELECT indexname AS name FROM pg_indexes WHERE tablename = 'sales'`.execute(database.writer);
    return rows.map((r) => r.name).sort();
  }
  const { rows } = await sql<{ Key_name: string }>`SHOW INDEX FROM sales`.execute(database.writer);
  return [...new Set(rows.map((r) => r.Key_name))].sort();
}
