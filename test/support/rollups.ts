import { sql } from 'kysely';
import { expect } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { rebuildRollups } from '../../src/write/rollup-rebuild.js';

/** Every rollup table's rows, in key order. */
export async function rollupSnapshot(database: Database): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const [table, order] of [
    ['revenue_daily', 'date'],
    ['revenue_daily_product', 'product_id, date'],
    ['revenue_monthly_product', 'month, product_id'],
    ['revenue_product_cum', 'product_id, month'],
    ['revenue_multiday_lines', 'order_id, product_id'],
    ['revenue_multiday_days', 'order_id, date'],
    ['revenue_daily_basket', 'basket, date'],
    ['revenue_basket_products', 'basket, product_id'],
    ['revenue_weekly_product', 'product_id, week'],
    ['rollup_orders', 'change_id, order_id'],
  ] as const) {
    out[table] = (await sql`SELECT * FROM ${sql.table(table)} ORDER BY ${sql.raw(order)}`.execute(database.db)).rows;
  }
  return out;
}

/** Asserts that the rollups as kept equal, row for row, what a rebuild from `sales` computes. */
export async function expectRollupsMatchRebuild(database: Database, label = ''): Promise<void> {
  const kept = await rollupSnapshot(database);
  await rebuildRollups(database);
  const rebuilt = await rollupSnapshot(database);
  for (const table of Object.keys(rebuilt)) expect(kept[table], `${label} ${table}`).toEqual(rebuilt[table]);
}
