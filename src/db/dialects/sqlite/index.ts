import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect as KyselySqliteDialect, sql, type Driver, type LogEvent, type RawBuilder } from 'kysely';
import type { DatabaseConfig } from '../../../config.js';
import type { AnyDB, Database, DB, Dialect, DialectModule, DialectSql, FileClaims, KeyedWriter, ServerState, WriteLockHold } from '../../database.js';
import type { SalesWriterOptions } from '../../sales-writer.js';
import type { Tables } from '../../tables.js';
import { HELD_BY_CONNECTION, inSnapshotReadOnly, insertWithGeneratedId } from '../shared.js';
import { beginImmediate } from './begin-immediate.js';
import { claims } from './claims.js';
import { ASSUMED_ROW_BYTES, bulkLoadTuning, SORTING_CACHE_KIB } from './tuning.js';
import { SqliteSalesWriter } from './sales-writer.js';

type SqliteConfig = Extract<DatabaseConfig, { kind: 'sqlite' }>;

/**
 * SQLite, embedded: two connections to one WAL file, so readers keep answering from the last
 * committed state while an import holds the write lock. Money is integer cents (SQLite has no
 * exact decimal type); ids compare as bytes.
 */
export const sqliteModule: DialectModule<SqliteConfig> = {
  name: 'sqlite',
  backupExtension: 'sqlite',
  errorCodes: {
    unavailable: ['SQLITE_BUSY', 'SQLITE_CANTOPEN', 'SQLITE_IOERR'],
    notWritable: ['SQLITE_READONLY', 'SQLITE_READONLY_DBMOVED', 'SQLITE_READONLY_DIRECTORY', 'SQLITE_FULL'],
  },
  /** Integer cents, within the doubles better-sqlite3 binds exactly. */
  centsToDb(cents) {
    const n = Number(cents);
    if (!Number.isSafeInteger(n)) throw new RangeError(`${cents} cents is beyond SQLite's exact integers in this client`);
    return n;
  },
  centsFromDb(value) {
    if (value === null) return 0n;
    if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new RangeError(`inexact cents: ${value}`);
    return BigInt(value);
  },
  open(config, options) {
    const log = options.onQueryError
      ? (event: LogEvent) => {
          if (event.level === 'error') options.onQueryError!(event.error);
        }
      : undefined;
    const writerHandle = openHandle(config.path, 32);
    let closing = false;
    const writer = new Kysely<Tables>({ dialect: new KeepingErrors(writerHandle, () => closing), log });
    const db =
      config.path === ':memory:' ? writer : new Kysely<Tables>({ dialect: new KeepingErrors(openHandle(config.path, 16)), log });
    return {
      dialect: new SqliteDialect(writerHandle, db),
      db,
      writer,
      close: async () => {
        closing = true;
        if (db !== writer) await db.destroy();
        await writer.destroy();
      },
    } satisfies Database;
  },
  /** The online backup API: a consistent copy while the service keeps writing. */
  async backup(config, file) {
    const conn = new SqliteDatabase(config.path, { readonly: true, fileMustExist: true });
    try {
      await conn.backup(file);
    } finally {
      conn.close();
    }
  },
};

function openHandle(file: string, cacheMiB: number): SqliteDatabase.Database {
  if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
  const conn = new SqliteDatabase(file);
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
  // SQLite has no hash function; baskets are named by their SHA-256, as MySQL's SHA2(…, 256) does.
  conn.function('zinc_sha256', { deterministic: true }, (text) => createHash('sha256').update(String(text)).digest('hex'));
  return conn;
}

/**
 * SQLite rolls a transaction back by itself on some errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM):
 * Kysely's ROLLBACK then fails with "no transaction is active" and that error would replace the
 * real one (a full disk would read as a bug). Roll back only what is still open.
 */
