import type SqliteDatabase from 'better-sqlite3';
import { sql } from 'kysely';
import { SORTING_CACHE_KIB, type Database, type DB } from '../db/connection.js';
import { InfileLoad, TSV, tsvField } from '../db/infile.js';
import { centsToDb, formatCents } from '../money.js';
import type { RowError, SaleRow } from './sales-row.js';

/**
 * The store step of the import pipeline, one per database path. Every path has the same
 * semantics: a new identity is inserted; an identity stored by another import is replaced (the
 * old row goes to `sales_history`, so undo can restore it); an identity this file already stored
 * is a row error pointing at the earlier line. Repeats are found by the database, never by a set
 * of every identity in memory, so memory stays flat whatever the file's size.
 */
export interface SalesWriter {
  /** Which path this is, for the log: `sqlite`, `mysql-load-data` or `mysql-insert`. */
  readonly method: string;
  /** Stores a batch of validated rows (in file order). Returns repeats found so far. */
  write(rows: SaleRow[]): Promise<RowError[]>;
  /**
   * Called after the last batch. When some identities were already stored, a writer may need the
   * valid rows once more (`replay`) to reconcile them with set-based SQL.
   */
  end(): Promise<{ needsReplay: boolean; needsReconcile?: boolean }>;
  replay(rows: SaleRow[]): Promise<void>;
  /** Settles the replayed rows: replacements written, repeats returned (the first `keep`, plus the count). */
  reconcile(keep: number): Promise<{ errors: RowError[]; count: number }>;
  /**
   * Settles anything still running after a failure, so the transaction can roll back (a LOAD DATA
   * statement waiting for more rows would otherwise hold the connection forever).
   */
  abort(): Promise<void>;
  /** Rows stored (inserted or replacing) so far. */
  readonly stored: number;
  /** Of those, rows that replaced a row another import had stored (known once reconciled). */
  readonly replaced: number;
}

export type MysqlLoadMethod = 'auto' | 'load-data' | 'insert';

/** Picks the writer for the database; on MySQL, LOAD DATA LOCAL INFILE unless the server refuses it. */
export async function createSalesWriter(
  database: Database,
  trx: DB,
  importId: number,
  mysqlMethod: MysqlLoadMethod,
  bulk = false,
): Promise<SalesWriter> {
  if (database.kind === 'sqlite') {
    const writer = new SqliteWriter(database, importId);
    if (bulk) writer.deferIndexes();
    return writer;
  }
  const useLoadData = mysqlMethod === 'load-data' || (mysqlMethod === 'auto' && (await localInfileEnabled(trx)));
  return useLoadData ? new MysqlLoadDataWriter(trx, importId) : new MysqlInsertWriter(trx, importId);
}

async function localInfileEnabled(db: DB): Promise<boolean> {
  const { rows } = await sql<{ on: number | string }>`SELECT @@GLOBAL.local_infile AS ${sql.ref('on')}`.execute(db);
  return Number(rows[0]?.on) === 1;
}

function repeatError(row: { line: number; orderId: string; productId: string }, earlierLine: number): RowError {
  return {
    line: row.line,
    column: null,
    message: `order_id "${clip(row.orderId)}" with product_id "${clip(row.productId)}" already appears on line ${earlierLine}`,
  };
}

