import { setTimeout as sleep } from 'node:timers/promises';
import type { Database } from '../db/database.js';
import { serializedWrites } from '../db/write-lock.js';
import { claimFile, heldElsewhere, prepareFile, underLease } from './import-claim.js';
import { activeHere, holdOwnerLease } from './import-lease.js';
import { loadClaimedFile } from './import-load.js';
import { skipped } from './import-record.js';
import { summarize, type FileOutcome, type FolderResult, type ImportOptions, type PreparedFile, type RecordedOutcome } from './import-run.js';
import { findImportById, findImportBySha, type ImportRecord } from './imports.repository.js';
import { localFolder, unreadOutcome, withSalesEntry } from './sales-folder.js';
import { localFile, SourceReadError, type SalesFolder, type SalesSource } from './sales-source.js';

/**
 * Imports, orchestrated: a file goes through its stages — claim (import-claim.ts), load (read,
 * validate, store, keep rollups: import-load.ts), record (import-record.ts) — one file at a time
 * per process and database (serializedWrites), whether it comes alone (an upload), with its
 * folder, or with its folder in the background.
 */

export { recoverInterruptedImports } from './import-claim.js';
export { summarize, MAX_KEPT_ERRORS } from './import-run.js';
export type { FileOutcome, FolderResult, ImportOptions, ImportPhases, ImportProgress, OnError, RecordedOutcome } from './import-run.js';

/**
 * Imports every new `*.csv` in `folder` (a local directory, or a SalesFolder such as an S3
 * prefix: sales-folder.ts openSalesFolder), one file at a time, in name order. A folder that
 * cannot be listed rejects (SalesFolderError); a file that cannot be read fails alone.
 */
export async function importFolder(database: Database, folder: string | SalesFolder, options: ImportOptions): Promise<FolderResult> {
  const source = typeof folder === 'string' ? localFolder(folder) : folder;
  return serializedWrites(database, 'imports', async () => {
    const files: FileOutcome[] = [];
    for (const entry of await source.list()) {
      if (options.signal?.aborted) break;
      const outcome = await withSalesEntry(entry, options, (file) =>
        importOneFile(database, file, options).catch((error: unknown) => unread(file.name, error, options)),
      );
      options.onFileDone?.(outcome);
      files.push(outcome);
    }
    return { files, summary: summarize(files) };
  });
}

/** A file whose first read failed (SourceReadError) has no hash, so no record: a failed outcome says why. */
function unread(name: string, error: unknown, options: ImportOptions): FileOutcome {
  if (!(error instanceof SourceReadError)) throw error;
  return unreadOutcome(name, `not imported: ${error.message}`, options.onError, options.log);
}

/** Imports one file (see importFolder). */
export async function importFile(
  database: Database,
  filePath: string,
  filename: string,
  options: ImportOptions,
): Promise<RecordedOutcome> {
  return serializedWrites(database, 'imports', async () => {
    const outcome = await importOneFile(database, localFile(filePath, filename), options);
    options.onFileDone?.(outcome);
    return outcome;
  });
}

/** Claim, load, record, on one connection that holds the file's lease throughout. */
async function importOneFile(database: Database, source: SalesSource, options: ImportOptions): Promise<RecordedOutcome> {
  const file = await prepareFile(source);
  const { filename } = file;
  // Another importer holding the lease writes the file's record right after taking it: until the
  // record is there, there is nothing to point at, so look again shortly.
  for (let attempt = 0; ; attempt++) {
    const outcome = await underLease(database, file.sha256, async (conn, leased) => {
      const existing = await findImportBySha(conn, file.sha256);
      if (existing && (existing.status === 'success' || existing.status === 'partial')) {
        return skipped(existing, filename, `already imported as ${existing.filename} (import ${existing.id})`);
      }
      if (!leased) return existing ? heldElsewhere(existing, file) : undefined;
      const claimed = await claimFile(database, conn, { ...file, onError: options.onError }, true);
      if ('skip' in claimed) return claimed.skip;
      options.onClaimed?.(claimed.id);
      return loadClaimedFile(database, conn, claimed.id, file, options);
    });
    if (outcome) return outcome;
    if (attempt >= RECORD_WAIT_ATTEMPTS) throw new Error(`${filename}: another importer holds the file but wrote no record; try again`);
    await sleep(50);
  }
}

/** How many times (50 ms apart) an import looks for the record of a file another importer holds. */
const RECORD_WAIT_ATTEMPTS = 200;

/**
 * Starts importing the folder in the background. Resolves as soon as every new file has its
 * record (`processing`), with those records and the files skipped at once; `done` resolves with
 * the whole run's result. Meanwhile this process is seen alive by the claim it holds on itself.
 */
export function startFolderImport(
  database: Database,
  folder: string | SalesFolder,
  options: ImportOptions,
): Promise<{ started: FileOutcome[]; queued: ImportRecord[]; done: Promise<FolderResult> }> {
  const source = typeof folder === 'string' ? localFolder(folder) : folder;
  return new Promise((resolveStarted, rejectStarted) => {
    /** The start failed (the folder or bucket could not be listed): the caller has the error already. */
    let startFailed = false;
    const done = serializedWrites(database, 'imports', async () => {
      const releaseOwner = await holdOwnerLease(database);
      const opened: Array<{ close(): Promise<void> }> = [];
      try {
        const files: FileOutcome[] = [];
        const queue: Array<{ file: PreparedFile; id: number }> = [];
        try {
          for (const entry of await source.list()) {
            const safe = await entry.open();
            if ('refused' in safe) {
              files.push(unreadOutcome(entry.name, safe.refused, options.onError, options.log, 'sales file refused'));
              continue;
            }
            opened.push(safe);
            let file: PreparedFile;
            try {
              file = await prepareFile(safe.source);
            } catch (error) {
              files.push(unread(entry.name, error, options));
              continue;
            }
            // Active here from its claim on: this process's own records are never taken for abandoned.
            activeHere.add(file.sha256);
            const claimed = await claimFile(database, database.writer, { ...file, onError: options.onError }, false);
            if ('skip' in claimed) {
              activeHere.delete(file.sha256);
              files.push(claimed.skip);
            } else queue.push({ file, id: claimed.id });
          }
          const queued = await Promise.all(queue.map(({ id }) => findImportById(database.db, id)));
          resolveStarted({ started: [...files], queued: queued.filter((r) => r !== undefined), done });
        } catch (error) {
          for (const { file } of queue) activeHere.delete(file.sha256);
          startFailed = true;
          rejectStarted(error);
          throw error;
        }
        // Files that ended at once (skipped, refused) are told about like the others.
        for (const outcome of files) options.onFileDone?.(outcome);
        try {
          for (const { file, id } of queue) {
            // The record is this process's already: loaded even while another importer, finding
            // it alive, briefly holds the lease to look.
            const outcome = await underLease(database, file.sha256, (conn) => loadClaimedFile(database, conn, id, file, options));
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
    done.catch((error: unknown) => {
      if (!startFailed) options.log.error({ err: error }, 'background import failed');
    });
  });
}
