import type { DB } from '../db/database.js';
import type { ImportStatus } from '../db/tables.js';
import type { RowError } from './sales-row.js';
import type { ImportPhases, RecordedOutcome } from './import-run.js';
import { OWNER } from './import-lease.js';
import { findImportById, updateImport, updateImportIf, type ImportRecord } from './imports.repository.js';
import type { RollupUpkeepReport } from '../write/rollup-upkeep.js';

/**
 * The record stage: what an import writes into its `imported_files` row, and when. The claim
 * makes the row `processing`; the load's transaction writes its final state with the rows; a
 * failed load writes it afterwards, in a transaction of its own.
 */

/** What a load gathered for its record and its log. */
export interface Tally {
  stored: number;
  phases: ImportPhases;
  orderRange?: { order_id_min: string | null; order_id_max: string | null };
  upkeep?: RollupUpkeepReport;
  rejectedRows: number;
  errorCount: number;
  errors: RowError[];
  warnings: string[];
}

export function newTally(): Tally {
  return {
    stored: 0,
    rejectedRows: 0,
    errorCount: 0,
    errors: [],
    warnings: [],
    phases: { read_ms: 0, aggregate_ms: 0, load_ms: 0, rollups_ms: 0, commit_ms: 0 },
  };
}

/**
 * Every write to an import record outside the load runs in a transaction of its own: on SQLite
 * a transaction waits for another process's import without stalling this process.
 */
export function writeRecord<T>(conn: DB, write: (trx: DB) => Promise<T>): Promise<T> {
  return conn.transaction().execute(write);
}

/** `YYYY-MM-DD HH:MM:SS.mmm`, UTC, as records store times. */
export function nowUtc(): string {
  return new Date().toISOString().replace('T', ' ').replace('Z', '');
}

/** The record's final fields for an outcome. */
export function finalFields(status: ImportStatus, message: string | null, tally: Tally, started: number) {
  return {
    status,
    error_message: message,
    num_rows: tally.stored,
    rows_rejected: tally.rejectedRows,
    error_count: tally.errorCount,
    errors: JSON.stringify(tally.errors),
    warnings: JSON.stringify(tally.warnings),
    owner: null,
    duration_ms: Math.round(performance.now() - started),
  };
}

/** Writes the final state of a load that ended inside its transaction (success or partial). */
export async function recordLoaded(trx: DB, id: number, status: 'success' | 'partial', message: string | null, tally: Tally, started: number) {
  await updateImport(trx, id, { ...finalFields(status, message, tally, started), ...tally.orderRange });
}

/**
 * Writes a failed load's record, after its transaction rolled back: nothing of it is stored. Only
 * while the record is still this process's: an importer whose claim was lost (a lease on a
 * cluster, taken over) must not overwrite the record of the one that took the file over.
 */
export async function recordFailed(conn: DB, id: number, message: string, tally: Tally, started: number): Promise<void> {
  await writeRecord(conn, (trx) =>
    updateImportIf(trx, id, { status: 'processing', owner: OWNER }, finalFields('failed', message, { ...tally, stored: 0 }, started)),
  );
}

export async function outcomeOf(conn: DB, id: number, status: 'success' | 'partial' | 'failed', filename: string): Promise<RecordedOutcome> {
  return { status, record: (await findImportById(conn, id))!, filename };
}

export function skipped(record: ImportRecord, filename: string, message: string): RecordedOutcome {
  return { status: 'skipped', record, filename, message };
}

/** Phases in whole milliseconds, for the log. */
export function roundPhases(phases: ImportPhases): ImportPhases {
  const out = { ...phases };
  for (const key of Object.keys(out) as (keyof ImportPhases)[]) out[key] = Math.round(out[key]);
  return out;
}