function clip(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/** Bytes per CSV row assumed when estimating a file's rows from its size (real exports: 30–45). */
const ASSUMED_ROW_BYTES = 40;

/**
 * When SQLite builds the secondary indexes after the load instead of during it: the file has at
 * least `minRows` rows (estimated) and at least `tableShare` times the rows already stored. Tests
 * set 0 and 0 to take that way with small files.
 */
export const bulkLoadTuning = { minRows: 50_000, tableShare: 0.5 };

/**
 * SQLite: whether a file is large next to the table it goes into; then building the secondary
 * indexes once after the load (a sort) is cheaper than updating them row by row (random writes).
 * The table's size comes from the daily rollup, which is small, instead of a count over `sales`.
 * Asked before the import's transaction begins, on the read connection, so that the question
 * never waits for the write lock another process's import may hold.
 */
export async function isBulkLoad(database: Database, fileBytes: number): Promise<boolean> {
  if (database.kind !== 'sqlite') return false;
  const estimated = fileBytes / ASSUMED_ROW_BYTES;
  if (estimated < bulkLoadTuning.minRows) return false;
  const { rows } = await sql<{ n: number | null }>`SELECT SUM(sale_count) AS n FROM revenue_daily`.execute(database.db);
  return estimated >= Number(rows[0]?.n ?? 0) * bulkLoadTuning.tableShare;
}


/** SQLite: prepared statements on the writer connection, inside the import's transaction. */
class SqliteWriter implements SalesWriter {
  readonly method = 'sqlite';
  stored = 0;
  replaced = 0;
  /** The secondary indexes dropped for a bulk load, to be built again by end(). */
  private deferred: { name: string; sql: string }[] = [];
  private readonly conn: SqliteDatabase.Database;
  private readonly insert;
  private readonly find;
  private readonly keep;
  private readonly replace;

  constructor(
    database: Database,
    private readonly importId: number,
  ) {
    const conn = (this.conn = database.sqliteWriter!);
    this.insert = conn.prepare(
      `INSERT INTO sales (date, order_id, product_id, amount_sgd, imported_file_id, source_line)
       VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (order_id, product_id) DO NOTHING`,
    );
    this.find = conn.prepare(
      'SELECT id, date, amount_sgd, imported_file_id, source_line FROM sales WHERE order_id = ? AND product_id = ?',
    );
    this.keep = conn.prepare(
      `INSERT INTO sales_history (replaced_by_import_id, date, order_id, product_id, amount_sgd, imported_file_id, source_line)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    this.replace = conn.prepare(
      'UPDATE sales SET date = ?, amount_sgd = ?, imported_file_id = ?, source_line = ? WHERE id = ?',
    );
  }

  async write(rows: SaleRow[]): Promise<RowError[]> {
    const errors: RowError[] = [];
    const id = this.importId;
    for (const r of rows) {
      if (this.insert.run(r.date, r.orderId, r.productId, r.amountCents, id, r.line).changes === 1) {
        this.stored++;
        continue;
      }
      const old = this.find.get(r.orderId, r.productId) as {
        id: number;
        date: string;
        amount_sgd: number;
        imported_file_id: number;
        source_line: number;
      };
      if (old.imported_file_id === id) {
        errors.push(repeatError(r, old.source_line));
        continue;
      }
      this.keep.run(id, old.date, r.orderId, r.productId, old.amount_sgd, old.imported_file_id, old.source_line);
      this.replace.run(r.date, r.amountCents, id, r.line, old.id);
      this.replaced++;
      this.stored++;
    }
    return errors;
  }

  /**
   * Drops the non-unique indexes of `sales` until end() builds them again, inside the import's
   * transaction: readers keep seeing the indexes of the last commit, and a rollback or a crash
   * brings them back untouched. The unique identity index stays: it finds replacements and repeats.
   */
  deferIndexes(): void {
    this.deferred = this.conn
      .prepare(
        `SELECT name, sql FROM sqlite_master
         WHERE type = 'index' AND tbl_name = 'sales' AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE%'`,
      )
      .all() as { name: string; sql: string }[];
    for (const index of this.deferred) this.conn.exec(`DROP INDEX "${index.name.replaceAll('"', '""')}"`);
  }

  async end() {
    if (this.deferred.length > 0) {
      // Index builds are large sorts (see SORTING_CACHE_KIB).
      const cache = this.conn.pragma('cache_size', { simple: true }) as number;
      this.conn.pragma(`cache_size = ${SORTING_CACHE_KIB}`);
      try {
        for (const index of this.deferred) this.conn.exec(index.sql);
      } finally {
        this.conn.pragma(`cache_size = ${cache}`);
      }
    }
    this.deferred = [];
    return { needsReplay: false };
  }
  async abort(): Promise<void> {}
  async replay(): Promise<void> {}
  async reconcile() {
    return { errors: [], count: 0 };
  }
}

/**
 * MySQL, both paths: rows go straight into `sales`, skipping identities already stored (INSERT
 * IGNORE semantics). When fewer rows went in than were sent, the valid rows are replayed into
 * `sales_staging` and settled with a few set-based statements (`reconcile`).
 */
abstract class MysqlWriter implements SalesWriter {
  abstract readonly method: string;
  stored = 0;
  replaced = 0;
  protected sent = 0;

  constructor(
    protected readonly trx: DB,
    protected readonly importId: number,
  ) {}

  abstract write(rows: SaleRow[]): Promise<RowError[]>;
  async abort(): Promise<void> {}
  /** Stores the rows sent so far; resolves to how many were inserted. */
  protected abstract flushInserted(): Promise<number>;

  async end() {
    this.stored += await this.flushInserted();
    return { needsReplay: this.stored < this.sent };
  }

  async replay(rows: SaleRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.trx
      .insertInto('sales_staging')
      .values(
        rows.map((r) => ({
          import_id: this.importId,
          line: r.line,
          date: r.date,
          order_id: r.orderId,
          product_id: r.productId,
          amount_sgd: formatCents(r.amountCents),
        })),
      )
      .execute();
  }

  /**
   * `insertNew`: staging also holds rows whose identity is not stored at all (nothing went in
   * directly): those are inserted once the replacements are made.
   */
  async reconcile(keep: number, insertNew = false): Promise<{ errors: RowError[]; count: number }> {
    const { trx } = this;
    const id = this.importId;
    const identity = sql`s.order_id = st.order_id AND s.product_id = st.product_id`;
    const errors: RowError[] = [];
    let count = 0;
    // 1 and 2 only concern identities the bulk step stored for this file: none when it stored
    // nothing (a file whose every identity was stored already), and then they are skipped.
    if (this.stored > 0) count += await this.settleOwnRows(keep, errors);

    // 3. Left: identities other imports stored. A repeat among them defers to its first line;
    //    the later lines go, so that the staging rows left are exactly the replacements.
    //    Grouping (one pass over the identity index) rather than a self-join, which MySQL may
    //    plan as a scan per row; the listing and the deletion only when there are repeats.
    const firsts = sql`(SELECT order_id, product_id, MIN(line) AS first, COUNT(*) AS n
      FROM sales_staging WHERE import_id = ${id} GROUP BY order_id, product_id HAVING COUNT(*) > 1)`;
    const repeatCount = await sql<{ n: number | string | null }>`SELECT SUM(g.n - 1) AS n FROM ${firsts} g`.execute(trx);
    const repeatsLeft = Number(repeatCount.rows[0]?.n ?? 0);
    if (repeatsLeft > 0) {
      count += repeatsLeft;
      const repeats = await sql<{ line: number; first: number; order_id: string; product_id: string }>`
        SELECT st.line, g.first, st.order_id, st.product_id
        FROM sales_staging st JOIN ${firsts} g ON g.order_id = st.order_id AND g.product_id = st.product_id
        WHERE st.import_id = ${id} AND st.line > g.first ORDER BY st.line LIMIT ${keep}`.execute(trx);
      for (const r of repeats.rows) errors.push(repeatError({ line: r.line, orderId: r.order_id, productId: r.product_id }, r.first));
      await sql`DELETE st FROM sales_staging st JOIN ${firsts} g ON g.order_id = st.order_id AND g.product_id = st.product_id
        WHERE st.import_id = ${id} AND st.line > g.first`.execute(trx);
    }

    // 4. Replace: keep the old rows for undo, then overwrite them in place.
    //    The identity index is named: inside a large import's transaction MySQL may still hold an
    //    empty table's statistics for sales and join by scanning it (600 s for 100k rows).
    //    Staging first, each row then found through the identity index (MySQL would otherwise
    //    pick its own order, which inside a large import can be a scan of sales per staging row).
    const replacing = sql`sales_staging st STRAIGHT_JOIN sales s FORCE INDEX (sales_identity) ON ${identity}`;
    await sql`INSERT INTO sales_history (replaced_by_import_id, date, order_id, product_id, amount_sgd, imported_file_id, source_line)
      SELECT ${id}, s.date, s.order_id, s.product_id, s.amount_sgd, s.imported_file_id, s.source_line
      FROM ${replacing} WHERE st.import_id = ${id}`.execute(trx);
    const replaced = await sql`UPDATE ${replacing}
      SET s.date = st.date, s.amount_sgd = st.amount_sgd, s.imported_file_id = st.import_id, s.source_line = st.line
      WHERE st.import_id = ${id}`.execute(trx);
    this.replaced = Number(replaced.numAffectedRows ?? 0n);
    this.stored += this.replaced;
    if (insertNew) {
      // Left: identities stored nowhere (the replaced ones now belong to this import).
      const inserted = await sql`INSERT INTO sales (date, order_id, product_id, amount_sgd, imported_file_id, source_line)
        SELECT st.date, st.order_id, st.product_id, st.amount_sgd, st.import_id, st.line FROM sales_staging st
        WHERE st.import_id = ${id} AND NOT EXISTS (SELECT 1 FROM sales s FORCE INDEX (sales_identity) WHERE ${identity})`.execute(trx);
      this.stored += Number(inserted.numAffectedRows ?? 0n);
    }
    await sql`DELETE FROM sales_staging WHERE import_id = ${id}`.execute(trx);

    errors.sort((a, b) => a.line - b.line);
    return { errors: errors.slice(0, keep), count };
  }

  /**
   * Steps 1 and 2 of reconcile: staging rows the bulk step stored are settled; the others whose
   * identity this file stored (on an earlier line) are repeats. Adds the repeats (the first
   * `keep`) to `errors`; resolves to their count.
   */
  private async settleOwnRows(keep: number, errors: RowError[]): Promise<number> {
    const { trx } = this;
    const id = this.importId;
    const identity = sql`s.order_id = st.order_id AND s.product_id = st.product_id`;
    // 1. Rows the bulk step stored are settled.
    await sql`DELETE st FROM sales_staging st STRAIGHT_JOIN sales s FORCE INDEX (sales_identity) ON ${identity}
      AND s.imported_file_id = st.import_id AND s.source_line = st.line
      WHERE st.import_id = ${id}`.execute(trx);

    // 2. Repeats of an identity this file stored on an earlier line.
    const stored = await sql<{ line: number; first: number; order_id: string; product_id: string }>`
      SELECT st.line, s.source_line AS first, st.order_id, st.product_id
      FROM sales_staging st STRAIGHT_JOIN sales s FORCE INDEX (sales_identity) ON ${identity} AND s.imported_file_id = st.import_id
      WHERE st.import_id = ${id} ORDER BY st.line LIMIT ${keep}`.execute(trx);
    const removed = await sql`DELETE st FROM sales_staging st STRAIGHT_JOIN sales s FORCE INDEX (sales_identity) ON ${identity} AND s.imported_file_id = st.import_id
      WHERE st.import_id = ${id}`.execute(trx);
    for (const r of stored.rows) errors.push(repeatError({ line: r.line, orderId: r.order_id, productId: r.product_id }, r.first));
    return Number(removed.numAffectedRows ?? 0n);
  }
}

/** Multi-row INSERT IGNORE batches: the path when the server refuses local infile. */
class MysqlInsertWriter extends MysqlWriter {
  readonly method = 'mysql-insert';
  private inserted = 0;

  async write(rows: SaleRow[]): Promise<RowError[]> {
    if (rows.length === 0) return [];
    this.sent += rows.length;
    const result = await this.trx
      .insertInto('sales')
      .ignore()
      .values(
        rows.map((r) => ({
          date: r.date,
          order_id: r.orderId,
          product_id: r.productId,
          amount_sgd: centsToDb('mysql', r.amountCents),
          imported_file_id: this.importId,
          source_line: r.line,
        })),
      )
      .executeTakeFirst();
    this.inserted += Number(result.numInsertedOrUpdatedRows ?? 0n);
    return [];
  }

  protected async flushInserted(): Promise<number> {
    return this.inserted;
  }
}

/** LOAD DATA LOCAL INFILE fed by a stream of the validated rows as they are parsed. */
class MysqlLoadDataWriter extends MysqlWriter {
  readonly method = 'mysql-load-data';
  private load: InfileLoad | undefined;
  private staging: InfileLoad | undefined;

  /** Rows go to staging from the start: the file mostly replaces stored rows (see write). */
  private stagingFirst: boolean | undefined;

  async write(rows: SaleRow[]): Promise<RowError[]> {
    if (rows.length === 0) return [];
    // A file whose first rows are mostly stored already (a corrected export sent again) would
    // have nearly every row refused by the direct load (a duplicate key each), then sent again
    // to staging: it goes to staging at once, and reconcile inserts what is new.
    this.stagingFirst ??= (await this.storedShare(rows)) >= 0.5;
    this.sent += rows.length;
    if (this.stagingFirst) {
      await this.replay(rows);
      return [];
    }
    this.load ??= new InfileLoad(
      this.trx,
      (name) => sql`LOAD DATA LOCAL INFILE ${name} IGNORE INTO TABLE sales ${TSV}
        (date, order_id, product_id, amount_sgd, source_line) SET imported_file_id = ${this.importId}`,
    );
    let text = '';
    for (const r of rows) {
      text += `${r.date}\t${tsvField(r.orderId)}\t${tsvField(r.productId)}\t${formatCents(r.amountCents)}\t${r.line}\n`;
    }
    await this.load.write(text);
    return [];
  }

  /** The share of these rows whose identity is stored already. */
  private async storedShare(rows: SaleRow[]): Promise<number> {
    const sample = rows.slice(0, 500);
    const { rows: found } = await sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM sales FORCE INDEX (sales_identity)
      WHERE (order_id, product_id) IN (${sql.join(sample.map((r) => sql`(${r.orderId}, ${r.productId})`))})`.execute(this.trx);
    return Number(found[0]?.n ?? 0) / sample.length;
  }

  override async end() {
    if (this.stagingFirst) return { needsReplay: false, needsReconcile: true };
    return super.end();
  }

  protected async flushInserted(): Promise<number> {
    return this.load ? this.load.finish() : 0;
  }

  override async replay(rows: SaleRow[]): Promise<void> {
    if (rows.length === 0) return;
    this.staging ??= new InfileLoad(
      this.trx,
      (name) => sql`LOAD DATA LOCAL INFILE ${name} INTO TABLE sales_staging ${TSV}
        (line, date, order_id, product_id, amount_sgd) SET import_id = ${this.importId}`,
    );
    let text = '';
    for (const r of rows) {
      text += `${r.line}\t${r.date}\t${tsvField(r.orderId)}\t${tsvField(r.productId)}\t${formatCents(r.amountCents)}\n`;
    }
    await this.staging.write(text);
  }

  override async abort(): Promise<void> {
    await this.load?.settle();
    await this.staging?.settle();
  }

  override async reconcile(keep: number) {
    if (this.staging) await this.staging.finish();
    return super.reconcile(keep, this.stagingFirst === true);
  }
}
