import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { Kysely, sql, type LogEvent, type RawBuilder } from 'kysely';
import type { PoolOptions } from 'mysql2';
import type { DatabaseConfig } from '../../../config.js';
import { decimalToCents, formatCents } from '../../../money.js';
import type { AnyDB, Database, DB, Dialect, DialectModule, DialectSql, FileClaims, KeyedWriter, ServerState, WriteLockHold } from '../../database.js';
import type { SalesWriterOptions } from '../../sales-writer.js';
import type { Tables } from '../../tables.js';
import { inSnapshotReadOnly, insertWithGeneratedId, inStatements, loadAsText, rowsWhere, valuesList } from '../shared.js';
import { withStreamingReplication } from './galera.js';
import { firstAnsweringUrl, HostPools } from './host-pools.js';
import { InfileLoad, InfileStreams, TSV } from './infile.js';
import { MysqlLocks } from './locks.js';
import { MysqlInsertWriter, MysqlLoadDataWriter } from './sales-writer.js';

type MysqlConfig = Extract<DatabaseConfig, { kind: 'mysql' }>;

/**
 * MySQL 8 and MariaDB: one pool for reads and writes. Money is DECIMAL, read back as exact
 * strings; ids compare as utf8mb4_bin does (with PAD SPACE).
 */
export const mysqlModule: DialectModule<MysqlConfig> = {
  name: 'mysql',
  backupExtension: 'sql',
  errorCodes: {
    unavailable: [
      'PROTOCOL_CONNECTION_LOST',
      'PROTOCOL_SEQUENCE_TIMEOUT',
      'ER_CON_COUNT_ERROR',
      'ER_ACCESS_DENIED_ERROR',
      'ER_BAD_DB_ERROR',
      'ER_SERVER_SHUTDOWN',
      'ER_LOCK_WAIT_TIMEOUT',
      'ER_UNKNOWN_COM_ERROR', // 1047: a Galera node not ready ("WSREP has not yet prepared node")
      'ZINC_DB_STALLED', // a statement found stalled (statement-watch.ts)
    ],
    notWritable: [
      'ER_DISK_FULL',
      'ER_RECORD_FILE_FULL',
      'ER_OPTION_PREVENTS_STATEMENT', // read_only / super_read_only server
      'ER_READ_ONLY_MODE',
    ],
  },
  /** DECIMAL(14,2) as exact decimal text, both ways. */
  centsToDb: (cents) => formatCents(cents),
  centsFromDb: (value) => (value === null ? 0n : decimalToCents(String(value))),
  open(config, options) {
    const streams = new InfileStreams();
    // One pool per host of the URL, used first to last (host-pools.ts); one host: one pool.
    const hosts = config.hosts ?? [{ host: config.host, port: config.port }];
    const pool = new HostPools(config.url, hosts, poolOptions(config.poolSize ?? 10, streams), (conn) => {
      // Basket keys (GROUP_CONCAT of a basket's product ids) must never be cut at 1 KiB.
      conn.query('SET SESSION group_concat_max_len = 4294967295', () => {});
    });
    const log = options.onQueryError
      ? (event: LogEvent) => {
          if (event.level === 'error') options.onQueryError!(event.error);
        }
      : undefined;
    // Named locks, or leases on a Galera cluster; Kysely's migration lock too (locks.ts).
    const locks = new MysqlLocks((): DB => db);
    const db: DB = new Kysely<Tables>({ dialect: locks.kyselyDialect({ pool }), log });
    return { dialect: new MysqlDialect(locks, streams, pool), db, writer: db, close: () => db.destroy() } satisfies Database;
  },
  /** `mysqldump --single-transaction` (or `mariadb-dump`): a consistent copy while the service runs. */
  async backup(config, file) {
    const tool = ['mysqldump', 'mariadb-dump'].find((name) => spawnSync(name, ['--version']).status === 0);
    if (!tool) {
      throw new Error(
        'neither mysqldump nor mariadb-dump is installed; install the MySQL client tools (e.g. apt-get install default-mysql-client)',
      );
    }
    // With several hosts, the first that answers (mysqldump takes one).
    const url = new URL(await firstAnsweringUrl(config.url, config.hosts ?? [{ host: config.host, port: config.port }]));
    const args = [
      '--single-transaction',
      '--quick',
      '--no-tablespaces',
      '--skip-lock-tables',
      `--host=${url.hostname}`,
      `--port=${url.port || config.port}`,
      `--user=${decodeURIComponent(url.username)}`,
      config.database,
    ];
    await new Promise<void>((resolve, reject) => {
      const child = spawn(tool, args, {
        // The password goes through the environment, never the command line (visible in ps).
        env: { ...process.env, MYSQL_PWD: decodeURIComponent(url.password) },
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
        else reject(new Error(`${tool} exited with ${code}: ${stderr.trim().split('\n').pop() ?? ''}`));
      });
    });
  },
};

