import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Log } from '../log.js';
import type { Database, DB } from '../db/database.js';
import type { ImportStatus } from '../db/tables.js';
import { serializedWrites, WriteLockWaitAborted } from '../db/write-lock.js';
import { CsvFormatError } from './csv-reader.js';
import { streamRows } from './sales-stream.js';
import { acquireLease, activeHere, holdOwnerLease, isAbandoned, OWNER, releaseLease } from './import-lease.js';
import {
  findImportById,
  findImportBySha,
  insertImport,
  listProcessingImports,
  updateImport,
  updateImportIf,
  type ImportRecord,
} from './imports.repository.js';
import type { RowError } from './sales-row.js';
import { listSalesFiles, openSalesFile, refusedOutcome, withSalesFile, type OpenedSalesFile } from './sales-folder.js';
import { noteSalesCommitted } from '../metrics/answer-cache.js';
import { RollupDelta } from '../write/rollup-delta.js';
import { keepRollupsAfterImport, type RollupUpkeepReport } from '../write/rollup-upkeep.js';
import type { MysqlLoadMethod } from '../db/sales-writer.js';

export type OnError = 'fail' | 'skip';

/** How one file's import ended: a stored record, or `skipped` pointing at the record that has it. */
export type FileOutcome =
  | { status: 'skipped'; record: ImportRecord; filename: string; message: string }
  | { status: Exclude<ImportStatus, 'processing' | 'reverted'>; record: ImportRecord; filename: string };

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
  /** MySQL only: force a bulk path (tests, servers without local infile). Default `auto`. */
  mysqlLoadMethod?: MysqlLoadMethod | undefined;
}

/** Row errors kept on a record; the total is counted separately. */
export const MAX_KEPT_ERRORS = 100;

/**
 * Every write to an import record runs in a transaction of its own: on SQLite a transaction
 * waits for another process's import without stalling this process (see db/write-lock.ts).
 */
function writeRecord<T>(conn: DB, write: (trx: DB) => Promise<T>): Promise<T> {
  return conn.transaction().execute(write);
}

/** Imports every new `*.csv` in `dir`, one file at a time, in name order. */
export async function importFolder(
  database: Database,
  dir: string,
  options: ImportOptions,
): Promise<FolderResult> {
  return serializedWrites(database, 'imports', async () => {
    const files: FileOutcome[] = [];
    for (const file of await listSalesFiles(dir)) {
      if (options.signal?.aborted) break;
      const outcome = await withSalesFile(file, options, (filePath) => importOneFile(database, filePath, file.name, options));
      options.onFileDone?.(outcome);
      files.push(outcome);
    }
    return { files, summary: summarize(files) };
  });
}

/** Imports one file (see importFolder). */
export async function importFile(
  database: Database,
  filePath: string,
  filename: string,
  options: ImportOptions,
): Promise<FileOutcome> {
  return serializedWrites(database, 'imports', async () => {
    const outcome = await importOneFile(database, filePath, filename, options);
    options.onFileDone?.(outcome);
    return outcome;
  });
}

export function summarize(files: FileOutcome[]): FolderResult['summary'] {
  const summary = { imported: 0, partial: 0, skipped: 0, failed: 0, rows: 0 };
  for (const f of files) {
    if (f.status === 'success') summary.imported++;
    else summary[f.status]++;
    if (f.status === 'success' || f.status === 'partial') summary.rows += f.record.num_rows;
  }
  return summary;
}

/**
 * Marks `processing` records whose importer died as failed, so the next run takes their files
 * again. Safe with several instances: a record still owned by a live importer is left alone.
 */
export async function recoverInterruptedImports(database: Database, log: Log): Promise<number> {
  let recovered = 0;
  for (const record of await listProcessingImports(database.db)) {
    if (!(await isAbandoned(database, database.db, record))) continue;
    const taken = await writeRecord(database.writer, (trx) =>
      updateImportIf(
        trx,
        record.id,
        { status: 'processing', owner: record.owner },
        { status: 'failed', owner: null, error_message: 'interrupted: the import stopped before it finished; the next import run takes the file again' },
      ),
    );
    if (taken) {
      recovered++;
      log.warn({ importId: record.id, file: record.filename }, 'marked an interrupted import as failed');
    }
  }
  return recovered;
}

