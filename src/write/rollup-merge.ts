import { sql, type RawBuilder } from 'kysely';
import { bumpDataVersion } from '../db/data-version.js';
import type { DB, Dialect } from '../db/database.js';
import { periodStart } from '../calendar.js';
import { idLess, isZero, type Cents, type RollupDelta } from './rollup-delta.js';
import { refreshCumulative } from './rollup-rebuild.js';

/**
 * Writes a RollupDelta into the rollup tables, and the SQL that completes a delta where the rows
 * of one change cannot tell alone: the orders it shares with lines stored before.
 *
 * Every function runs inside the caller's transaction, the one that changes `sales`.
 */

/** Rows a statement carries when removing emptied rows (well under every placeholder limit). */
const ROWS_PER_STATEMENT = 1000;

/**
 * `sales` read by order through its identity index, joined in the order written (a planner may
 * still hold an empty table's statistics inside a large import's transaction and scan instead).
 */
export const salesByOrder = (dialect: Dialect, alias: string) => dialect.sql.indexed('sales', alias, 'sales_identity');
/** `sales` read by import through the index of its foreign key. */
export const salesByImport = (dialect: Dialect, alias: string) => dialect.sql.indexed('sales', alias, 'fk_sales_imported_file');

/** `order_id, product_id, date, amount_sgd` rows of some lines of `sales` or `sales_history`. */
export type Lines = RawBuilder<unknown>;

/** The lines an import stored (all of them, replacements included). */
export const importLines = (importId: number): Lines =>
  sql`SELECT order_id, product_id, date, amount_sgd FROM sales WHERE imported_file_id = ${importId}`;

/** The stored rows an import replaced, as they were. */
export const replacedLines = (importId: number): Lines =>
  sql`SELECT order_id, product_id, date, amount_sgd FROM sales_history WHERE replaced_by_import_id = ${importId}`;

/** Every stored line of the orders listed in rollup_orders for `changeId`. */
export const linesOfListedOrders = (dialect: Dialect, changeId: number): Lines =>
  sql`SELECT s.order_id, s.product_id, s.date, s.amount_sgd
    FROM rollup_orders r ${dialect.sql.joinInOrder} ${salesByOrder(dialect, 's')} ON s.order_id = r.order_id WHERE r.change_id = ${changeId}`;

const listed = (changeId: number, column: string) =>
  sql`${sql.ref(column)} IN (SELECT order_id FROM rollup_orders WHERE change_id = ${changeId})`;

/** `lines` restricted to the orders listed (or, with `listedOnly` false, not listed) for `changeId`. */
export function restrictLines(lines: Lines, changeId: number, listedOnly: boolean): Lines {
  return sql`SELECT l.order_id, l.product_id, l.date, l.amount_sgd FROM (${lines}) l
    WHERE ${listedOnly ? sql`` : sql`NOT `}${listed(changeId, 'l.order_id')}`;
}

/**
 * Adds to `delta`, with `sign`, what `lines` contribute: their sums per (date, product) and, when
 * `orders`, each order's facts (its days, its basket on each day). `lines` must hold every line
 * the counted orders have in the state being described.
 */
export async function addLines(
  db: DB,
  dialect: Dialect,
  delta: RollupDelta,
  lines: Lines,
  sign: 1 | -1,
  parts: { sums: boolean; orders: boolean },
): Promise<void> {
  if (parts.sums) {
    const { rows } = await sql<{ date: string; product_id: string; revenue: string | number; n: number | string }>`
      SELECT date, product_id, SUM(amount_sgd) AS revenue, COUNT(*) AS n FROM (${lines}) l GROUP BY date, product_id`.execute(db);
    for (const r of rows) {
      const cents = dialect.centsFromDb(r.revenue);
      delta.addSums(r.date, r.product_id, sign === 1 ? cents : -cents, sign * Number(r.n));
    }
  }
  if (parts.orders) {
    const products = dialect.sql.basketKey('product_id');
    const { rows } = await sql<{ date: string; products: string | null; n: number | string }>`
      SELECT date, products, COUNT(*) AS n FROM (
        SELECT order_id, date, CASE WHEN COUNT(*) > 1 THEN ${products} END AS products
        FROM (${lines}) l GROUP BY order_id, date
      ) o GROUP BY date, products`.execute(db);
    for (const r of rows) delta.addOrderFacts(r.date, r.products, sign * Number(r.n));
  }
}

