import type { Database, DB } from '../db/database.js';
import { WriteLockLost, WriteLockWaitAborted } from '../db/write-lock.js';
import { changeSales, WriteConflict } from '../write/sales-change.js';
import { RollupDelta } from '../write/rollup-delta.js';
import { keepRollupsAfterImport } from '../write/rollup-upkeep.js';
import { CsvFormatError } from './csv-reader.js';
import { ImportRuns, shareProgress } from './import-progress.js';
import { newTally, outcomeOf, recordFailed, recordLoaded, roundPhases, type Tally } from './import-record.js';
import { MAX_KEPT_ERRORS, type ImportOptions, type ImportProgress, type PreparedFile, type RecordedOutcome } from './import-run.js';
import type { RowError } from './sales-row.js';
import { SourceReadError } from './sales-source.js';
import { streamRows } from './sales-stream.js';

/**
 * The load stage: a claimed file read, validated and stored, its rollups kept, in one
 * transaction through the write side's one entry point (changeSales), and its record's final
 * state written.
 */

/** Signals a strict-mode rollback from inside the transaction. */
class Rejected extends Error {}
/** Signals a rollback because the process is shutting down. */
class Interrupted extends Error {}

/** Loads a file whose record this process has claimed (`id`), on `conn`, which holds its lease. */
export async function loadClaimedFile(database: Database, conn: DB, id: number, file: PreparedFile, options: ImportOptions): Promise<RecordedOutcome> {
  const { onError, log } = options;
  const runs = options.runs ?? new ImportRuns();
  const { filename } = file;
  const started = performance.now();
  log.info({ importId: id, file: filename, bytes: file.size }, 'import started');
  runs.start(id, file.size, started);
  // Other instances on the database follow it too: written beside the import, never awaited by it.
  const sharing = shareProgress(database, id, () => runs.latest(id), log);
  const trackProgress = (progress: ImportProgress) => {
    runs.update(id, progress);
    options.onProgress?.({ ...progress, filename });
  };

  // What one attempt of the transaction gathered: changeSales may run it again (a write conflict),
  // and each run starts from nothing, the file read again from its first byte.
  let tally = newTally();
  let attempts = 0;
  let committing = 0;
  let status: 'success' | 'partial' | 'failed';
  try {
    const bulk = await database.dialect.isBulkLoad(file.size);
    const { onLoadAttempt } = options;
    status = await changeSales(
      database,
      conn,
      async (trx, lost) => {
        tally = newTally();
        if (attempts++ > 0) runs.start(id, file.size, performance.now());
        await storeRows(database, trx, id, { ...file, bulk }, lost, tally, runs, options, trackProgress);
        const rejected = tally.rejectedRows > 0;
        if (rejected && onError === 'fail') throw new Rejected();
        const final = rejected ? 'partial' : 'success';
        await recordLoaded(trx, id, final, rejected ? `${tally.rejectedRows} row${tally.rejectedRows === 1 ? '' : 's'} rejected` : null, tally, started);
        committing = performance.now();
        return final;
      },
      {
        signal: options.signal,
        log,
        context: { importId: id, file: filename },
        onAttempt: onLoadAttempt && ((trx, attempt) => onLoadAttempt(trx, attempt, filename)),
      },
    );
    tally.phases.commit_ms = performance.now() - committing;
  } catch (error) {
    status = 'failed';
    const message = failureMessage(error, tally);
    if (message === undefined) {
      runs.end(id);
      log.error({ err: error, importId: id, file: filename }, 'import failed');
      await recordFailed(conn, id, `database error: ${(error as Error).message}`, tally, started).catch(() => {});
      throw error;
    }
    tally.stored = 0;
    await recordFailed(conn, id, message, tally, started);
  } finally {
    void sharing.stop();
    runs.end(id);
  }
  const outcome = await outcomeOf(conn, id, status, filename);
  const { record } = outcome;
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
  return outcome;
}

/** The record's message for a load that failed as files may (undefined: a database error, rethrown). */
function failureMessage(error: unknown, tally: Tally): string | undefined {
  if (error instanceof Rejected) {
    const first = tally.errors[0]!;
    return (
      `${tally.rejectedRows} row${tally.rejectedRows === 1 ? ' has' : 's have'} errors, so nothing was imported ` +
      `(first: line ${first.line}${first.column ? `, ${first.column}` : ''}: ${first.message}); ` +
      'fix the file or import with on_error=skip'
    );
  }
  if (error instanceof Interrupted || error instanceof WriteLockWaitAborted) {
    return 'interrupted by shutdown; the next import run takes the file again';
  }
  if (error instanceof CsvFormatError) return error.message;
  // The file could not be read to its end (an object gone or replaced, its store lost).
  if (error instanceof SourceReadError) return error.message;
  if (error instanceof WriteConflict) {
    return (
      `the database kept refusing the import's transaction as conflicting with another writer ` +
      `(error ${error.conflictCode}, ${error.attempts} attempts); nothing of the file was stored: run it again`
    );
  }
  if (error instanceof WriteLockLost) return `interrupted: ${error.message}; the next import run takes the file again`;
  return undefined;
}

/** Streams the file through the reader, the validator and the store, inside the import's transaction. */
async function storeRows(
  database: Database,
  trx: DB,
  importId: number,
  file: PreparedFile & { /** SQLite: build secondary indexes afterwards. */ bulk: boolean },
  /** Aborted when the writer lock or the file's claim was lost (a lease on a cluster): stop. */
  lost: AbortSignal,
  tally: Tally,
  runs: ImportRuns,
  options: ImportOptions,
  onProgress: (progress: ImportProgress) => void,
): Promise<void> {
  const { signal, log } = options;
  const { phases } = tally;
  const writer = await database.dialect.createSalesWriter(trx, importId, { mysqlLoadMethod: options.mysqlLoadMethod ?? 'auto', bulk: file.bulk });
  if (writer.method !== runs.lastMethod) {
    runs.lastMethod = writer.method;
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
    const sha = await streamRows(file.source, {
      onHeader: (layout) => (tally.warnings = layout.warnings),
      onErrors: (errors) => reject(errors),
      onRows: async (rows) => {
        if (signal?.aborted) throw new Interrupted();
        lost.throwIfAborted();
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
    }, options.csv);
    phases.read_ms = performance.now() - streamStarted - phases.aggregate_ms - phases.load_ms;
    if (signal?.aborted) throw new Interrupted();
    lost.throwIfAborted();
    if (sha !== file.sha256) throw changed();

    const ending = performance.now();
    const ended = await writer.end();
    if (ended.needsReplay) {
      const again = await streamRows(file.source, {
        onHeader: () => {},
        onErrors: () => {},
        onRows: (rows) => writer.replay(rows),
      }, options.csv);
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
  tally.upkeep = await keepRollupsAfterImport(trx, database.dialect, importId, delta, {
    stored: writer.stored,
    replaced: writer.replaced,
    repeats,
    loadData: writer.loadsData,
  });
  phases.rollups_ms = performance.now() - rollupStarted;
}

function trimErrors(tally: Tally): void {
  tally.errors.sort((a, b) => a.line - b.line);
  tally.errors.length = Math.min(tally.errors.length, MAX_KEPT_ERRORS);
}
