import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { Kysely, PostgresDialect as KyselyPostgresDialect, sql, type LogEvent, type RawBuilder } from 'kysely';
import pg from 'pg';
import Cursor from 'pg-cursor';
import type { DatabaseConfig } from '../../../config.js';
import { decimalToCents, formatCents } from '../../../money.js';
import type { AnyDB, Database, DB, Dialect, DialectModule, DialectSql, FileClaims, KeyedWriter, ServerState, WriteLockHold } from '../../database.js';
import type { SalesWriterOptions } from '../../sales-writer.js';
import type { Tables } from '../../tables.js';
import { inStatements, loadAsText, rowsWhere, valuesList } from '../shared.js';
import { CopyIn } from './copy.js';
import { fileClaims, withWriteLock } from './locks.js';
import { PostgresSalesWriter } from './sales-writer.js';

type PostgresConfig = Extract<DatabaseConfig, { kind: 'postgres' }>;

/**
 * How values come back, for this pool only (pg's global parsers stay untouched): NUMERIC as its
 * exact text (never a float), DATE as `YYYY-MM-DD` (no time zone shift), TIMESTAMP as
 * `YYYY-MM-DD HH:MM:SS.mmm` as the other databases give it, and BIGINT (counts, sums of counts,
 * ids) as a number: Zinc's never reach 2^53.
 */
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    switch (oid) {
      case pg.types.builtins.NUMERIC:
      case pg.types.builtins.DATE:
        return (value: string) => value;
      case pg.types.builtins.TIMESTAMP:
        return (value: string) => {
          const [day, time = '00:00:00'] = value.split(' ');
          const [whole, fraction = ''] = time.split('.');
          return `${day} ${whole}.${fraction.padEnd(3, '0').slice(0, 3)}`;
        };
      case pg.types.builtins.INT8:
        return (value: string) => {
          const n = Number(value);
          if (!Number.isSafeInteger(n)) throw new RangeError(`a bigint beyond 2^53 came back: ${value}`);
          return n;
        };
      default:
        return pg.types.getTypeParser(oid, format);
    }
  }) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * PostgreSQL: one pool for reads and writes. Money is NUMERIC, read back as exact strings; ids are
 * `COLLATE "C"` and compare byte for byte, as on SQLite.
 */