/**
 * Feeds `delta` the rows an import replaced, in the order it replaced them (its file's order), as
 * if they were streamed: their sums, and each run of one order's lines as that order was.
 */
export async function streamReplacedRows(db: DB, dialect: Dialect, importId: number, delta: RollupDelta): Promise<void> {
  const rows = dialect.iterate(
    db,
    sql<{ order_id: string; product_id: string; date: string; amount_sgd: string | number }>`
      SELECT order_id, product_id, date, amount_sgd FROM sales_history
      WHERE replaced_by_import_id = ${importId} ORDER BY replaced_by_import_id, id`,
  );
  // One row's amount is far within exact doubles (DECIMAL(14,2)).
  for await (const r of rows) delta.addRow(r.date, r.order_id, r.product_id, Number(dialect.centsFromDb(r.amount_sgd)));
  delta.endRuns();
}

/**
 * Lists in rollup_orders (under `changeId`) the orders of import `importId` that also have lines
 * from other imports. Only imports whose range of order ids meets [min, max] can share one, so
 * exports whose order ids rise from file to file cost nothing here.
 */
export async function listSharedOrders(
  db: DB,
  dialect: Dialect,
  importId: number,
  range: { min: string; max: string; rows: number },
): Promise<number> {
  const others = await db
    .selectFrom('imported_files')
    .select(['id', 'num_rows'])
    .where('id', '<>', importId)
    .where('status', 'in', ['success', 'partial'])
    .where('order_id_min', '<=', range.max)
    .where('order_id_max', '>=', range.min)
    .execute();
  if (others.length === 0) return 0;
  const listOrders = (rows: RawBuilder<unknown>) => dialect.sql.insertIgnoring(sql`rollup_orders (change_id, order_id)`, rows);
  const count = (result: { numAffectedRows?: bigint }) => Number(result.numAffectedRows ?? 0n);
  // Whichever side is smaller is read: the other imports' rows in the range, each probed for this
  // import's lines of its order, or this import's rows, each probed for another import's.
  const theirs = others.reduce((sum, o) => sum + Number(o.num_rows), 0);
  if (theirs > range.rows) {
    return count(
      await listOrders(sql`SELECT DISTINCT ${sql.lit(importId)}, x.order_id FROM ${salesByImport(dialect, 'x')} WHERE x.imported_file_id = ${importId}
          AND EXISTS (SELECT 1 FROM ${salesByOrder(dialect, 'o')} WHERE o.order_id = x.order_id AND o.imported_file_id <> ${importId})`).execute(db),
    );
  }
  let listedRows = 0;
  for (const { id } of others) {
    listedRows += count(
      await listOrders(sql`SELECT DISTINCT ${sql.lit(importId)}, a.order_id FROM ${salesByImport(dialect, 'a')}
        WHERE a.imported_file_id = ${id} AND a.order_id >= ${range.min} AND a.order_id <= ${range.max}
          AND EXISTS (SELECT 1 FROM ${salesByOrder(dialect, 'x')} WHERE x.order_id = a.order_id AND x.imported_file_id = ${importId})`).execute(db),
    );
  }
  return listedRows;
}

/** Lists in rollup_orders every order of `lines` (under `changeId`). */
export async function listOrdersOf(db: DB, dialect: Dialect, changeId: number, lines: Lines): Promise<void> {
  await dialect.sql
    .insertIgnoring(sql`rollup_orders (change_id, order_id)`, sql`SELECT DISTINCT ${sql.lit(changeId)}, l.order_id FROM (${lines}) l`)
    .execute(db);
}

