import { sql } from 'kysely';
import type { DB, Dialect } from '../db/database.js';
import { RollupDelta } from './rollup-delta.js';
import {
  addLines,
  clearListedOrders,
  forgetMultiDateOrders,
  importLines,
  linesOfListedOrders,
  listOrdersOf,
  listSharedOrders,
  recomputeMultiDateOrders,
  replacedLines,
  restrictLines,
  streamReplacedRows,
  salesByOrder,
  writeDelta,
  type Lines,
  type RollupWriteProfile,
} from './rollup-merge.js';

/**
 * How the rollups follow each change to `sales`, inside the transaction that makes it.
 *
 * An import's rows pass through a RollupDelta as they are stored, which sums them and counts each
 * run of adjacent lines of one order as that order. The rows alone are the whole truth for most
 * orders; `sales` is read only for the orders where they are not:
 *
 * - rows this import replaced: their sums go, and their orders' old facts (taken from the
 *   replaced rows in sales_history) go;
 * - orders that also have lines of other imports (found through the imports' order id ranges):
 *   their facts are recomputed from all their stored lines, before and after;
 * - a file where one order's lines are not side by side, or with repeated identities, has no
 *   run-per-order to trust: its orders' facts (and sums) are recomputed from their stored lines.
 */
export interface ImportRollupFacts {
  /** Rows stored, and of those, rows that replaced a row of another import. */
  stored: number;
  replaced: number;
  /** Rows refused as repeats of an identity this file stored on an earlier line. */
  repeats: number;
  /** MySQL: the server takes LOAD DATA LOCAL INFILE (the import's own path). */
  loadData: boolean;
}

/** What the import's rollup upkeep did, for its log and record. */
export interface RollupUpkeepReport {
  /** `stream`: from the rows; `orders`: facts recomputed from the file's stored orders. */
  mode: 'stream' | 'orders';
  sharedOrders: number;
  /**
   * Where the rollup time went: each table's rows written and milliseconds, and the reads of
   * `sales` (`(sales read)`) and multi-date recompute (`(multi-date orders)`) when there were any.
   */
  tables: RollupWriteProfile;
}

