import { sql } from 'kysely';
import type { DB } from '../db/connection.js';
import { centsToDb } from '../money.js';
import type { RowError, SaleRow } from './sales-row.js';

/** Rows per INSERT: 6 parameters each stays far below both databases' placeholder limits. */
export const BATCH_ROWS = 1000;

/**
 * Stores one batch of a file's rows inside the import's transaction. A row whose identity the
 * same file already stored (earlier in this batch or in an earlier one) is not written and comes
 * back as a row error; a row whose identity another import stored replaces that row.
 */
export async function storeSalesBatch(
  trx: DB,
  kind: 'mysql' | 'sqlite',
  importId: number,
  rows: SaleRow[],
): Promise<RowError[]> {
  const errors: RowError[] = [];
  const firstLine = new Map<string, number>();
  const fresh: SaleRow[] = [];
  for (const row of rows) {
    const key = `${row.orderId}\u0000${row.productId}`;
    const earlier = firstLine.get(key);
    if (earlier === undefined) {
      firstLine.set(key, row.line);
      fresh.push(row);
    } else {
      errors.push(duplicateError(row, earlier));
    }
  }
  if (fresh.length === 0) return errors;

  const stored = await trx
    .selectFrom('sales')
    .select(['order_id', 'product_id', 'source_line'])
    .where('imported_file_id', '=', importId)
    .where((eb) =>
      eb(
        eb.refTuple('order_id', 'product_id'),
        'in',
        fresh.map((r) => eb.tuple(r.orderId, r.productId)),
      ),
    )
    .execute();
  let toWrite = fresh;
  if (stored.length > 0) {
    const storedLine = new Map(stored.map((s) => [`${s.order_id}\u0000${s.product_id}`, s.source_line]));
    toWrite = [];
    for (const row of fresh) {
      const earlier = storedLine.get(`${row.orderId}\u0000${row.productId}`);
      if (earlier === undefined) toWrite.push(row);
      else errors.push(duplicateError(row, earlier));
    }
  }
  if (toWrite.length === 0) return errors;

  const values = toWrite.map((r) => ({
    date: r.date,
    order_id: r.orderId,
    product_id: r.productId,
    amount_sgd: centsToDb(kind, r.amountCents),
    imported_file_id: importId,
    source_line: r.line,
  }));
  const insert = trx.insertInto('sales').values(values);
  if (kind === 'mysql') {
    await insert
      .onDuplicateKeyUpdate({
        date: sql`VALUES(date)`,
        amount_sgd: sql`VALUES(amount_sgd)`,
        imported_file_id: sql`VALUES(imported_file_id)`,
        source_line: sql`VALUES(source_line)`,
      })
      .execute();
  } else {
    await insert
      .onConflict((oc) =>
        oc.columns(['order_id', 'product_id']).doUpdateSet((eb) => ({
          date: eb.ref('excluded.date'),
          amount_sgd: eb.ref('excluded.amount_sgd'),
          imported_file_id: eb.ref('excluded.imported_file_id'),
          source_line: eb.ref('excluded.source_line'),
        })),
      )
      .execute();
  }
  return errors;
}

function duplicateError(row: SaleRow, earlierLine: number): RowError {
  return {
    line: row.line,
    column: null,
    message: `order_id "${row.orderId}" with product_id "${row.productId}" already appears on line ${earlierLine}`,
  };
}