/** mysql2 pool options Zinc relies on (each host's pool adds its URL). */
function poolOptions(size: number, streams: InfileStreams): PoolOptions {
  return {
    // DATE stays `YYYY-MM-DD`; no shift through the client's time zone.
    dateStrings: true,
    timezone: 'Z',
    // DECIMAL and SUM arrive as exact strings (never decimalNumbers).
    supportBigNumbers: true,
    bigNumberStrings: false,
    charset: 'UTF8MB4_UNICODE_CI',
    connectionLimit: size,
    connectTimeout: 5000,
    enableKeepAlive: true,
    multipleStatements: false,
    // Only streams this pool registered can be read by LOAD DATA LOCAL INFILE (see infile.ts).
    infileStreamFactory: streams.factory,
  };
}

const SQL: DialectSql = {
  insertIgnoring: (into, rows) => sql`INSERT IGNORE INTO ${into} ${rows}`,
  indexed: (table, alias, index) => sql`${sql.table(table)} ${sql.raw(alias)} FORCE INDEX (${sql.ref(index)})`,
  scanned: (table, index) => sql`${sql.table(table)} IGNORE INDEX (${sql.ref(index)})`,
  joinInOrder: sql`STRAIGHT_JOIN`,
  selectInOrder: sql`STRAIGHT_JOIN `,
  bigResult: sql`SQL_BIG_RESULT `,
  weekOf: (date) => sql`DATE_SUB(${date}, INTERVAL WEEKDAY(${date}) DAY)`,
  monthOf: (date) => sql`DATE_FORMAT(${date}, '%Y-%m-01')`,
  sha256: (text) => sql`SHA2(${text}, 256)`,
  basketKey: (column) =>
    sql`GROUP_CONCAT(CONCAT(CHAR_LENGTH(${sql.ref(column)}), ':', ${sql.ref(column)}) ORDER BY ${sql.ref(column)} SEPARATOR '')`,
  updateJoined: ({ target, source, on, set, where }) =>
    sql`UPDATE ${sql.table(target[0])} ${sql.raw(target[1])} JOIN ${sql.table(source[0])} ${sql.raw(source[1])} ON ${on}
      SET ${sql.join(set.map(([column, value]) => sql`${sql.ref(`${target[1]}.${column}`)} = ${value}`))} WHERE ${where}`,
};

class MysqlDialect implements Dialect {
  readonly name = 'mysql';
  readonly sql = SQL;
  readonly idsPadSpaces = true;
  readonly claims: FileClaims;
  /** Instances share the server: each shows the others' imports' progress (import_progress). */
  readonly sharesImportProgress = true;

  constructor(
    private readonly locks: MysqlLocks,
    private readonly streams: InfileStreams,
    private readonly pools: HostPools,
  ) {
    this.claims = locks.claims;
  }

  readonly centsToDb = mysqlModule.centsToDb;
  readonly centsFromDb = mysqlModule.centsFromDb;

  /**
   * InnoDB's REPEATABLE READ: a consistent snapshot from the first read. Read-only, so when its
   * node is lost under it, it runs again on the next host of the URL (host-pools.ts).
   */
  inSnapshot<T>(db: DB, read: (trx: DB) => Promise<T>): Promise<T> {
    return this.pools.retryingRead(() => inSnapshotReadOnly(db, read));
  }
  readonly insertReturningId = insertWithGeneratedId;

  isUniqueViolation(error: unknown): boolean {
    return (error as { code?: unknown }).code === 'ER_DUP_ENTRY';
  }

  /**
   * 1213 ER_LOCK_DEADLOCK: a deadlock, or on Galera a certification failure or a brute-force
   * abort by a replicated write; InnoDB has rolled the whole transaction back. 1205
   * ER_LOCK_WAIT_TIMEOUT too: InnoDB undoes only the statement (innodb_rollback_on_timeout=OFF,
   * the default), but changeSales runs again only after Kysely's ROLLBACK of the whole transaction.
   */
  conflictCode(error: unknown): string | undefined {
    const code = (error as { code?: unknown } | null)?.code;
    return code === 'ER_LOCK_DEADLOCK' ? '1213' : code === 'ER_LOCK_WAIT_TIMEOUT' ? '1205' : undefined;
  }

