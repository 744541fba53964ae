import type SqliteDatabase from 'better-sqlite3';
import { repeatError, type RowError, type SaleRow, type SalesWriter } from '../../sales-writer.js';
import { SORTING_CACHE_KIB } from './tuning.js';

/** SQLite: prepared statements on the writer connection, inside the import's transaction. */
export class SqliteSalesWriter implements SalesWriter {
  readonly method = 'sqlite';
  readonly loadsData = false;
  stored = 0;
  replaced = 0;
  /** The secondary indexes dropped for a bulk load, to be built again by end(). */
  private deferred: { name: string; sql: string }[] = [];
  private readonly insert;
  private readonly find;
  private readonly keep;
  private readonly replace;

  constructor(
    private readonly conn: SqliteDatabase.Database,
    private readonly importId: number,
  ) {
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
