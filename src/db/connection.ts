import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, MysqlDialect, SqliteDialect, type Driver, type LogEvent } from 'kysely';
import { createPool, type PoolOptions } from 'mysql2';
import type { DatabaseConfig } from '../config.js';
import { infileStreamFactory } from './infile.js';
import type { Tables } from './tables.js';
import { beginImmediate } from './write-lock.js';

export type DB = Kysely<Tables>;

/**
 * One open database. `db` serves reads and short writes; `writer` is where imports write.
 * On MySQL both are the same pool. On SQLite they are two connections to one WAL file, so
 * readers keep answering from the last committed state while an import holds the write lock.
 */
export interface Database {
  readonly kind: 'mysql' | 'sqlite';
  readonly db: DB;
  readonly writer: DB;
  /** SQLite only: the raw handle behind `writer`, for prepared statements on the import's hot path. */
  readonly sqliteWriter?: SqliteDatabase.Database;
  close(): Promise<void>;
}

/** mysql2 pool options Zinc relies on; kept in one place so tests and tools connect the same way. */
export function mysqlPoolOptions(url: string): PoolOptions {
  return {
    uri: url,
    // DATE stays `YYYY-MM-DD`; no shift through the client's time zone.
    dateStrings: true,
    timezone: 'Z',
    // DECIMAL and SUM arrive as exact strings (never decimalNumbers).
    supportBigNumbers: true,
    bigNumberStrings: false,
    charset: 'UTF8MB4_UNICODE_CI',
    connectionLimit: 10,
    connectTimeout: 5000,
    enableKeepAlive: true,
    multipleStatements: false,
    // Only streams Zinc registered can be read by LOAD DATA LOCAL INFILE (see infile.ts).
    infileStreamFactory,
  };
}

export interface OpenOptions {
  /** Called for every failed query (metrics). */
  onQueryError?: (error: unknown) => void;
}

/**
 * SQLite rolls a transaction back by itself on some errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM):
 * Kysely's ROLLBACK then fails with "no transaction is active" and that error would replace the
 * real one (a full disk would read as a bug). Roll back only what is still open.
 */
class SqliteDialectKeepingErrors extends SqliteDialect {
  constructor(
    private readonly handle: SqliteDatabase.Database,
    /** The writer connection's: its transactions take the write lock at BEGIN (see write-lock.ts). */
    private readonly closing?: () => boolean,
  ) {
    super({ database: handle });
  }

  override createDriver(): Driver {
    const driver = super.createDriver();
    const rollback = driver.rollbackTransaction.bind(driver);
    driver.rollbackTransaction = async (connection) => {
      if (this.handle.inTransaction) await rollback(connection);
    };
    const closing = this.closing;
    if (closing) driver.beginTransaction = () => beginImmediate(this.handle, closing);
    return driver;
  }
}

/**
 * The SQLite import connection's page cache (negative: KiB) while it runs a large sort (index
 * builds, a span of rollups): SQLite sorts in memory up to the cache's size before spilling to
 * temporary files, so with a smaller cache meanwhile, sort and cache together keep an import
 * within its memory bound, at no measurable cost in speed.
 */
export const SORTING_CACHE_KIB = -16 * 1024;

/**
 * Runs `read` inside one read-only transaction on one connection, so that all its statements see
 * the same committed state (InnoDB's consistent snapshot; SQLite's WAL snapshot), never part of an
 * import that commits in between. `read` gets a Database whose `db` is that transaction.
 */
export function readConsistently<T>(database: Database, read: (reader: Database) => Promise<T>): Promise<T> {
  return database.db
    .transaction()
    .setAccessMode('read only')
    .execute((trx) => read({ ...database, db: trx }));
}

/** Opens the database named by the configuration (creating the SQLite file and folder if needed). */
export function openDatabase(config: DatabaseConfig, options: OpenOptions = {}): Database {
  const log = options.onQueryError
    ? (event: LogEvent) => {
        if (event.level === 'error') options.onQueryError!(event.error);
      }
    : undefined;
  if (config.kind === 'mysql') {
    const pool = createPool(mysqlPoolOptions(config.url));
    // A pool error (server gone) must never take the process down; queries report it instead.
    pool.on('connection', (conn) => conn.on('error', () => {}));
    const db = new Kysely<Tables>({ dialect: new MysqlDialect({ pool }), log });
    return { kind: 'mysql', db, writer: db, close: () => db.destroy() };
  }

  const open = (cacheMiB: number) => {
    if (config.path !== ':memory:') mkdirSync(path.dirname(config.path), { recursive: true });
    const conn = new SqliteDatabase(config.path);
    conn.pragma('journal_mode = WAL');
    conn.pragma('synchronous = NORMAL');
    conn.pragma('foreign_keys = ON');
    conn.pragma('busy_timeout = 5000');
    // Page cache: the import connection keeps the hot part of the unique index in memory (a
    // large file loads far faster than with the 2 MiB default); 32 MiB rather than more, because
    // sorts (index builds, rollups) may use as much again, and an import stays under 200 MB RSS.
    // The read connection needs little.
    conn.pragma(`cache_size = -${cacheMiB * 1024}`);
    // Sorts and DISTINCT of the rollup refresh spill to temporary files, not to the heap.
    conn.pragma('temp_store = FILE');
    // SQLite has no hash function; the rollups name an order's set of products by its SHA-256,
    // as MySQL's SHA2(…, 256) does (src/metrics/rollups.ts).
    conn.function('zinc_sha256', { deterministic: true }, (text) =>
      createHash('sha256').update(String(text)).digest('hex'),
    );
    return conn;
  };
  const writerHandle = open(32);
  let closing = false;
  const writer = new Kysely<Tables>({ dialect: new SqliteDialectKeepingErrors(writerHandle, () => closing), log });
  const db =
    config.path === ':memory:' ? writer : new Kysely<Tables>({ dialect: new SqliteDialectKeepingErrors(open(16)), log });
  return {
    kind: 'sqlite',
    db,
    writer,
    sqliteWriter: writerHandle,
    close: async () => {
      closing = true;
      if (db !== writer) await db.destroy();
      await writer.destroy();
    },
  };
}