export async function clearListedOrders(db: DB, changeId: number): Promise<void> {
  await sql`DELETE FROM rollup_orders WHERE change_id = ${changeId}`.execute(db);
}

/** Removes the multi-date rows of the orders `orders` selects (a subquery of order ids). */
export async function forgetMultiDateOrders(db: DB, orders: RawBuilder<unknown>): Promise<void> {
  const { rows } = await sql<{ one: number }>`SELECT 1 AS one FROM revenue_multiday_days LIMIT 1`.execute(db);
  if (rows.length === 0) return;
  // Through a derived table: MySQL refuses a subquery on a table the statement also reads otherwise.
  await sql`DELETE FROM revenue_multiday_lines WHERE order_id IN (SELECT order_id FROM (${orders}) o)`.execute(db);
  await sql`DELETE FROM revenue_multiday_days WHERE order_id IN (SELECT order_id FROM (${orders}) o)`.execute(db);
}

/** Writes the multi-date rows of the listed orders afresh from their stored lines. */
export async function recomputeMultiDateOrders(db: DB, dialect: Dialect, changeId: number): Promise<void> {
  await forgetMultiDateOrders(db, sql`SELECT order_id FROM rollup_orders WHERE change_id = ${changeId}`);
  const straight = dialect.sql.selectInOrder;
  await sql`INSERT INTO revenue_multiday_lines (order_id, product_id, date)
    SELECT ${straight}s.order_id, s.product_id, s.date FROM (
      SELECT t.order_id FROM rollup_orders r ${dialect.sql.joinInOrder} ${salesByOrder(dialect, 't')} ON t.order_id = r.order_id
      WHERE r.change_id = ${changeId} GROUP BY t.order_id HAVING MIN(t.date) <> MAX(t.date)
    ) m JOIN ${salesByOrder(dialect, 's')} ON s.order_id = m.order_id`.execute(db);
  await sql`INSERT INTO revenue_multiday_days (order_id, date, prev_date)
    SELECT order_id, date, LAG(date) OVER (PARTITION BY order_id ORDER BY date)
    FROM (SELECT DISTINCT l.order_id AS order_id, l.date AS date FROM revenue_multiday_lines l
      WHERE ${listed(changeId, 'l.order_id')}) pairs`.execute(db);
}

/**
 * Writes `delta` into the rollup tables: every changed (key) row gets the change added, rows
 * left with no sales go, new baskets get their products, the running product sums are redone
 * from the first month changed, and the data version moves on.
 */