  withWriteLock<T>(conn: DB, work: (hold: WriteLockHold) => Promise<T>, signal?: AbortSignal): Promise<T> {
    // On a Galera cluster, every change to sales streams its transaction in fragments (galera.ts).
    const change = this.pools.galera ? (hold: WriteLockHold) => withStreamingReplication(conn, () => work(hold)) : work;
    return this.locks.withWriteLock(conn, change, signal);
  }

  /** The host in use and, on a Galera node, the cluster's state (host-pools.ts). */
  serverState(): Promise<ServerState> {
    return this.pools.state();
  }

  /** LOAD DATA LOCAL INFILE unless the server refuses it (`auto`), or multi-row INSERT IGNORE. */
  async createSalesWriter(trx: DB, importId: number, options: SalesWriterOptions) {
    const method = options.mysqlLoadMethod;
    const useLoadData = method === 'load-data' || (method === 'auto' && (await localInfileEnabled(trx)));
    return useLoadData ? new MysqlLoadDataWriter(trx, importId, this.streams) : new MysqlInsertWriter(trx, importId);
  }

  /** InnoDB keeps its indexes as it loads: there is no cheaper bulk path to take. */
  async isBulkLoad(): Promise<boolean> {
    return false;
  }

  /**
   * Multi-row INSERT … ON DUPLICATE KEY UPDATE; with `loadData`, rows for keys no stored row can
   * hold go in by LOAD DATA LOCAL INFILE first.
   */
  keyedWriter(db: AnyDB, options: { loadData: boolean }): KeyedWriter {
    const streams = this.streams;
    return {
      async addByKey(table, keys, adds, rows, fresh) {
        const columns = [...keys, ...adds];
        const appending = Boolean(fresh && options.loadData);
        if (appending) await loadRows(streams, db, table, columns, rowsWhere(rows, fresh!), false);
        const update = sql.raw(adds.map((c) => `${c} = ${c} + VALUES(${c})`).join(', '));
        const merged = appending ? rowsWhere(rows, (row) => !fresh!(row)) : rows();
        await inStatements(merged, (chunk) =>
          sql`INSERT INTO ${sql.table(table)} (${sql.join(columns.map((c) => sql.ref(c)))}) VALUES ${valuesList(chunk)}
            ON DUPLICATE KEY UPDATE ${update}`.execute(db),
        );
      },
      async insertMissing(table, columns, rows) {
        if (options.loadData) return loadRows(streams, db, table, columns, rows(), true);
        await inStatements(rows(), (chunk) =>
          sql`INSERT IGNORE INTO ${sql.table(table)} (${sql.join(columns.map((c) => sql.ref(c)))}) VALUES ${valuesList(chunk)}`.execute(db),
        );
      },
    };
  }

  /** A streamed result on the transaction's connection. */
  async *iterate<T>(db: AnyDB, query: RawBuilder<T>): AsyncIterable<T> {
    for await (const result of db.getExecutor().stream<T>(query.compile(db), 2000)) yield* result.rows;
  }

  async bumpDataVersion(db: AnyDB, start: number): Promise<void> {
    await sql`INSERT INTO data_version (id, version) VALUES (1, ${start})
      ON DUPLICATE KEY UPDATE version = version + 1`.execute(db);
  }

  /**
   * The server sorts within its own buffers; GROUP_CONCAT is cut at group_concat_max_len (1 KiB
   * by default on MySQL 8), which every connection of the pool lifts, and so does this, in case
   * the session lowered it.
   */
  async withLargeAggregates<T>(db: AnyDB, run: () => Promise<T>): Promise<T> {
    await sql`SET SESSION group_concat_max_len = 4294967295`.execute(db);
    return run();
  }
}

async function localInfileEnabled(db: DB): Promise<boolean> {
  const { rows } = await sql<{ on: number | string }>`SELECT @@GLOBAL.local_infile AS ${sql.ref('on')}`.execute(db);
  return Number(rows[0]?.on) === 1;
}

/** Appends rows with LOAD DATA LOCAL INFILE (`ignore`: rows whose key is stored are skipped). */
function loadRows(
  streams: InfileStreams,
  db: AnyDB,
  table: string,
  columns: readonly string[],
  rows: Iterable<unknown[]>,
  ignore: boolean,
): Promise<void> {
  return loadAsText(
    rows,
    () =>
      new InfileLoad(
        streams,
        db,
        (name) => sql`LOAD DATA LOCAL INFILE ${name} ${ignore ? sql`IGNORE ` : sql``}INTO TABLE ${sql.table(table)} ${TSV}
          (${sql.join(columns.map((c) => sql.ref(c)))})`,
      ),
  );
}
