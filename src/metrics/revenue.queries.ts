import { sql } from 'kysely';
import type { Database } from '../db/connection.js';
import { centsFromDb } from '../money.js';

/** Reads ("selectors") over sales. Dates are `YYYY-MM-DD` strings; bounds are inclusive. */

export interface RevenueTotals {
  revenueCents: bigint;
  orderCount: number;
  saleCount: number;
}

export interface DayRevenue extends RevenueTotals {
  date: string;
}

export interface DateRange {
  start?: string | undefined;
  end?: string | undefined;
}

function salesIn({ db }: Database, range: DateRange) {
  let query = db.selectFrom('sales');
  if (range.start) query = query.where('date', '>=', range.start);
  if (range.end) query = query.where('date', '<=', range.end);
  return query;
}

/** Total revenue, distinct orders and sales between two dates. */
export async function revenueTotals(database: Database, range: DateRange): Promise<RevenueTotals> {
  const row = await salesIn(database, range)
    .select((eb) => [
      eb.fn.sum<string | number | null>('amount_sgd').as('revenue'),
      sql<number | string>`COUNT(DISTINCT order_id)`.as('orders'),
      eb.fn.countAll<number | string>().as('sales'),
    ])
    .executeTakeFirstOrThrow();
  return {
    revenueCents: centsFromDb(database.kind, row.revenue),
    orderCount: Number(row.orders),
    saleCount: Number(row.sales),
  };
}

/** Revenue per day that has sales, ascending; days without sales are absent. */
export async function revenueByDay(database: Database, range: DateRange): Promise<DayRevenue[]> {
  const rows = await salesIn(database, range)
    .select((eb) => [
      'date',
      eb.fn.sum<string | number | null>('amount_sgd').as('revenue'),
      sql<number | string>`COUNT(DISTINCT order_id)`.as('orders'),
      eb.fn.countAll<number | string>().as('sales'),
    ])
    .groupBy('date')
    .orderBy('date')
    .execute();
  return rows.map((r) => ({
    date: r.date,
    revenueCents: centsFromDb(database.kind, r.revenue),
    orderCount: Number(r.orders),
    saleCount: Number(r.sales),
  }));
}

/** First and last sale date, or undefined when there are no sales. */
export async function saleDateBounds(database: Database): Promise<{ first: string; last: string } | undefined> {
  const row = await database.db
    .selectFrom('sales')
    .select((eb) => [eb.fn.min('date').as('first'), eb.fn.max('date').as('last')])
    .executeTakeFirstOrThrow();
  return row.first === null || row.last === null ? undefined : { first: row.first, last: row.last };
}