export async function writeDelta(
  db: DB,
  dialect: Dialect,
  delta: RollupDelta,
  options: { /** Rows for keys no table holds yet may go in by LOAD DATA LOCAL INFILE (MySQL). */ loadData: boolean },
): Promise<RollupWriteProfile> {
  const money = (cents: Cents) => dialect.centsToDb(cents);
  // Dates after the last one stored are new to every table, and so are their weeks and months
  // after the last one's: those rows are appended, the others added to what is stored.
  const last = (await db.selectFrom('revenue_daily').select((eb) => eb.fn.max('date').as('last')).executeTakeFirst())?.last ?? null;
  const after = {
    day: (date: string) => last === null || date > last,
    week: (week: string) => last === null || week > weekStart(last),
    month: (month: string) => last === null || month > monthStart(last),
  };
  const writer = rowWriter(db, dialect, options.loadData);

  await writer.upsert('revenue_daily', ['date'], ['revenue', 'sale_count', 'order_count'], function* () {
    for (const d of delta.dayChanges()) yield [d.date, money(d.cents), d.sales, d.orders];
  }, (r) => after.day(r[0] as string));

  // The days come by product, then date: a product's weeks and months are runs of them. Weeks
  // are summed as they are written; months are gathered (they are written in month order).
  const monthly: { productId: string; month: string; cents: Cents; sales: number }[] = [];
  let m: (typeof monthly)[number] | undefined;
  let firstMonth: string | undefined;
  for (const p of delta.productDayChanges()) {
    const month = monthStart(p.date);
    if (firstMonth === undefined || month < firstMonth) firstMonth = month;
    if (m && m.productId === p.productId && m.month === month) {
      m.cents = addCents(m.cents, p.cents);
      m.sales += p.sales;
    } else {
      if (m) monthly.push(m);
      m = { productId: p.productId, month, cents: p.cents, sales: p.sales };
    }
  }
  if (m) monthly.push(m);
  await writer.upsert('revenue_daily_product', ['product_id', 'date'], ['revenue', 'sale_count'], function* () {
    for (const p of delta.productDayChanges()) yield [p.productId, p.date, money(p.cents), p.sales];
  }, (r) => after.day(r[1] as string));
  await writer.upsert('revenue_weekly_product', ['product_id', 'week'], ['revenue', 'sale_count'], function* () {
    let w: { productId: string; week: string; cents: Cents; sales: number } | undefined;
    for (const p of delta.productDayChanges()) {
      const week = weekStart(p.date);
      if (w && w.productId === p.productId && w.week === week) {
        w.cents = addCents(w.cents, p.cents);
        w.sales += p.sales;
        continue;
      }
      if (w && (w.sales !== 0 || !isZero(w.cents))) yield [w.productId, w.week, money(w.cents), w.sales];
      w = { productId: p.productId, week, cents: p.cents, sales: p.sales };
    }
    if (w && (w.sales !== 0 || !isZero(w.cents))) yield [w.productId, w.week, money(w.cents), w.sales];
  }, (r) => after.week(r[1] as string));
  const months = monthly.sort((a, b) => (a.month < b.month ? -1 : a.month > b.month ? 1 : idLess(a.productId, b.productId) ? -1 : 1));
  await writer.upsert('revenue_monthly_product', ['month', 'product_id'], ['revenue', 'sale_count'], function* () {
    for (const m of months) if (m.sales !== 0 || !isZero(m.cents)) yield [m.month, m.productId, money(m.cents), m.sales];
  }, (r) => after.month(r[0] as string));
  monthly.length = 0;

  await writer.upsert('revenue_daily_basket', ['basket', 'date'], ['order_count'], function* () {
    for (const b of delta.basketDayChanges()) yield [delta.basketName(b.basket), b.date, b.orders];
  }, (r) => after.day(r[1] as string));
  await writer.insertMissing('revenue_basket_products', ['product_id', 'basket'], function* () {
    let last = -1;
    for (const b of delta.basketDayChanges()) {
      if (b.orders <= 0 || b.basket === last) continue;
      last = b.basket;
      const name = delta.basketName(b.basket);
      for (const productId of delta.basketProducts(b.basket)) yield [productId, name];
    }
  });

  await writer.insertMissing('revenue_multiday_lines', ['order_id', 'product_id', 'date'], function* () {
    for (const l of delta.multidayLines) yield [l.orderId, l.productId, l.date];
  });
  await writer.insertMissing('revenue_multiday_days', ['order_id', 'date', 'prev_date'], function* () {
    for (const d of delta.multidayDays) yield [d.orderId, d.date, d.prevDate];
  });

  await writer.timed('(empty rows removed)', () => writer.removeEmpty());
  if (firstMonth !== undefined) await writer.timed('revenue_product_cum', () => refreshCumulative(db, firstMonth));
  await bumpDataVersion(db, dialect);
  return writer.profile;
}

/** Per rollup table: rows the change wrote to it and milliseconds spent (its part of `rollups_ms`). */
export type RollupWriteProfile = Record<string, { rows: number; ms: number }>;

const weeks = new Map<string, string>();
/** The Monday of the date's ISO week (remembered: a change has few distinct dates). */
function weekStart(date: string): string {
  let week = weeks.get(date);
  if (week === undefined) {
    if (weeks.size > 50_000) weeks.clear();
    weeks.set(date, (week = periodStart(date, 'week')));
  }
  return week;
}