export const postgresModule: DialectModule<PostgresConfig> = {
  name: 'postgres',
  backupExtension: 'sql',
  centsToDb: (cents) => formatCents(cents),
  centsFromDb: (value) => (value === null ? 0n : decimalToCents(String(value))),
  errorCodes: {
    unavailable: [
      '57P01', // admin_shutdown
      '57P02', // crash_shutdown
      '57P03', // cannot_connect_now
      '08000', // connection_exception
      '08001', // sqlclient_unable_to_establish_sqlconnection
      '08003', // connection_does_not_exist
      '08006', // connection_failure
      '53300', // too_many_connections
      '3D000', // invalid_catalog_name: the database does not exist
      '28P01', // invalid_password
      '28000', // invalid_authorization_specification
      '55P03', // lock_not_available
    ],
    notWritable: [
      '25006', // read_only_sql_transaction (a standby, default_transaction_read_only)
      '53100', // disk_full
    ],
    unavailableMessage: /Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect|Connection closed/i,
  },
  open(config, options) {
    const pool = new pg.Pool({
      connectionString: config.url,
      max: config.poolSize ?? 10,
      connectionTimeoutMillis: 5000,
      keepAlive: true,
      types: TYPES,
    });
    // A client's error (server gone, idle or checked out) must never take the process down; the
    // query running on it, if any, reports it.
    pool.on('error', () => {});
    pool.on('connect', (client) => client.on('error', () => {}));
    const log = options.onQueryError
      ? (event: LogEvent) => {
          if (event.level === 'error') options.onQueryError!(event.error);
        }
      : undefined;
    const db = new Kysely<Tables>({ dialect: new KyselyPostgresDialect({ pool, cursor: Cursor }), log });
    return { dialect: new PostgresDialect(db), db, writer: db, close: () => db.destroy() } satisfies Database;
  },
  /** `pg_dump`: a consistent snapshot while the service keeps writing. */
  async backup(config, file) {
    if (spawnSync('pg_dump', ['--version']).status !== 0) {
      throw new Error(
        'pg_dump is not installed; install the PostgreSQL client tools (e.g. apt-get install postgresql-client), ' +
          `or run: pg_dump --no-owner --dbname=<DATABASE_URL> --file=${file}`,
      );
    }
    const url = new URL(config.url);
    const password = decodeURIComponent(url.password);
    url.password = '';
    await new Promise<void>((resolve, reject) => {
      const child = spawn('pg_dump', ['--no-owner', `--dbname=${url.toString()}`], {
        // The password goes through the environment, never the command line (visible in ps).
        env: { ...process.env, ...(password ? { PGPASSWORD: password } : {}) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const out = createWriteStream(file);
      let stderr = '';
      child.stdout.pipe(out);
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => {
        out.close();
        if (code === 0) resolve();
        else reject(new Error(`pg_dump exited with ${code}: ${stderr.trim().split('\n').pop() ?? ''}`));
      });
    });
  },
};

const SQL: DialectSql = {
  insertIgnoring: (into, rows) => sql`INSERT INTO ${into} ${rows} ON CONFLICT DO NOTHING`,
  indexed: (table, alias) => sql`${sql.table(table)} ${sql.raw(alias)}`,
  scanned: (table) => sql`${sql.table(table)}`,
  joinInOrder: sql`JOIN`,
  selectInOrder: sql``,
  bigResult: sql``,
  weekOf: (date) => sql`CAST(date_trunc('week', ${date}) AS date)`,
  monthOf: (date) => sql`CAST(date_trunc('month', ${date}) AS date)`,
  sha256: (text) => sql`encode(sha256(convert_to(${text}, 'UTF8')), 'hex')`,
  basketKey: (column) =>
    sql`string_agg(length(${sql.ref(column)}) || ':' || ${sql.ref(column)}, '' ORDER BY ${sql.ref(column)})`,
  updateJoined: ({ target, source, on, set, where }) =>
    sql`UPDATE ${sql.table(target[0])} AS ${sql.raw(target[1])}
      SET ${sql.join(set.map(([column, value]) => sql`${sql.ref(column)} = ${value}`))}
      FROM ${sql.table(source[0])} AS ${sql.raw(source[1])} WHERE ${on} AND ${where}`,
};

class PostgresDialect implements Dialect {
  readonly name = 'postgres';
  readonly sql = SQL;
  readonly idsPadSpaces = false;
  readonly claims: FileClaims;
  /** Instances share the server: each shows the others' imports' progress (import_progress). */
  readonly sharesImportProgress = true;
  readonly centsToDb = postgresModule.centsToDb;
  readonly centsFromDb = postgresModule.centsFromDb;

  constructor(writer: DB) {
    this.claims = fileClaims(writer);
  }

  isUniqueViolation(error: unknown): boolean {
    return (error as { code?: unknown } | null)?.code === '23505';
  }

  /**
   * 40P01 deadlock_detected (the server rolls the transaction back) and 40001
   * serialization_failure (a REPEATABLE READ or SERIALIZABLE transaction, none of Zinc's writes
   * today); the transaction is aborted, and ROLLBACK ends it.
   */
  conflictCode(error: unknown): string | undefined {
    const code = (error as { code?: unknown } | null)?.code;
    return code === '40P01' || code === '40001' ? code : undefined;
  }

  withWriteLock<T>(conn: DB, work: (hold: WriteLockHold) => Promise<T>, signal?: AbortSignal): Promise<T> {
    return withWriteLock(conn, work, signal);
  }

  async createSalesWriter(trx: DB, importId: number, _options: SalesWriterOptions) {
    return new PostgresSalesWriter(trx, importId);
  }

  /** Indexes are kept as rows arrive; COPY is the bulk path already. */
  async isBulkLoad(): Promise<boolean> {
    return false;
  }

  /** READ COMMITTED, the default, would see each statement's own commits: REPEATABLE READ is one snapshot. */
  inSnapshot<T>(db: DB, read: (trx: DB) => Promise<T>): Promise<T> {
    return db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(read);
  }

  async insertReturningId(db: DB, row: Parameters<Dialect['insertReturningId']>[1]): Promise<number> {
    const { id } = await db.insertInto('imported_files').values(row).returning('id').executeTakeFirstOrThrow();
    return Number(id);
  }

  /**
   * Multi-row INSERT … ON CONFLICT DO UPDATE; with `loadData`, rows for keys no stored row can hold
   * go in by COPY first.
   */
  keyedWriter(db: AnyDB, options: { loadData: boolean }): KeyedWriter {
    return {
      async addByKey(table, keys, adds, rows, fresh) {
        const columns = [...keys, ...adds];
        const appending = Boolean(fresh && options.loadData);
        if (appending) await copyRows(db, table, columns, rowsWhere(rows, fresh!));
        const update = sql.raw(adds.map((c) => `${c} = ${table}.${c} + EXCLUDED.${c}`).join(', '));
        const merged = appending ? rowsWhere(rows, (row) => !fresh!(row)) : rows();
        await inStatements(merged, (chunk) =>
          sql`INSERT INTO ${sql.table(table)} (${sql.join(columns.map((c) => sql.ref(c)))}) VALUES ${valuesList(chunk)}
            ON CONFLICT (${sql.join(keys.map((k) => sql.ref(k)))}) DO UPDATE SET ${update}`.execute(db),
        );
      },
      async insertMissing(table, columns, rows) {
        await inStatements(rows(), (chunk) =>
          sql`INSERT INTO ${sql.table(table)} (${sql.join(columns.map((c) => sql.ref(c)))}) VALUES ${valuesList(chunk)}
            ON CONFLICT DO NOTHING`.execute(db),
        );
      },
    };
  }

  /** A cursor on the transaction's connection. */
  async *iterate<T>(db: AnyDB, query: RawBuilder<T>): AsyncIterable<T> {
    for await (const result of db.getExecutor().stream<T>(query.compile(db), 2000)) yield* result.rows;
  }

  async bumpDataVersion(db: AnyDB, start: number): Promise<void> {
    await sql`INSERT INTO data_version (id, version) VALUES (1, ${start})
      ON CONFLICT (id) DO UPDATE SET version = data_version.version + 1`.execute(db);
  }

  /** The rebuild's sorts and aggregates get room in memory for its transaction only. */
  async withLargeAggregates<T>(db: AnyDB, run: () => Promise<T>): Promise<T> {
    await sql`SET LOCAL work_mem = '64MB'`.execute(db);
    return run();
  }

  /** One server (PostgreSQL has no multi-primary cluster): nothing more to report than SELECT 1 does. */
  async serverState(): Promise<ServerState> {
    return { usable: true };
  }
}

/** Appends rows with COPY (their keys are known to be new). */
function copyRows(db: AnyDB, table: string, columns: readonly string[], rows: Iterable<unknown[]>): Promise<void> {
  return loadAsText(rows, () => CopyIn.start(db, `COPY ${table} (${columns.join(', ')}) FROM STDIN`));
}
