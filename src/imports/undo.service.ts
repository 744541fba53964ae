import { sql } from 'kysely';
import type { Database, DB, Dialect } from '../db/database.js';
import { serializedWrites } from '../db/write-lock.js';
import { keepRollupsAround } from '../write/rollup-upkeep.js';
import { changeSales, type ChangeOptions } from '../write/sales-change.js';
import { findImportById, type ImportRecord } from './imports.repository.js';

/** Why an import cannot be undone right now. */
export class UndoConflict extends Error {
  override name = 'UndoConflict';
}

/**
 * Undoes an import in one transaction: removes the rows it stored and still owns, brings back
 * the rows it had replaced (from `sales_history`), and marks the record `reverted`, so the same
 * file can be imported again. Where a later import has since replaced one of its rows, that
 * later import's history now points at the row before this one, so undoing it later restores
 * the right value. Resolves to the updated record, or undefined for an unknown id. A write
 * conflict runs the transaction again (changeSales), then fails with WriteConflict.
 */
export async function undoImport(
  database: Database,
  id: number,
  options: Pick<ChangeOptions, 'signal' | 'log' | 'onAttempt'> = {},
): Promise<ImportRecord | undefined> {
  // Answered at once when there is nothing to undo, rather than after waiting for the write lock
  // (checked again inside the transaction).
  const current = await findImportById(database.db, id);
  if (!current) return undefined;
  refuseUndo(current);
  return serializedWrites(database, 'undo', () =>
    database.writer
      .connection()
      .execute((conn) => changeSales(database, conn, (trx) => revert(trx, database, id), { ...options, context: { undoOf: id } })),
  );
}

/** Throws UndoConflict when the record's status does not allow an undo. */
function refuseUndo(record: ImportRecord): void {
  const { id, status } = record;
  if (status === 'processing') throw new UndoConflict(`import ${id} is still processing; undo it once it has finished`);
  if (status === 'reverted') throw new UndoConflict(`import ${id} is already reverted`);
  if (status === 'failed') throw new UndoConflict(`import ${id} failed and stored nothing`);
}

/** The undo itself, inside its transaction. */
async function revert(trx: DB, database: Database, id: number): Promise<ImportRecord | undefined> {
  const record = await findImportById(trx, id);
  if (!record) return undefined;
  refuseUndo(record);

  const { dialect } = database;
  await keepRollupsAround(trx, dialect, id, async () => {
    await trx.deleteFrom('sales').where('imported_file_id', '=', id).execute();
    await repointLaterHistory(trx, dialect, id);
    await trx.deleteFrom('sales_history').where('imported_file_id', '=', id).execute();
    await sql`INSERT INTO sales (date, order_id, product_id, amount_sgd, imported_file_id, source_line)
      SELECT h.date, h.order_id, h.product_id, h.amount_sgd, h.imported_file_id, h.source_line
      FROM sales_history h
      WHERE h.replaced_by_import_id = ${id}
        AND NOT EXISTS (SELECT 1 FROM sales s WHERE s.order_id = h.order_id AND s.product_id = h.product_id)`.execute(trx);
    await trx.deleteFrom('sales_history').where('replaced_by_import_id', '=', id).execute();
    await trx
      .updateTable('imported_files')
      .set({ status: 'reverted', error_message: `reverted at ${new Date().toISOString()}` })
      .where('id', '=', id)
      .execute();
  });
  return findImportById(trx, id);
}

/**
 * Rows of import `id` that a later import replaced sit in history as owned by `id`. With `id`
 * undone they stand for the row `id` had replaced (if any): copy that row's values over them.
 */
async function repointLaterHistory(trx: DB, dialect: Dialect, id: number): Promise<void> {
  await dialect.sql
    .updateJoined({
      target: ['sales_history', 'h2'],
      source: ['sales_history', 'h1'],
      on: sql`h1.replaced_by_import_id = ${id} AND h1.order_id = h2.order_id AND h1.product_id = h2.product_id`,
      set: [
        ['date', sql.ref('h1.date')],
        ['amount_sgd', sql.ref('h1.amount_sgd')],
        ['imported_file_id', sql.ref('h1.imported_file_id')],
        ['source_line', sql.ref('h1.source_line')],
      ],
      where: sql`h2.imported_file_id = ${id}`,
    })
    .execute(trx);
}
