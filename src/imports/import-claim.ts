import { createHash } from 'node:crypto';
import type { Database, DB } from '../db/database.js';
import type { Log } from '../log.js';
import { acquireLease, activeHere, isAbandoned, OWNER, releaseLease } from './import-lease.js';
import { forgetProgress } from './import-progress.js';
import type { OnError, PreparedFile, RecordedOutcome } from './import-run.js';
import { nowUtc, skipped, writeRecord } from './import-record.js';
import { findImportBySha, insertImport, listProcessingImports, updateImportIf, type ImportRecord } from './imports.repository.js';
import type { SalesSource } from './sales-source.js';

/**
 * The claim stage: a file is imported by one importer at a time, once. Its record (by content
 * hash) goes `processing`, owned by this process, committed at once so that others see it; the
 * file's lease (import-lease.ts) is held on the connection that loads it.
 */

/**
 * The file's size and content hash: its first full read (the load reads it again, and checks
 * the hash again). Rejects with SourceReadError when the source cannot be read.
 */
export async function prepareFile(source: SalesSource): Promise<PreparedFile> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of source.open() as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { source, filename: source.name, sha256: hash.digest('hex'), size };
}

/**
 * Runs `work` on one connection of the writer holding the file's lease (on MySQL the lease lives
 * and dies with that connection, as does the import's transaction), with the file marked as
 * active in this process; releases both afterwards. `work` learns whether the lease was taken.
 */
export function underLease<T>(database: Database, sha256: string, work: (conn: DB, leased: boolean) => Promise<T>): Promise<T> {
  return database.writer.connection().execute(async (conn) => {
    const leased = await acquireLease(database, conn, sha256);
    if (leased) activeHere.add(sha256);
    try {
      return await work(conn, leased);
    } finally {
      activeHere.delete(sha256);
      if (leased) await releaseLease(database, conn, sha256).catch(() => {});
    }
  });
}

/**
 * Creates or takes over the file's record as `processing`. A failed or abandoned record is
 * reused: the sha256 is unique, and ids stay stable. A file imported already, or being imported
 * by a live importer, is skipped.
 */
export async function claimFile(
  database: Database,
  conn: DB,
  file: PreparedFile & { onError: OnError },
  /** `conn` holds the file's lease (underLease). */
  leased: boolean,
): Promise<{ id: number } | { skip: RecordedOutcome }> {
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
        return { id: await writeRecord(conn, (trx) => insertImport(trx, database.dialect, { ...fields, sha256: file.sha256 })) };
      } catch (error) {
        if (!database.dialect.isUniqueViolation(error)) throw error;
        continue; // another process inserted it first: look again
      }
    }
    if (existing.status === 'success' || existing.status === 'partial') {
      return { skip: skipped(existing, file.filename, `already imported as ${existing.filename} (import ${existing.id})`) };
    }
    if (existing.status === 'processing' && !(await isAbandoned(database, conn, existing, leased))) {
      return { skip: skipped(existing, file.filename, `being imported by another process (import ${existing.id})`) };
    }
    const expected = { status: existing.status, owner: existing.owner };
    if (await writeRecord(conn, (trx) => updateImportIf(trx, existing.id, expected, fields))) {
      return { id: existing.id };
    }
  }
  throw new Error(`could not claim ${file.filename}: its record keeps changing`);
}

/** The file is someone else's right now: the record that says so, as a skipped outcome. */
export function heldElsewhere(holder: ImportRecord, file: PreparedFile): RecordedOutcome {
  return skipped(holder, file.filename, `being imported by another process (import ${holder.id})`);
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
      await forgetProgress(database, record.id).catch(() => {});
      log.warn({ importId: record.id, file: record.filename }, 'marked an interrupted import as failed');
    }
  }
  return recovered;
}
