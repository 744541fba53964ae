import { sql } from 'kysely';
import { formatCents } from '../../../money.js';
import type { DB } from '../../database.js';
import { repeatError, type RowError, type SaleRow, type SalesWriter } from '../../sales-writer.js';
import { textField, mostlyStored } from '../shared.js';
import { InfileLoad, TSV, type InfileStreams } from './infile.js';

/**
 * MySQL, both paths: rows go straight into `sales`, skipping identities already stored (INSERT
 * IGNORE semantics). When fewer rows went in than were sent, the valid rows are replayed into
 * `sales_staging` and settled with a few set-based statements (`reconcile`).
 */
abstract class MysqlWriter implements SalesWriter {
  abstract readonly method: string;
  abstract readonly loadsData: boolean;
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
export class MysqlInsertWriter extends MysqlWriter {
  readonly method = 'mysql-insert';
  readonly loadsData = false;
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
          amount_sgd: formatCents(r.amountCents),
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
export class MysqlLoadDataWriter extends MysqlWriter {
  readonly method = 'mysql-load-data';
  readonly loadsData = true;
  private load: InfileLoad | undefined;
  private staging: InfileLoad | undefined;

  /** Rows go to staging from the start: the file mostly replaces stored rows (see write). */
  private stagingFirst: boolean | undefined;

  constructor(
    trx: DB,
    importId: number,
    private readonly streams: InfileStreams,
  ) {
    super(trx, importId);
  }

  async write(rows: SaleRow[]): Promise<RowError[]> {
    if (rows.length === 0) return [];
    // A file whose first rows are mostly stored goes to staging at once; reconcile inserts what is new.
    this.stagingFirst ??= await mostlyStored(this.trx, sql`sales FORCE INDEX (sales_identity)`, rows);
    this.sent += rows.length;
    if (this.stagingFirst) {
      await this.replay(rows);
      return [];
    }
    this.load ??= new InfileLoad(
      this.streams,
      this.trx,
      (name) => sql`LOAD DATA LOCAL INFILE ${name} IGNORE INTO TABLE sales ${TSV}
        (date, order_id, product_id, amount_sgd, source_line) SET imported_file_id = ${this.importId}`,
    );
    let text = '';
    for (const r of rows) {
      text += `${r.date}\t${textField(r.orderId)}\t${textField(r.productId)}\t${formatCents(r.amountCents)}\t${r.line}\n`;
    }
    await this.load.write(text);
    return [];
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
      this.streams,
      this.trx,
      (name) => sql`LOAD DATA LOCAL INFILE ${name} INTO TABLE sales_staging ${TSV}
        (line, date, order_id, product_id, amount_sgd) SET import_id = ${this.importId}`,
    );
    let text = '';
    for (const r of rows) {
      text += `${r.line}\t${r.date}\t${textField(r.orderId)}\t${textField(r.productId)}\t${formatCents(r.amountCents)}\n`;
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
