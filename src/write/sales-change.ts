import type { Database, DB } from '../db/database.js';

/**
 * The one way a change to `sales` is made (an import, an undo, a rebuild of the rollups): one
 * writer at a time across processes (the dialect's writer lock), one transaction in which the
 * change keeps the rollups and moves the data version on (rollup-upkeep.ts, data-version.ts),
 * and, once committed, the listeners of this Database told (the answer cache, so this instance
 * serves the new data at once).
 */

const listeners = new WeakMap<Database, Set<() => void>>();

/**
 * Calls `listener` after every change to sales committed through this Database object. The set
 * belongs to the object: apps with databases of their own never hear each other. Returns the
 * function that stops it.
 */
export function onSalesCommitted(database: Database, listener: () => void): () => void {
  let set = listeners.get(database);
  if (!set) listeners.set(database, (set = new Set()));
  set.add(listener);
  return () => set.delete(listener);
}

/**
 * Runs `change` in a transaction on `conn` (one connection of `database.writer`: on MySQL the
 * writer lock lives and dies with it) holding the writer lock; a shutdown (`signal`) ends the
 * wait for it. `change` gets a signal that aborts when the lock is lost meanwhile (a lease on a
 * cluster, not renewed in time): a long change stops there. Whatever `change` did, the lock's
 * fence runs last in the transaction, so a holder that lost it rolls back (WriteLockLost)
 * instead of committing. Resolves to what `change` returned, once committed and announced.
 */
export async function changeSales<T>(
  database: Database,
  conn: DB,
  change: (trx: DB, lost: AbortSignal) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  const result = await database.dialect.withWriteLock(
    conn,
    (hold) =>
      conn.transaction().execute(async (trx) => {
        const value = await change(trx, hold.signal);
        await hold.fence(trx);
        return value;
      }),
    signal,
  );
  noteSalesCommitted(database);
  return result;
}

/**
 * Tells this Database's listeners that sales changed: changeSales does it for every change it
 * makes; call it after a change committed some other way (by hand, by another tool).
 */
export function noteSalesCommitted(database: Database): void {
  for (const listener of listeners.get(database) ?? []) {
    // The change is committed whatever a listener does: its failure must not read as the change's.
    try {
      listener();
    } catch {
      // A listener that throws has only lost its own freshness; the next one is still told.
    }
  }
}