async function sha256File(filePath: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(filePath, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function nowUtc(): string {
  return new Date().toISOString().replace('T', ' ').replace('Z', '');
}

/** Signals a strict-mode rollback from inside the transaction. */
class Rejected extends Error {}
/** Signals a rollback because the process is shutting down. */
class Interrupted extends Error {}

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

interface Tally {
  stored: number;
  phases: ImportPhases;
  orderRange?: { order_id_min: string | null; order_id_max: string | null };
  upkeep?: RollupUpkeepReport;
  rejectedRows: number;
  errorCount: number;
  errors: RowError[];
  warnings: string[];
}

interface PreparedFile {
  filePath: string;
  filename: string;
  sha256: string;
  size: number;
}

async function prepare(filePath: string, filename: string): Promise<PreparedFile> {
  const { size } = await stat(filePath);
  return { filePath, filename, sha256: await sha256File(filePath), size };
}

async function importOneFile(
  database: Database,
  filePath: string,
  filename: string,
  options: ImportOptions,
): Promise<FileOutcome> {
  const file = await prepare(filePath, filename);
  // The whole file runs on one connection: on MySQL the import lock lives and dies with it.
  return database.writer.connection().execute(async (conn) => {
    const existing = await findImportBySha(conn, file.sha256);
    if (existing && (existing.status === 'success' || existing.status === 'partial')) {
      return skipped(existing, filename, `already imported as ${existing.filename} (import ${existing.id})`);
    }
    if (!(await acquireLease(database, conn, file.sha256))) {
      const holder = existing ?? (await findImportBySha(conn, file.sha256));
      return skipped(holder!, filename, `being imported by another process (import ${holder?.id ?? '?'})`);
    }
    activeHere.add(file.sha256);
    try {
      const claimed = await claim(database, conn, { ...file, onError: options.onError });
      if ('skip' in claimed) return claimed.skip;
      options.onClaimed?.(claimed.id);
      return await loadClaimed(database, conn, claimed.id, file, options);
    } finally {
      activeHere.delete(file.sha256);
      await releaseLease(database, conn, file.sha256).catch(() => {});
    }
  });
}

/**
 * Starts importing the folder in the background. Resolves as soon as every new file has its
 * record (`processing`), with those records and the files skipped at once; `done` resolves with
 * the whole run's result.
 */
export function startFolderImport(
  database: Database,
  dir: string,
  options: ImportOptions,
): Promise<{ started: FileOutcome[]; queued: ImportRecord[]; done: Promise<FolderResult> }> {
  return new Promise((resolveStarted, rejectStarted) => {
    const done = serializedWrites(database, 'imports', async () => {
      const releaseOwner = await holdOwnerLease(database);
      const opened: OpenedSalesFile[] = [];
      try {
        const files: FileOutcome[] = [];
        const queue: Array<{ file: PreparedFile; id: number }> = [];
        try {
          for (const entry of await listSalesFiles(dir)) {
            const safe = await openSalesFile(entry);
            if ('refused' in safe) {
              files.push(refusedOutcome(entry.name, safe.refused, options.onError, options.log));
              continue;
            }
            opened.push(safe);
            const file = await prepare(safe.path, entry.name);
            activeHere.add(file.sha256);
            const claimed = await claim(database, database.writer, { ...file, onError: options.onError });
            if ('skip' in claimed) {
              activeHere.delete(file.sha256);
              files.push(claimed.skip);
            } else queue.push({ file, id: claimed.id });
          }
        } catch (error) {
          rejectStarted(error);
          throw error;
        }
        const queued = await Promise.all(queue.map(({ id }) => findImportById(database.db, id)));
        resolveStarted({ started: [...files], queued: queued.filter((r) => r !== undefined), done });
        try {
          for (const { file, id } of queue) {
            const outcome = await database.writer.connection().execute(async (conn) => {
              await acquireLease(database, conn, file.sha256);
              try {
                return await loadClaimed(database, conn, id, file, options);
              } finally {
                activeHere.delete(file.sha256);
                await releaseLease(database, conn, file.sha256).catch(() => {});
              }
            });
            options.onFileDone?.(outcome);
            files.push(outcome);
          }
        } finally {
          for (const { file } of queue) activeHere.delete(file.sha256);
        }
        return { files, summary: summarize(files) };
      } finally {
        for (const file of opened) await file.close();
        await releaseOwner();
      }
    });
    done.catch((error: unknown) => options.log.error({ err: error }, 'background import failed'));
  });
}

/** Progress of the imports running in this process, by import id. */
const running = new Map<number, ImportProgress & { startedAt: number }>();

/** How far a running import has got, when this process runs it. */
export function importProgress(id: number) {
  const p = running.get(id);
  if (!p) return undefined;
  const seconds = Math.max((performance.now() - p.startedAt) / 1000, 0.001);
  const bytesPerS = p.bytesRead / seconds;
  return {
    bytes_read: p.bytesRead,
    bytes_total: p.bytesTotal,
    rows_read: p.rowsRead,
    rows_per_s: Math.round(p.rowsRead / seconds),
    eta_s: bytesPerS > 0 ? Math.round(((p.bytesTotal - p.bytesRead) / bytesPerS) * 10) / 10 : null,
  };
}

/** Loads a file whose record this process has claimed, and writes the record's final state. */
async function loadClaimed(
  database: Database,
  conn: DB,
  id: number,
  file: PreparedFile,
  options: ImportOptions,
): Promise<FileOutcome> {
  const { onError, log } = options;
  const { filename } = file;
  const started = performance.now();
  log.info({ importId: id, file: filename, bytes: file.size }, 'import started');
  running.set(id, { bytesRead: 0, bytesTotal: file.size, rowsRead: 0, startedAt: started });
  const trackProgress = (progress: ImportProgress) => {
    running.set(id, { ...progress, startedAt: started });
    options.onProgress?.({ ...progress, filename });
  };

  const tally: Tally = {
    stored: 0,
    rejectedRows: 0,
    errorCount: 0,
    errors: [],
    warnings: [],
    phases: { read_ms: 0, aggregate_ms: 0, load_ms: 0, rollups_ms: 0, commit_ms: 0 },
  };
  let committing = 0;
  let status: 'success' | 'partial' | 'failed';
  let message: string | null = null;
  try {
    const bulk = await database.dialect.isBulkLoad(file.size);
    status = await database.dialect.withWriteLock(conn, () =>
      conn.transaction().execute(async (trx) => {
        const target = { path: file.filePath, sha256: file.sha256, size: file.size, bulk };
        await loadRows(database, trx, id, target, tally, options, trackProgress);
        const rejected = tally.rejectedRows > 0;
        if (rejected && onError === 'fail') throw new Rejected();
        const final = rejected ? 'partial' : 'success';
        message = rejected ? `${tally.rejectedRows} row${tally.rejectedRows === 1 ? '' : 's'} rejected` : null;
        await updateImport(trx, id, { ...finalFields(final, message, tally, started), ...tally.orderRange });
        committing = performance.now();
        return final;
      }),
      options.signal,
    );
    tally.phases.commit_ms = performance.now() - committing;
    // This instance's cached answers follow its own imports at once (others within CACHE_MAX_STALE_MS).
    noteSalesCommitted();
  } catch (error) {
    status = 'failed';
    if (error instanceof Rejected) {
      const first = tally.errors[0]!;
      message =
        `${tally.rejectedRows} row${tally.rejectedRows === 1 ? ' has' : 's have'} errors, so nothing was imported ` +
        `(first: line ${first.line}${first.column ? `, ${first.column}` : ''}: ${first.message}); ` +
        'fix the file or import with on_error=skip';
    } else if (error instanceof Interrupted || error instanceof WriteLockWaitAborted) {
      message = 'interrupted by shutdown; the next import run takes the file again';
    } else if (error instanceof CsvFormatError) {
      message = error.message;
    } else {
      running.delete(id);
      log.error({ err: error, importId: id, file: filename }, 'import failed');
      const failed = finalFields('failed', `database error: ${(error as Error).message}`, { ...tally, stored: 0 }, started);
      await writeRecord(conn, (trx) => updateImport(trx, id, failed)).catch(() => {});
      throw error;
    }
    tally.stored = 0;
    const failed = finalFields('failed', message, tally, started);
    await writeRecord(conn, (trx) => updateImport(trx, id, failed));
  } finally {
    running.delete(id);
  }
  const record = (await findImportById(conn, id))!;
  log.info(
    {
      importId: id,
      file: filename,
      outcome: status,
      rows: record.num_rows,
      rejected: record.rows_rejected,
      durationMs: record.duration_ms,
      ...(status === 'failed' ? {} : { phases: roundPhases(tally.phases), rollups: tally.upkeep }),
    },
    'import finished',
  );
  return { status, record, filename };
}

function roundPhases(phases: ImportPhases): ImportPhases {
  const out = { ...phases };
  for (const key of Object.keys(out) as (keyof ImportPhases)[]) out[key] = Math.round(out[key]);
  return out;
}

function skipped(record: ImportRecord, filename: string, message: string): FileOutcome {
  return { status: 'skipped', record, filename, message };
}

/**
 * Creates or takes over the file's record as `processing`, committed at once so that others see
 * it. A failed or abandoned record is reused: the sha256 is unique, and ids stay stable.
 */
async function claim(
  database: Database,
  conn: DB,
  file: { filename: string; sha256: string; size: number; onError: OnError },
): Promise<{ id: number } | { skip: FileOutcome }> {
  const fields = {
    filename: file.filename,
    size_bytes: file.size,
    imported_at: nowUtc(),
    num_rows: 0,
    rows_rejected: 0,
    status: 'processing' as const,
    error_message: null,
    error_count: 0,
    errors: '[]',
    warnings: '[]',
    on_error: file.onError,
    owner: OWNER,
    duration_ms: null,
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    const existing = await findImportBySha(conn, file.sha256);
    if (!existing) {
      try {
        return { id: await writeRecord(conn, (trx) => insertImport(trx, { ...fields, sha256: file.sha256 })) };
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
        continue; // another process inserted it first: look again
      }
    }
    if (existing.status === 'success' || existing.status === 'partial') {
      return { skip: skipped(existing, file.filename, `already imported as ${existing.filename} (import ${existing.id})`) };
    }
    if (existing.status === 'processing' && !(await isAbandoned(database, conn, existing))) {
      return { skip: skipped(existing, file.filename, `being imported by another process (import ${existing.id})`) };
    }
    const expected = { status: existing.status, owner: existing.owner };
    if (await writeRecord(conn, (trx) => updateImportIf(trx, existing.id, expected, fields))) {
      return { id: existing.id };
    }
  }
  throw new Error(`could not claim ${file.filename}: its record keeps changing`);
}

function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: string; errno?: number };
  return e.code === 'ER_DUP_ENTRY' || e.code === 'SQLITE_CONSTRAINT_UNIQUE';
}

