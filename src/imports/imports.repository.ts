import type { Insertable, Updateable } from 'kysely';
import type { DB, Dialect } from '../db/database.js';
import type { ImportedFilesTable } from '../db/tables.js';

/** Plain functions over `imported_files`; each takes the database or a transaction first. */

export type ImportRecord = Awaited<ReturnType<typeof findImportById>> & {};

export async function findImportById(db: DB, id: number) {
  return db.selectFrom('imported_files').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findImportBySha(db: DB, sha256: string) {
  return db.selectFrom('imported_files').selectAll().where('sha256', '=', sha256).executeTakeFirst();
}

export async function listImports(db: DB, limit: number, offset: number) {
  return db
    .selectFrom('imported_files')
    .selectAll()
    .orderBy('id', 'desc')
    .limit(limit)
    .offset(offset)
    .execute();
}

export async function countImports(db: DB): Promise<number> {
  const row = await db
    .selectFrom('imported_files')
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function listProcessingImports(db: DB) {
  return db.selectFrom('imported_files').selectAll().where('status', '=', 'processing').execute();
}

/** Inserts a new `processing` record; throws on a duplicate sha256 (someone else claimed it). */
export async function insertImport(db: DB, dialect: Dialect, row: Insertable<ImportedFilesTable>): Promise<number> {
  return dialect.insertReturningId(db, row);
}

/**
 * Updates a record only while it still has the status (and owner) the caller saw: a compare-and-set
 * that lets exactly one of several racing importers take a failed or abandoned file.
 */
export async function updateImportIf(
  db: DB,
  id: number,
  expected: { status: ImportedFilesTable['status']; owner: string | null },
  changes: Updateable<ImportedFilesTable>,
): Promise<boolean> {
  let query = db.updateTable('imported_files').set(changes).where('id', '=', id).where('status', '=', expected.status);
  query = expected.owner === null ? query.where('owner', 'is', null) : query.where('owner', '=', expected.owner);
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function updateImport(db: DB, id: number, changes: Updateable<ImportedFilesTable>): Promise<void> {
  await db.updateTable('imported_files').set(changes).where('id', '=', id).execute();
}