function monthStart(date: string): string {
  return `${date.slice(0, 8)}01`;
}

/** a + b, exactly: a number while that is exact, a bigint beyond. */
function addCents(a: Cents, b: Cents): Cents {
  if (typeof a === 'number' && typeof b === 'number') {
    const sum = a + b;
    if (Number.isSafeInteger(sum)) return sum;
  }
  return BigInt(a) + BigInt(b);
}

/** Which rows a table's change may have left at zero (then they go, as a rebuild has no such rows). */
const EMPTY_WHEN: Record<string, string> = {
  revenue_daily: 'sale_count',
  revenue_daily_product: 'sale_count',
  revenue_weekly_product: 'sale_count',
  revenue_monthly_product: 'sale_count',
  revenue_daily_basket: 'order_count',
};

/**
 * The dialect's keyed writer, with what the rollups add to it: the keys of rows whose count went
 * down (the only ones a change may have left empty, removed at the end), and the time and rows
 * each table took.
 */
function rowWriter(db: DB, dialect: Dialect, loadData: boolean) {
  /** Keys of rows whose count went down, per table: the only ones that may now be empty. */
  const shrunk = new Map<string, { keys: string[]; rows: unknown[][] }>();
  const keyed = dialect.keyedWriter(db, { loadData });
  const profile: RollupWriteProfile = {};
  /** Runs `write` and adds its time, and the rows it passed, to the table's entry. */
  async function timed(table: string, write: () => Promise<void>, rows = 0): Promise<void> {
    const started = performance.now();
    await write();
    const entry = (profile[table] ??= { rows: 0, ms: 0 });
    entry.rows += rows;
    entry.ms += Math.round(performance.now() - started);
  }

  /**
   * Adds each row's values to the stored row of its key, or stores it. `fresh` tells rows whose
   * key no stored row can hold (the dialect may append those in bulk).
   */
  async function upsert(
    table: string,
    keys: string[],
    adds: string[],
    rows: () => Iterable<unknown[]>,
    fresh?: (row: unknown[]) => boolean,
  ): Promise<void> {
    const countAt = keys.length + adds.indexOf(EMPTY_WHEN[table]!);
    const down: unknown[][] = [];
    // The dialect may walk the rows more than once: the first walk counts them and notes the shrunk.
    let walks = 0;
    let passed = 0;
    const walk = function* () {
      const first = walks++ === 0;
      for (const row of rows()) {
        if (first) {
          passed++;
          if ((row[countAt] as number) < 0) down.push(row);
        }
        yield row;
      }
    };
    await timed(table, () => keyed.addByKey(table, keys, adds, walk, fresh));
    profile[table]!.rows += passed;
    if (down.length > 0) shrunk.set(table, { keys, rows: down });
  }

  async function insertMissing(table: string, columns: string[], rows: () => Iterable<unknown[]>): Promise<void> {
    let passed = 0;
    const counted = function* () {
      for (const row of rows()) {
        passed++;
        yield row;
      }
    };
    await timed(table, () => keyed.insertMissing(table, columns, counted));
    profile[table]!.rows += passed;
  }

  async function removeEmpty(): Promise<void> {
    for (const [table, { keys, rows }] of shrunk) {
      const count = sql.ref(EMPTY_WHEN[table]!);
      for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
        const chunk = rows.slice(i, i + ROWS_PER_STATEMENT).map((r) => sql`(${sql.join(keys.map((_, k) => r[k]))})`);
        await sql`DELETE FROM ${sql.table(table)} WHERE ${count} = 0
          AND (${sql.join(keys.map((k) => sql.ref(k)))}) IN (${sql.join(chunk)})`.execute(db);
      }
    }
  }

  return { upsert, insertMissing, removeEmpty, timed, profile };
}
