import type { Insertable, Kysely, RawBuilder } from 'kysely';
import type { DatabaseConfig } from '../config.js';
import type { SalesWriter, SalesWriterOptions } from './sales-writer.js';
import type { ImportedFilesTable, Tables } from './tables.js';

export type DB = Kysely<Tables>;
/** A Kysely instance over any set of tables (rollups, migrations): what the dialect's helpers take. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any table set: statements name their own tables
export type AnyDB = Kysely<any>;

/** The databases Zinc runs on: one module each under src/db/dialects/. */
export type DialectName = DatabaseConfig['kind'];

/**
 * One open database. `db` serves reads and short writes; `writer` is where imports write. How
 * they are opened (one pool, or two connections to one file) is the dialect's business.
 */
export interface Database {
  readonly dialect: Dialect;
  readonly db: DB;
  readonly writer: DB;
  close(): Promise<void>;
}

/**
 * Everything that differs between databases, behind one interface: code outside src/db/dialects/
 * never asks which database it is on, it asks the dialect. One instance per open database, so a
 * dialect may hold that database's raw handles (SQLite's prepared statements on the writer).
 */
export interface Dialect {
  readonly name: DialectName;
  /** SQL fragments that are spelled differently. */
  readonly sql: DialectSql;

  /**
   * How the database orders ids. MySQL's utf8mb4_bin pads with spaces (`'A'` sorts after
   * `'A\u0001'`); SQLite compares bytes. The import's order runs and basket keys follow it.
   */
  readonly idsPadSpaces: boolean;

  /** Cents as the money columns take them, and back (see MoneyColumns). */
  centsToDb(cents: number | bigint): string | number;
  centsFromDb(value: string | number | bigint | null): bigint;

  /**
   * Runs `work` (which opens and ends a transaction on `conn`) holding the database-wide writer
   * lock: one change to `sales` at a time, whichever process makes it (see src/db/write-lock.ts).
   * `work` gets the hold: a signal for losing it, and the fence to run just before COMMIT.
   */
  withWriteLock<T>(conn: DB, work: (hold: WriteLockHold) => Promise<T>, signal?: AbortSignal): Promise<T>;
  /**
   * Runs `read` in one read-only transaction whose statements all see one committed state (a
   * snapshot taken at its first read), never part of a change that commits meanwhile.
   */
  inSnapshot<T>(db: DB, read: (trx: DB) => Promise<T>): Promise<T>;
  /** Inserts an import record and resolves to its new id (generated key or RETURNING). */
  insertReturningId(db: DB, row: Insertable<ImportedFilesTable>): Promise<number>;
  /** Whether a failed statement broke a unique key (another writer stored the row first). */
  isUniqueViolation(error: unknown): boolean;
  /**
   * The code of an error that says the transaction conflicted with another writer and was (or,
   * once rolled back, will be) undone whole — a deadlock, a cluster's certification failure —
   * so that running the whole transaction again may succeed (`1213`, `40P01`); undefined for any
   * other error. changeSales runs its transaction again on these (src/write/sales-change.ts).
   */
  conflictCode(error: unknown): string | undefined;
  /** Per-file claims between processes (see src/imports/import-lease.ts). */
  readonly claims: FileClaims;
  /**
   * Whether a running import's progress is written to the database (`import_progress`) for the
   * other instances on it to show. Not on SQLite: one instance's file, where that write would
   * wait for the import's own write lock.
   */
  readonly sharesImportProgress: boolean;

