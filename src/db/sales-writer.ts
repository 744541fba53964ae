/**
 * The store step of an import: what every database's bulk writer does (one per dialect, under
 * src/db/dialects/), and the rows it takes.
 */

/** A validated, normalised sale ready to store, with its physical line. Money in integer cents. */
export interface SaleRow {
  line: number;
  date: string;
  orderId: string;
  productId: string;
  amountCents: number;
}

/** What is wrong with one row: `column` is null when the whole row is at fault. */
export interface RowError {
  line: number;
  column: string | null;
  message: string;
}

/** How MySQL stores rows: LOAD DATA LOCAL INFILE unless the server refuses it (`auto`). */
export type MysqlLoadMethod = 'auto' | 'load-data' | 'insert';

export interface SalesWriterOptions {
  mysqlLoadMethod: MysqlLoadMethod;
  /** The file is large next to the table: build secondary indexes after the load where that pays. */
  bulk: boolean;
}

/**
 * Every writer has the same semantics: a new identity is inserted; an identity stored by another
 * import is replaced (the old row goes to `sales_history`, so undo can restore it); an identity
 * this file already stored is a row error pointing at the earlier line. Repeats are found by the
 * database, never by a set of every identity in memory, so memory stays flat whatever the file's
 * size.
 */
export interface SalesWriter {
  /** Which path this is, for the log: `sqlite`, `mysql-load-data` or `mysql-insert`. */
  readonly method: string;
  /** Whether rows went in by LOAD DATA LOCAL INFILE (the rollups may then append the same way). */
  readonly loadsData: boolean;
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

/** The row error of a repeated identity. */
export function repeatError(row: { line: number; orderId: string; productId: string }, earlierLine: number): RowError {
  return {
    line: row.line,
    column: null,
    message: `order_id "${clip(row.orderId)}" with product_id "${clip(row.productId)}" already appears on line ${earlierLine}`,
  };
}

function clip(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
