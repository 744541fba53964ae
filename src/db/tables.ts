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

/**
 * How far a running import has got, written by the instance running it for the others to show
 * (src/imports/import-progress.ts); deleted when the import ends. Only where the dialect shares
 * progress (`Dialect.sharesImportProgress`).
 */
export interface ImportProgressTable {
  import_id: number;
  bytes_read: number;
  bytes_total: number;
  rows_read: number;
  /** UTC, `YYYY-MM-DD HH:MM:SS.mmm`, by the importing instance's clock. */
  started_at: string;
  updated_at: string;
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

/**
 * The pre-aggregated revenue tables (created by migrations 2026-11-25T0200-revenue-rollups,
 * 2026-12-01T0000-basket-rollups, 2026-12-01T0100-period-rollups, reshaped by
 * 2026-12-06T0000-stream-rollups) kept by every change to `sales` (src/write/rollup-upkeep.ts) and
 * rebuilt from it by src/write/rollup-rebuild.ts, the reference the upkeep is tested against.
 * Money columns hold what `sales.amount_sgd` holds on each database
 * (DECIMAL on MySQL, integer cents on SQLite); read them only through the dialect's `centsFromDb`.
 */
export type RollupTables = {
  revenue_daily: { date: string; revenue: string | number; sale_count: number; order_count: number };
  revenue_daily_product: { product_id: string; date: string; revenue: string | number; sale_count: number };
  revenue_monthly_product: { month: string; product_id: string; revenue: string | number; sale_count: number };
  /** Running sums of revenue_monthly_product over all months so far, per product. */
  revenue_product_cum: { product_id: string; month: string; revenue: string | number; sale_count: number | string };
  revenue_multiday_lines: { order_id: string; product_id: string; date: string };
  /** The distinct (order, date) pairs of revenue_multiday_lines, with the order's date before. */
  revenue_multiday_days: { order_id: string; date: string; prev_date: string | null };
  /**
   * Per basket (an order's set of products on one date, when it holds two or more) and date: how
   * many orders hold exactly that set that day.
   */
  revenue_daily_basket: { basket: string; date: string; order_count: number };
  /** The products of each basket (never removed: a basket's products are its name). */
  revenue_basket_products: { product_id: string; basket: string };
  /** revenue_daily_product summed by ISO week (labelled by its Monday). */
  revenue_weekly_product: { product_id: string; week: string; revenue: string | number; sale_count: number };
  data_version: { id: number; version: number | string };
  /** The orders one change (import or undo, by id) recomputes from their stored lines. */
  rollup_orders: { change_id: number; order_id: string };
};

export interface Tables extends RollupTables {
  imported_files: ImportedFilesTable;
  import_progress: ImportProgressTable;
  sales: SalesTable;
  sales_history: SalesHistoryTable;
  sales_staging: SalesStagingTable;
}