function finalFields(status: ImportStatus, message: string | null, tally: Tally, started: number) {
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

/** How far an import has got; `bytesTotal` is the file's size. */
export interface ImportProgress {
  bytesRead: number;
  bytesTotal: number;
  rowsRead: number;
}

let lastMethod: string | undefined;

/** Streams the file through the reader, the validator and the store, inside the import's transaction. */
async function loadRows(
  database: Database,
  trx: DB,
  importId: number,
  file: { path: string; sha256: string; size: number; /** SQLite: build secondary indexes afterwards. */ bulk: boolean },
  tally: Tally,
  options: ImportOptions,
  onProgress: (progress: ImportProgress) => void,
): Promise<void> {
  const { signal, log } = options;
  const { phases } = tally;
  const writer = await database.dialect.createSalesWriter(trx, importId, { mysqlLoadMethod: options.mysqlLoadMethod ?? 'auto', bulk: file.bulk });
  if (writer.method !== lastMethod) {
    lastMethod = writer.method;
    log.info({ method: writer.method }, 'bulk load path in use');
  }
  let repeats = 0;
  const reject = (errors: RowError[], count = errors.length) => {
    tally.errorCount += count;
    tally.rejectedRows += count === errors.length ? new Set(errors.map((e) => e.line)).size : count;
    tally.errors.push(...errors);
    // Keep the earliest lines only; repeats can be found later than format errors.
    if (tally.errors.length > 2 * MAX_KEPT_ERRORS) trimErrors(tally);
  };
  const changed = () =>
    new CsvFormatError('the file changed while it was being imported; import it again once it is complete');
  const delta = new RollupDelta(database.dialect.idsPadSpaces);

  const streamStarted = performance.now();
  try {
    const sha = await streamRows(file.path, {
      onHeader: (layout) => (tally.warnings = layout.warnings),
      onErrors: (errors) => reject(errors),
      onRows: async (rows) => {
        if (signal?.aborted) throw new Interrupted();
        // The store is asked first: on MySQL it hands the rows to the server and waits for it to
        // take them, and the rollups' share of the work is done meanwhile.
        const t0 = performance.now();
        const storing = writer.write(rows);
        const t1 = performance.now();
        for (const r of rows) delta.addRow(r.date, r.orderId, r.productId, r.amountCents);
        const t2 = performance.now();
        const found = await storing;
        phases.aggregate_ms += t2 - t1;
        phases.load_ms += t1 - t0 + (performance.now() - t2);
        if (found.length > 0) {
          repeats += found.length;
          reject(found);
        }
      },
      onProgress: (bytesRead, rowsRead) => onProgress({ bytesRead, bytesTotal: file.size, rowsRead }),
    });
    phases.read_ms = performance.now() - streamStarted - phases.aggregate_ms - phases.load_ms;
    if (signal?.aborted) throw new Interrupted();
    if (sha !== file.sha256) throw changed();

    const ending = performance.now();
    const ended = await writer.end();
    if (ended.needsReplay) {
      const again = await streamRows(file.path, {
        onHeader: () => {},
        onErrors: () => {},
        onRows: (rows) => writer.replay(rows),
      });
      if (again !== file.sha256) throw changed();
    }
    if (ended.needsReplay || ended.needsReconcile) {
      const { errors, count } = await writer.reconcile(MAX_KEPT_ERRORS);
      if (count > 0) {
        repeats += count;
        reject(errors, count);
      }
    }
    phases.load_ms += performance.now() - ending;
  } catch (error) {
    await writer.abort();
    throw error;
  }
  tally.stored = writer.stored;
  tally.orderRange = { order_id_min: delta.orderMin ?? null, order_id_max: delta.orderMax ?? null };
  trimErrors(tally);
  // A strict import with a bad row rolls back: its rollups would be thrown away.
  if (options.onError === 'fail' && tally.rejectedRows > 0) return;
  const rollupStarted = performance.now();
  const upkeep = await keepRollupsAfterImport(trx, database.dialect, importId, delta, { stored: writer.stored, replaced: writer.replaced, repeats, loadData: writer.loadsData });
  phases.rollups_ms = performance.now() - rollupStarted;
  tally.upkeep = upkeep;
}

function trimErrors(tally: Tally): void {
  tally.errors.sort((a, b) => a.line - b.line);
  tally.errors.length = Math.min(tally.errors.length, MAX_KEPT_ERRORS);
}