class KeepingErrors extends KyselySqliteDialect {
  constructor(
    private readonly handle: SqliteDatabase.Database,
    /** The writer connection's: its transactions take the write lock at BEGIN (beginImmediate). */
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

const SQL: DialectSql = {
  insertIgnoring: (into, rows) => sql`INSERT OR IGNORE INTO ${into} ${rows}`,
  indexed: (table, alias) => sql`${sql.table(table)} ${sql.raw(alias)}`,
  scanned: (table) => sql`${sql.table(table)} NOT INDEXED`,
  joinInOrder: sql`JOIN`,
  selectInOrder: sql``,
  bigResult: sql``,
  weekOf: (date) => sql`date(${date}, '-6 days', 'weekday 1')`,
  monthOf: (date) => sql`(substr(${date}, 1, 8) || '01')`,
  sha256: (text) => sql`zinc_sha256(${text})`,
  basketKey: (column) => sql`group_concat(length(${sql.ref(column)}) || ':' || ${sql.ref(column)}, '' ORDER BY ${sql.ref(column)})`,
  updateJoined: ({ target, source, on, set, where }) =>
    sql`UPDATE ${sql.table(target[0])} AS ${sql.raw(target[1])}
      SET ${sql.join(set.map(([column, value]) => sql`${sql.ref(column)} = ${value}`))}
      FROM ${sql.table(source[0])} AS ${sql.raw(source[1])} WHERE ${on} AND ${where}`,
};

class SqliteDialect implements Dialect {
  readonly name = 'sqlite';
  readonly sql = SQL;
  readonly idsPadSpaces = false;
  readonly claims: FileClaims = claims;
  /** One instance's file: its progress stays in memory (a write here would wait for the import's lock). */
  readonly sharesImportProgress = false;

  constructor(
    /** The raw handle behind the writer: prepared statements on the import's hot path. */
    private readonly handle: SqliteDatabase.Database,
    private readonly reader: DB,
  ) {}

  readonly centsToDb = sqliteModule.centsToDb;
  readonly centsFromDb = sqliteModule.centsFromDb;

  /** A read transaction on the reader connection reads one WAL snapshot. */
  readonly inSnapshot = inSnapshotReadOnly;
  readonly insertReturningId = insertWithGeneratedId;

  isUniqueViolation(error: unknown): boolean {
    return (error as { code?: unknown }).code === 'SQLITE_CONSTRAINT_UNIQUE';
  }

  /**
   * None can happen inside a change: its transaction takes the write lock at BEGIN IMMEDIATE
   * (begin-immediate.ts, which waits for it), so no statement in it meets another writer
   * (SQLITE_BUSY), nor can a snapshot it read go stale before it writes (SQLITE_BUSY_SNAPSHOT is
   * for a read transaction that upgrades to a write), and a WAL COMMIT waits for no reader.
   */
  conflictCode(_error: unknown): string | undefined {
    return undefined;
  }

  /** The transaction takes the database's own lock at BEGIN (beginImmediate): nothing more to hold. */
  withWriteLock<T>(_conn: DB, work: (hold: WriteLockHold) => Promise<T>): Promise<T> {
    return work(HELD_BY_CONNECTION);
  }

  async createSalesWriter(_trx: DB, importId: number, options: SalesWriterOptions) {
    const writer = new SqliteSalesWriter(this.handle, importId);
    if (options.bulk) writer.deferIndexes();
    return writer;
  }

  /**
   * Whether a file is large next to the table it goes into; then building the secondary indexes
   * once after the load (a sort) is cheaper than updating them row by row (random writes). The
   * table's size comes from the daily rollup, which is small, instead of a count over `sales`.
   * Asked before the import's transaction begins, on the read connection, so that the question
   * never waits for the write lock another process's import may hold.
   */
  async isBulkLoad(fileBytes: number): Promise<boolean> {
    const estimated = fileBytes / ASSUMED_ROW_BYTES;
    if (estimated < bulkLoadTuning.minRows) return false;
    const { rows } = await sql<{ n: number | null }>`SELECT SUM(sale_count) AS n FROM revenue_daily`.execute(this.reader);
    return estimated >= Number(rows[0]?.n ?? 0) * bulkLoadTuning.tableShare;
  }

  /** Prepared statements on the import's connection (already inside its transaction). */
  keyedWriter(): KeyedWriter {
    const handle = this.handle;
    const insert = (table: string, columns: readonly string[]) =>
      `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`;
    return {
      async addByKey(table, keys, adds, rows) {
        const statement = handle.prepare(
          `${insert(table, [...keys, ...adds])}
           ON CONFLICT (${keys.join(', ')}) DO UPDATE SET ${adds.map((c) => `${c} = ${c} + excluded.${c}`).join(', ')}`,
        );
        for (const row of rows()) statement.run(...row);
      },
      async insertMissing(table, columns, rows) {
        const statement = handle.prepare(`${insert(table, columns).replace('INSERT', 'INSERT OR IGNORE')}`);
        for (const row of rows()) statement.run(...row);
      },
    };
  }

  /** Synchronous iteration on the writer's own handle (inside its transaction): no promise a row. */
  async *iterate<T>(db: AnyDB, query: RawBuilder<T>): AsyncIterable<T> {
    const compiled = query.compile(db);
    yield* this.handle.prepare(compiled.sql).iterate(...compiled.parameters) as IterableIterator<T>;
  }

  async bumpDataVersion(db: AnyDB, start: number): Promise<void> {
    await sql`INSERT INTO data_version (id, version) VALUES (1, ${start})
      ON CONFLICT (id) DO UPDATE SET version = version + 1`.execute(db);
  }

  /**
   * SQLite sorts in memory up to its page cache before spilling to temporary files: the basket
   * pass of a rebuild nests several large sorts (225 MB at the writer's 32 MiB cache, 177 MB at
   * 16 MiB, for that pass alone at 5M rows, and no slower).
   */
  async withLargeAggregates<T>(db: AnyDB, run: () => Promise<T>): Promise<T> {
    const { rows } = await sql<{ cache_size: number }>`PRAGMA cache_size`.execute(db);
    await sql`PRAGMA cache_size = ${sql.raw(String(SORTING_CACHE_KIB))}`.execute(db);
    try {
      return await run();
    } finally {
      await sql`PRAGMA cache_size = ${sql.raw(String(Number(rows[0]!.cache_size)))}`.execute(db);
    }
  }

  /** A local file: no server to name, no cluster. */
  async serverState(): Promise<ServerState> {
    return { usable: true };
  }
}
