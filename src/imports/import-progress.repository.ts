import type { DB } from '../db/database.js';
import type { ImportProgressTable } from '../db/tables.js';

/**
 * Plain functions over `import_progress`, the running imports' progress shared between instances
 * (see import-progress.ts); each takes the database first. Never called inside an import's
 * transaction: the table is written beside it, on a connection of its own.
 */

/** Writes an import's progress row, creating it at the first write (or overwriting one left behind). */
export async function saveProgress(db: DB, row: ImportProgressTable): Promise<void> {
  const { import_id, ...fields } = row;
  const updated = await db.updateTable('import_progress').set(fields).where('import_id', '=', import_id).executeTakeFirst();
  // Only the importer holding the record's lease writes its row: no one inserts it meanwhile.
  if (Number(updated.numUpdatedRows) === 0) await db.insertInto('import_progress').values(row).execute();
}

export async function findProgress(db: DB, importId: number) {
  return db.selectFrom('import_progress').selectAll().where('import_id', '=', importId).executeTakeFirst();
}

export async function deleteProgress(db: DB, importId: number): Promise<void> {
  await db.deleteFrom('import_progress').where('import_id', '=', importId).execute();
}