  /** The store step of an import, inside its transaction `trx`. */
  createSalesWriter(trx: DB, importId: number, options: SalesWriterOptions): Promise<SalesWriter>;
  /** Whether a file of this size should be stored as a bulk load (indexes built after it). */
  isBulkLoad(fileBytes: number): Promise<boolean>;
  /** Adds rows to tables by key, in bulk, inside the caller's transaction `db`. */
  keyedWriter(db: AnyDB, options: { loadData: boolean }): KeyedWriter;
  /** The rows of a query one at a time, without holding them all (inside the caller's transaction). */
  iterate<T>(db: AnyDB, query: RawBuilder<T>): AsyncIterable<T>;
  /** Moves the one-row data version on (or starts it at `start`), inside the caller's transaction. */
  bumpDataVersion(db: AnyDB, start: number): Promise<void>;
  /**
   * Runs `run` (large sorts and group concatenations over all of `sales`) on `db` with the
   * session settings they need: memory that keeps sorts within bounds, aggregates never cut.
   */
  withLargeAggregates<T>(db: AnyDB, run: () => Promise<T>): Promise<T>;
  /** Which server `db` works on and, on a cluster, its state, for /health (see ServerState). */
  serverState(db: DB): Promise<ServerState>;
}

/**
 * The server in use, for /health: where the database URL names several servers (or the server
 * is a cluster node), which one, and the cluster's state (a Galera node).
 */
export interface ServerState {
  /** False when no listed server can take queries: the one in use is not ready, and no other is. */
  usable: boolean;
  /** `host:port` of the server in use (with several hosts, or on a cluster). */
  node?: string;
  /** A Galera node's view of its cluster. */
  cluster?: { ready: boolean; size: number; state: string; status: string };
  /** Why it is not usable. */
  reason?: string;
}

export interface DialectSql {
  /**
   * An insert of `rows` (a SELECT or VALUES) into `into` (`table (columns)`) that skips rows whose
   * key is stored: `INSERT IGNORE`, `INSERT OR IGNORE`, `ON CONFLICT DO NOTHING`.
   */
  insertIgnoring(into: RawBuilder<unknown>, rows: RawBuilder<unknown>): RawBuilder<unknown>;
  /**
   * `table alias` read through `index`: named on MySQL, whose planner may hold an empty table's
   * statistics inside a large import's transaction and would scan; other planners pick well.
   */
  indexed(table: string, alias: string, index: string): RawBuilder<unknown>;
  /** `table` read by a full scan rather than through `index` (a pass over every row). */
  scanned(table: string, index: string): RawBuilder<unknown>;
  /** A join whose left side is read first (`STRAIGHT_JOIN` on MySQL). */
  readonly joinInOrder: RawBuilder<unknown>;
  /** After SELECT: join the FROM list in the order written. */
  readonly selectInOrder: RawBuilder<unknown>;
  /** After SELECT: a large GROUP BY result, sorted rather than hashed (MySQL's SQL_BIG_RESULT). */
  readonly bigResult: RawBuilder<unknown>;
  /** The Monday of `date`'s ISO week, as the database's date type. */
  weekOf(date: RawBuilder<unknown>): RawBuilder<unknown>;
  /** The first day of `date`'s month, as the database's date type. */
  monthOf(date: RawBuilder<unknown>): RawBuilder<unknown>;
  /** Lower-case hex SHA-256 of a text. */
  sha256(text: RawBuilder<unknown>): RawBuilder<unknown>;
  /**
   * The aggregate of a group's product ids sorted, each prefixed by its length and a colon
   * (`2:P13:P10`): a basket's key.
   */
  basketKey(column: string): RawBuilder<unknown>;
  /**
   * `UPDATE target SET … FROM source WHERE on AND where`, as the database spells an update
   * through a join. `target` and `source` are `table alias`; `set` pairs a target column with a
   * value (which may name the source's alias).
   */
  updateJoined(spec: {
    target: [table: string, alias: string];
    source: [table: string, alias: string];
    on: RawBuilder<unknown>;
    set: Array<[column: string, value: RawBuilder<unknown>]>;
    where: RawBuilder<unknown>;
  }): RawBuilder<unknown>;
}

/**
 * What the writer lock gives the work it runs. Where the lock dies with its connection (named
 * locks, advisory locks, SQLite's own lock) the signal never fires and the fence does nothing;
 * where it is a lease in a table (a Galera cluster, src/db/dialects/mysql/leases.ts) it can be
 * lost while the work runs (not renewed in time), and the fence is what keeps a holder that lost
 * it from committing.
 */