/** Completes and writes the delta an import's stream gathered. Runs after the last row is stored. */
export async function keepRollupsAfterImport(
  db: DB,
  dialect: Dialect,
  importId: number,
  delta: RollupDelta,
  facts: ImportRollupFacts,
): Promise<RollupUpkeepReport> {
  const started = performance.now();
  const since = (t: number) => ({ rows: 0, ms: Math.round(performance.now() - t) });
  delta.endRuns();
  const replacedOrders = sql`SELECT order_id FROM sales_history WHERE replaced_by_import_id = ${importId}`;

  if (facts.repeats > 0 || delta.runsMayRepeat()) {
    delta.dropSums();
    delta.dropOrderFacts();
    await addLines(db, dialect, delta, importLines(importId), 1, { sums: true, orders: false });
    if (facts.replaced > 0) await addLines(db, dialect, delta, replacedLines(importId), -1, { sums: true, orders: false });
    await listOrdersOf(db, dialect, importId, importLines(importId));
    if (facts.replaced > 0) await listOrdersOf(db, dialect, importId, replacedLines(importId));
    await addLines(db, dialect, delta, linesOfListedOrders(dialect, importId), 1, { sums: false, orders: true });
    await addLines(db, dialect, delta, listedLinesBefore(dialect, importId, facts.replaced > 0), -1, { sums: false, orders: true });
    const read = since(started);
    const tables = await writeDelta(db, dialect, delta, { loadData: facts.loadData });
    const recomputing = performance.now();
    await recomputeMultiDateOrders(db, dialect, importId);
    await clearListedOrders(db, importId);
    return { mode: 'orders', sharedOrders: 0, tables: { '(sales read)': read, ...tables, '(multi-date orders)': since(recomputing) } };
  }

  // The rows replaced, as the stream would have seen them: their sums always come off; each run
  // of one order's lines is that order's old facts when the order had no other lines.
  const replaced = new RollupDelta(dialect.idsPadSpaces);
  if (facts.replaced > 0) {
    await streamReplacedRows(db, dialect, importId, replaced);
    // Their multi-date rows go: the stream writes them again where the order still spans dates.
    await forgetMultiDateOrders(db, replacedOrders);
  }
  const shared =
    delta.orderMin === undefined
      ? 0
      : await listSharedOrders(db, dialect, importId, { min: delta.orderMin, max: delta.orderMax!, rows: facts.stored });
  if (facts.replaced > 0) {
    const oldRunsAreOrders = shared === 0 && !replaced.runsMayRepeat();
    delta.merge(replaced, -1, { sums: true, orders: oldRunsAreOrders });
    if (!oldRunsAreOrders) {
      // An order whose lines are all in this file had, before it, only the lines it replaced.
      await addLines(db, dialect, delta, restrictLines(replacedLines(importId), importId, false), -1, { sums: false, orders: true });
    }
  }
  if (shared > 0) {
    await addLines(db, dialect, delta, linesOfListedOrders(dialect, importId), 1, { sums: false, orders: true });
    await addLines(db, dialect, delta, listedLinesBefore(dialect, importId, facts.replaced > 0), -1, { sums: false, orders: true });
    // What the stream counted for them: their lines in this file.
    const counted = sql`SELECT s.order_id, s.product_id, s.date, s.amount_sgd
      FROM rollup_orders r ${dialect.sql.joinInOrder} ${salesByOrder(dialect, 's')} ON s.order_id = r.order_id
      WHERE r.change_id = ${importId} AND s.imported_file_id = ${importId}`;
    await addLines(db, dialect, delta, counted, -1, { sums: false, orders: true });
  }
  const read = since(started);
  const tables = await writeDelta(db, dialect, delta, { loadData: facts.loadData });
  if (read.ms > 0) tables['(sales read)'] = read;
  if (shared > 0) {
    const recomputing = performance.now();
    await recomputeMultiDateOrders(db, dialect, importId);
    await clearListedOrders(db, importId);
    tables['(multi-date orders)'] = since(recomputing);
  }
  return { mode: 'stream', sharedOrders: shared, tables };
}

/** The lines the listed orders had before import `importId`: other imports' lines, and those it replaced. */
function listedLinesBefore(dialect: Dialect, importId: number, replaced: boolean): Lines {
  const others = sql`SELECT s.order_id, s.product_id, s.date, s.amount_sgd
    FROM rollup_orders r ${dialect.sql.joinInOrder} ${salesByOrder(dialect, 's')} ON s.order_id = r.order_id
    WHERE r.change_id = ${importId} AND s.imported_file_id <> ${importId}`;
  return replaced ? sql`${others} UNION ALL ${restrictLines(replacedLines(importId), importId, true)}` : others;
}

/**
 * Runs `change` (an undo of import `importId`) between taking out, and putting back, everything
 * the orders it touches contribute: the lines it removes or restores and their orders' other lines.
 */
export async function keepRollupsAround(db: DB, dialect: Dialect, importId: number, change: () => Promise<void>): Promise<void> {
  await listOrdersOf(db, dialect, importId, importLines(importId));
  await listOrdersOf(db, dialect, importId, replacedLines(importId));
  const delta = new RollupDelta(dialect.idsPadSpaces);
  const all = { sums: true, orders: true };
  await addLines(db, dialect, delta, linesOfListedOrders(dialect, importId), -1, all);
  await change();
  await addLines(db, dialect, delta, linesOfListedOrders(dialect, importId), 1, all);
  await writeDelta(db, dialect, delta, { loadData: false });
  await recomputeMultiDateOrders(db, dialect, importId);
  await clearListedOrders(db, importId);
}
