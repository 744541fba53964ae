import { sql } from 'kysely';
import type { AnyDB, DB, Dialect } from './database.js';

/**
 * A one-row counter that every change to `sales` moves on inside its own transaction: caches and
 * ETags key on it (src/metrics/answer-cache.ts).
 */

/**
 * Changes the data version inside the caller's transaction. A missing row (a database emptied
 * by hand) starts again from a random number, so versions from before are not repeated.
 */
export async function bumpDataVersion(db: AnyDB, dialect: Dialect): Promise<void> {
  await dialect.bumpDataVersion(db, Math.floor(Math.random() * 2 ** 40));
}

/** The current data version as a string ("0" when the row is missing). */
export async function readDataVersion(db: DB): Promise<string> {
  const { rows } = await sql<{ version: number | string }>`SELECT version FROM data_version WHERE id = 1`.execute(db);
  return rows[0] ? String(rows[0].version) : '0';
}
