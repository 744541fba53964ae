import type { Telemetry } from '../telemetry.js';
import type { FileOutcome } from './import-run.js';

/**
 * Counts each file's outcome in the import metrics (`zinc_imports_total`, rows, duration), the
 * same for every way a file comes in: the API, the watched folder.
 */
export function countImportOutcome(telemetry: Telemetry): (outcome: FileOutcome) => void {
  return (outcome) => {
    if (outcome.status === 'refused') return telemetry.importFinished('failed', 0, 0, null);
    telemetry.importFinished(
      outcome.status,
      outcome.status === 'skipped' ? 0 : outcome.record.num_rows,
      outcome.status === 'skipped' ? 0 : outcome.record.rows_rejected,
      outcome.status === 'skipped' || outcome.record.duration_ms === null ? null : outcome.record.duration_ms / 1000,
    );
  };
}
