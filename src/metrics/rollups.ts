import type { DB } from '../db/connection.js';

/**
 * Keeps the pre-aggregated revenue tables in step with `sales`. Called inside the same
 * transaction as every change to `sales` (import, replace, undo), with every date whose rows
 * changed (old dates of replaced or deleted rows included).
 */
export async function refreshRollups(_trx: DB, _kind: 'mysql' | 'sqlite', _dates: Iterable<string>): Promise<void> {
  // Rollup tables arrive with the metrics-at-scale work; until then reads aggregate `sales`.
}
