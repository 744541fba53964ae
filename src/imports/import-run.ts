import type { DB } from '../db/database.js';
import type { MysqlLoadMethod } from '../db/sales-writer.js';
import type { ImportStatus } from '../db/tables.js';
import type { Log } from '../log.js';
import type { CsvFormat } from './csv-format.js';
import type { ImportRecord } from './imports.repository.js';
import type { ImportProgress, ImportRuns } from './import-progress.js';
import type { SalesSource } from './sales-source.js';

export type { ImportProgress } from './import-progress.js';

/**
 * The words of an import run, shared by its stages (claim, load, record: import-*.ts), the
 * service that orchestrates them (import.service.ts) and those who call it.
 */

export type OnError = 'fail' | 'skip';

/**
 * How one file of a run ended: its stored record; `skipped`, pointing at the record that has the
 * file; or `refused`, a folder entry that was never read (a link, a FIFO, …: sales-folder.ts).
 */
export type FileOutcome =
  | { status: 'skipped'; record: ImportRecord; filename: string; message: string }
  | { status: 'refused'; filename: string; message: string; onError: OnError; at: string }
  | { status: Exclude<ImportStatus, 'processing' | 'reverted'>; record: ImportRecord; filename: string };

/** An outcome that has a record: every file that was read (all but refused folder entries). */
export type RecordedOutcome = Exclude<FileOutcome, { status: 'refused' }>;

export interface FolderResult {
  files: FileOutcome[];
  summary: { imported: number; partial: number; skipped: number; failed: number; rows: number };
}

export interface ImportOptions {
  onError: OnError;
  log: Log;
  /** Aborting stops the running file between batches; its rows roll back and its record fails. */
  signal?: AbortSignal | undefined;
  /** Told about every file as it finishes (metrics). */
  onFileDone?: ((outcome: FileOutcome) => void) | undefined;
  /** Told as the file is read (async progress, CLI progress bar). */
  onProgress?: ((progress: ImportProgress & { filename: string }) => void) | undefined;
  /** Told the record's id as soon as the file is claimed (asynchronous imports answer with it). */
  onClaimed?: ((id: number) => void) | undefined;
  /**
   * How the files are written: delimiter (`auto` finds it from the header) and column aliases
   * (CSV_COLUMNS merged with the request's own). Default: `auto`, the contract's names only.
   */
  csv?: CsvFormat | undefined;
  /** MySQL only: force a bulk path (tests, servers without local infile). Default `auto`. */
  mysqlLoadMethod?: MysqlLoadMethod | undefined;
  /** The app's board of running imports (progress by id); a run of its own when absent. */
  runs?: ImportRuns | undefined;
  /**
   * Runs first inside each attempt (1, 2, …) of a file's load transaction: a test's hook to make
   * a competing writer conflict with it (see ChangeOptions.onAttempt in src/write/sales-change.ts).
   */
  onLoadAttempt?: ((trx: DB, attempt: number, filename: string) => Promise<void>) | undefined;
}

/** Where an import's time went, in milliseconds (read and load overlap: the store sets the pace). */
export interface ImportPhases {
  /** Reading, decoding, parsing and validating the file, and hashing it. */
  read_ms: number;
  /** Keeping the rollups' sums and order runs as rows pass. */
  aggregate_ms: number;
  /** Storing rows: waiting for the bulk load, then replaying and reconciling replacements. */
  load_ms: number;
  /** Completing the rollups from `sales` where needed and writing them. */
  rollups_ms: number;
  commit_ms: number;
}

/** Row errors kept on a record; the total is counted separately. */
export const MAX_KEPT_ERRORS = 100;

/** A file about to be imported: where to read it, its name, content hash and size. */
export interface PreparedFile {
  /** Read from its first byte by each pass of the load (sales-source.ts). */
  source: SalesSource;
  filename: string;
  sha256: string;
  size: number;
}

export function summarize(files: FileOutcome[]): FolderResult['summary'] {
  const summary = { imported: 0, partial: 0, skipped: 0, failed: 0, rows: 0 };
  for (const f of files) {
    if (f.status === 'success') summary.imported++;
    else if (f.status === 'refused') summary.failed++;
    else summary[f.status]++;
    if (f.status === 'success' || f.status === 'partial') summary.rows += f.record.num_rows;
  }
  return summary;
}
