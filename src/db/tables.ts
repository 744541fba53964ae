import type { ColumnType, Generated } from 'kysely';

/**
 * Row types as the database stores them. Wire shapes live in the presenters;
 * money crosses between the two only through src/money.ts.
 */
export type ImportStatus = 'processing' | 'success' | 'partial' | 'failed' | 'reverted';

export interface ImportedFilesTable {
  id: Generated<number>;
  filename: string;
  sha256: string;
  size_bytes: number;
  /** UTC, `YYYY-MM-DD HH:MM:SS.mmm` on both databases. */
  imported_at: string;
  num_rows: number;
  rows_rejected: number;
  status: ImportStatus;
  error_message: string | null;
  error_count: number;
  /** JSON: the first 100 row errors. */
  errors: string;
  /** JSON: file-level warnings such as ignored columns. */
  warnings: string;
  on_error: 'fail' | 'skip';
  /** Who holds the import while it is `processing` (see imports/import-lease.ts). */
  owner: string | null;
  duration_ms: number | null;
  /**
   * The smallest and largest order id the import stored (binary order), or null before it ends.
   * Imports whose ranges do not meet share no order (see metrics/rollup-upkeep.ts).
   */
  order_id_min: string | null;
  order_id_max: string | null;
}

export interface SalesTable {
  id: Generated<number>;
  /** `YYYY-MM-DD` (DATE on MySQL, TEXT on SQLite). */
  date: string;
  order_id: string;
  product_id: string;
  /**
   * MySQL: DECIMAL(14,2), read back as a decimal string.
   * SQLite: INTEGER cents (SQLite has no exact decimal type).
   */
  amount_sgd: ColumnType<string | number, string | number, string | number>;
  imported_file_id: number;
  /** Physical line of the source file where the row starts. */
  source_line: number;
}

/** A row some import replaced, kept so that undoing that import restores it. */
export interface SalesHistoryTable {
  id: Generated<number>;
  replaced_by_import_id: number;
  date: string;
  order_id: string;
  product_id: string;
  amount_sgd: ColumnType<string | number, string | number, string | number>;
  imported_file_id: number;
  source_line: number;
}

/** MySQL bulk loads reconcile conflicting identities here, inside the import's transaction. */
export interface SalesStagingTable {
  import_id: number;
  line: number;
  date: string;
  order_id: string;
  product_id: string;
  amount_sgd: ColumnType<string | number, string | number, string | number>;
}

export interface Tables {
  imported_files: ImportedFilesTable;
  sales: SalesTable;
  sales_history: SalesHistoryTable;
  sales_staging: SalesStagingTable;
}