export interface WriteLockHold {
  /** Aborted (reason: WriteLockLost) once a lock held on the work's connection is lost: stop, nothing may commit. */
  readonly signal: AbortSignal;
  /**
   * Inside the work's transaction, its last statement before COMMIT: throws WriteLockLost unless
   * every lock held on the connection (writer lock, file claim) is still this holder's, and
   * renews them with the transaction, so that a lock taken over meanwhile fails the commit.
   */
  fence(trx: DB): Promise<void>;
}

/**
 * Which process is importing which file, across processes (MySQL: named locks that die with their
 * connection, or leases in a table on a Galera cluster; PostgreSQL: advisory locks; SQLite: the
 * file is local, so a record's owner process is checked directly).
 */
export interface FileClaims {
  /** Takes the claim for a file on `conn`, without waiting. False when another holds it. */
  acquire(conn: DB, sha256: string): Promise<boolean>;
  release(conn: DB, sha256: string): Promise<void>;
  /** Holds a claim on this process itself while it has records it has not started loading. */
  holdOwner(owner: string): Promise<() => Promise<void>>;
  /**
   * True when no live importer holds the file's record. `here` says who asks: this process's
   * owner tag, whether it still works on the file (`active`), and whether the asking connection
   * holds the file's claim itself (`leased`: then no one else can be loading it, and only the
   * record's owner can still be alive).
   */
  isAbandoned(
    db: DB,
    record: { sha256: string; owner: string | null },
    here: { owner: string; active: boolean; leased?: boolean },
  ): Promise<boolean>;
}

/** Adds rows to tables by key (see Dialect.keyedWriter). Rows are arrays in column order. */
export interface KeyedWriter {
  /**
   * Adds each row's `adds` columns to the stored row of its key, or stores the row. `fresh` tells
   * rows whose key no stored row can hold (they may be appended in bulk). `rows` may be walked
   * more than once.
   */
  addByKey(
    table: string,
    keys: readonly string[],
    adds: readonly string[],
    rows: () => Iterable<unknown[]>,
    fresh?: (row: unknown[]) => boolean,
  ): Promise<void>;
  /** Stores the rows whose key is not stored yet. */
  insertMissing(table: string, columns: readonly string[], rows: () => Iterable<unknown[]>): Promise<void>;
}

/** How money crosses into and out of a database's money columns: exact both ways. */
export interface MoneyColumns {
  /** Cents as the money columns take them (DECIMAL string, or integer cents). */
  centsToDb(cents: number | bigint): string | number;
  /** An amount or SUM as the database returns it → cents. */
  centsFromDb(value: string | number | bigint | null): bigint;
}

/** How a dialect is opened and backed up, before any database is open; its money columns. */
export interface DialectModule<C extends DatabaseConfig = DatabaseConfig> extends MoneyColumns {
  readonly name: C['kind'];
  open(config: C, options: OpenOptions): Database;
  /**
   * The driver's error codes that mean "cannot be reached right now" (503, retry) and "answers
   * but cannot be written" (read-only, disk full), for the HTTP error handler.
   */
  readonly errorCodes: {
    unavailable: readonly string[];
    notWritable: readonly string[];
    /** Errors a driver raises without a code when the connection is lost, by their message. */
    unavailableMessage?: RegExp;
  };
  /** The backup file's extension (`sqlite`, `sql`). */
  readonly backupExtension: string;
  /** Writes a consistent copy of the database to `file` while the service keeps running. */
  backup(config: C, file: string): Promise<void>;
}

export interface OpenOptions {
  /** Called for every failed query (metrics). */
  onQueryError?: (error: unknown) => void;
}

/**
 * Runs `read` inside one read-only transaction on one connection, so that all its statements see
 * the same committed state (InnoDB's consistent snapshot; SQLite's WAL snapshot; PostgreSQL's
 * REPEATABLE READ), never part of an import that commits in between. `read` gets a Database whose `db` is that transaction.
 */
export function readConsistently<T>(database: Database, read: (reader: Database) => Promise<T>): Promise<T> {
  return database.dialect.inSnapshot(database.db, (trx) => read({ ...database, db: trx }));
}
