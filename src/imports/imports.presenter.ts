import type { FileOutcome, FolderResult } from './import-run.js';
import type { ImportRecord } from './imports.repository.js';
import type { RowError } from './sales-row.js';

/** `YYYY-MM-DD HH:MM:SS.mmm` (UTC, as stored) → ISO 8601 with Z. */
function isoUtc(stored: string): string {
  return `${stored.replace(' ', 'T').slice(0, 23)}Z`;
}

/** An import record as the API lists it (without its row errors). */
export function presentImportSummary(record: ImportRecord) {
  return {
    id: Number(record.id),
    filename: record.filename,
    sha256: record.sha256,
    size_bytes: Number(record.size_bytes),
    status: record.status,
    on_error: record.on_error,
    num_rows: record.num_rows,
    rows_rejected: record.rows_rejected,
    imported_at: isoUtc(record.imported_at),
    duration_ms: record.duration_ms,
    error_message: record.error_message,
    error_count: record.error_count,
    warnings: JSON.parse(record.warnings) as string[],
  };
}

/** An import record with the row errors it kept. */
export function presentImport(record: ImportRecord) {
  return { ...presentImportSummary(record), errors: JSON.parse(record.errors) as RowError[] };
}

/**
 * One file of an import run: the full record; for a skipped file a pointer to the record that has
 * it; a refused entry as a failed file that has no record (id 0, no hash: nothing was read).
 */
export function presentOutcome(outcome: FileOutcome) {
  if (outcome.status === 'refused') {
    return {
      id: 0,
      filename: outcome.filename,
      sha256: '',
      size_bytes: 0,
      status: 'failed' as const,
      on_error: outcome.onError,
      num_rows: 0,
      rows_rejected: 0,
      imported_at: outcome.at,
      duration_ms: null,
      error_message: outcome.message,
      error_count: 0,
      warnings: [] as string[],
      errors: [] as RowError[],
    };
  }
  if (outcome.status === 'skipped') {
    return {
      id: Number(outcome.record.id),
      filename: outcome.filename,
      sha256: outcome.record.sha256,
      status: 'skipped' as const,
      error_message: outcome.message,
    };
  }
  return { ...presentImport(outcome.record), filename: outcome.filename };
}

export function presentFolderResult(result: FolderResult) {
  return { files: result.files.map(presentOutcome), summary: result.summary };
}
