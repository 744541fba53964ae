/** The API's answers, as far as the dashboard reads them (see /docs for the full document). */

export type Granularity = 'day' | 'week' | 'month';

interface Totals {
  total_revenue: string;
  order_count: number;
  sale_count: number;
  average_order_value: string | null;
}

interface MoneyChange {
  absolute: string | null;
  percent: string | null;
}
interface CountChange {
  absolute: number;
  percent: string | null;
}

export interface TotalsAnswer extends Totals {
  start: string | null;
  end: string | null;
  previous?: Totals & { start: string; end: string };
  change?: {
    total_revenue: MoneyChange;
    order_count: CountChange;
    sale_count: CountChange;
    average_order_value: MoneyChange;
  };
}

export interface Period {
  period: string;
  start: string;
  end: string;
  partial: boolean;
  revenue: string;
  order_count: number;
  sale_count: number;
}

export interface SeriesAnswer {
  start: string | null;
  end: string | null;
  granularity: string;
  periods: Period[];
}

export interface ProductRow {
  product_id: string;
  revenue: string;
  share: string | null;
  order_count: number;
  sale_count: number;
}

export interface ByProductAnswer {
  total_revenue: string;
  products: ProductRow[];
}

export type ImportStatus = 'processing' | 'success' | 'partial' | 'failed' | 'reverted';

export interface RowError {
  line: number;
  column: string | null;
  message: string;
}

export interface Progress {
  bytes_read: number;
  bytes_total: number;
  rows_read: number;
  rows_per_s: number;
  eta_s: number | null;
}

export interface ImportSummary {
  id: number;
  filename: string;
  size_bytes: number;
  status: ImportStatus;
  on_error: 'fail' | 'skip';
  num_rows: number;
  rows_rejected: number;
  imported_at: string;
  duration_ms: number | null;
  error_message: string | null;
  error_count: number;
}

export interface ImportRecord extends ImportSummary {
  errors: RowError[];
  progress?: Progress;
}

export interface ImportList {
  imports: ImportSummary[];
  total: number;
  limit: number;
  offset: number;
}

/** What an upload answers when it finished at once (or was skipped as already imported). */
export interface FileResult {
  id: number;
  filename: string;
  status: ImportStatus | 'skipped';
  error_message: string | null;
  num_rows?: number;
  rows_rejected?: number;
  duration_ms?: number | null;
  error_count?: number;
}

export interface Health {
  status: string;
  database: string;
}
