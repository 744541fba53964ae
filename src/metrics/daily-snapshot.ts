import { sql } from 'kysely';
import type { Database } from '../db/database.js';
import { periodStart, type Granularity } from '../calendar.js';
import type { DayRevenue, RevenueTotals } from './revenue.queries.js';
import { readDataVersion } from '../db/data-version.js';

/** Past this many multi-date (order, date) pairs the snapshot is not kept in memory (tests: -1, never). */
export const snapshotTuning = { maxPairs: 200_000 };

/**
 * revenue_daily and revenue_multiday_days of one data version, in memory: a row per date with
 * sales (a few thousand for years of data) and the few pairs of orders spanning dates. Totals
 * over any range are differences of prefix sums (binary search, no query), days are slices.
 * Used for the questions without a product filter; exact like the tables it mirrors.
 */
export class DailySnapshot {
  private constructor(
    readonly version: string,
    private readonly dates: string[],
    private readonly days: DayRevenue[],
    /** Prefix sums: element i sums days[0..i-1]. */
    private readonly revenue: bigint[],
    private readonly sales: number[],
    private readonly orders: number[],
    /** Multi-date (date, previous date of the same order) pairs, by date. */
    private readonly pairDates: string[],
    private readonly pairPrev: string[],
  ) {}

  /**
   * Reads both tables as of one data version: the version before and after must agree (every
   * change bumps it in the same transaction), else it reads again. Undefined when the side table
   * is too large to mirror.
   */
  static async load(database: Database): Promise<DailySnapshot | undefined> {
    const db = database.db;
    for (;;) {
      const version = await readDataVersion(database.db);
      const pairs = await sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM revenue_multiday_days
        WHERE prev_date IS NOT NULL`.execute(db);
      if (Number(pairs.rows[0]!.n) > snapshotTuning.maxPairs) return undefined;
      const [daily, multi] = await Promise.all([
        sql<{ date: string; revenue: string | number; sale_count: number | string; order_count: number | string }>`
          SELECT date, revenue, sale_count, order_count FROM revenue_daily ORDER BY date`.execute(db),
        sql<{ date: string; prev_date: string }>`SELECT date, prev_date FROM revenue_multiday_days
          WHERE prev_date IS NOT NULL ORDER BY date`.execute(db),
      ]);
      if ((await readDataVersion(database.db)) !== version) continue;
      const days = daily.rows.map((r) => ({
        date: r.date,
        revenueCents: database.dialect.centsFromDb(r.revenue),
        saleCount: Number(r.sale_count),
        orderCount: Number(r.order_count),
      }));
      const revenue = [0n];
      const sales = [0];
      const orders = [0];
      for (const d of days) {
        revenue.push(revenue.at(-1)! + d.revenueCents);
        sales.push(sales.at(-1)! + d.saleCount);
        orders.push(orders.at(-1)! + d.orderCount);
      }
      return new DailySnapshot(
        version,
        days.map((d) => d.date),
        days,
        revenue,
        sales,
        orders,
        multi.rows.map((r) => r.date),
        multi.rows.map((r) => r.prev_date),
      );
    }
  }

  /** First and last date with sales, or undefined when there are none. */
  bounds(): { first: string; last: string } | undefined {
    return this.dates.length === 0 ? undefined : { first: this.dates[0]!, last: this.dates.at(-1)! };
  }

  /** Totals over [start, end] (absent: unbounded); orders counted once each. */
  totals(start: string | undefined, end: string | undefined): RevenueTotals {
    const i = start ? lowerBound(this.dates, start) : 0;
    const j = end ? upperBound(this.dates, end) : this.dates.length;
    if (j <= i) return { revenueCents: 0n, orderCount: 0, saleCount: 0 };
    // An order on k dates of the range is in k daily counts: its pairs whose previous date is
    // in the range too are the k − 1 to take off.
    let overCount = 0;
    const from = start ? lowerBound(this.pairDates, start) : 0;
    const to = end ? upperBound(this.pairDates, end) : this.pairDates.length;
    for (let p = from; p < to; p++) if (!start || this.pairPrev[p]! >= start) overCount++;
    return {
      revenueCents: this.revenue[j]! - this.revenue[i]!,
      saleCount: this.sales[j]! - this.sales[i]!,
      orderCount: this.orders[j]! - this.orders[i]! - overCount,
    };
  }

  /** The days with sales in [start, end], ascending. */
  byDay(start: string, end: string): DayRevenue[] {
    return this.days.slice(lowerBound(this.dates, start), upperBound(this.dates, end));
  }

  /** The series over-count (see seriesOverCount) for [start, end] cut into `granularity` periods. */
  overCount(start: string, end: string, granularity: Granularity): string[] {
    if (granularity === 'day') return [];
    const out: string[] = [];
    for (let p = lowerBound(this.pairDates, start), to = upperBound(this.pairDates, end); p < to; p++) {
      const date = this.pairDates[p]!;
      if (this.pairPrev[p]! >= start && this.pairPrev[p]! >= periodStart(date, granularity)) out.push(date);
    }
    return out;
  }
}

/** First index whose value is >= key. */
function lowerBound(sorted: string[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index whose value is > key. */
function upperBound(sorted: string[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The snapshot for the data version a request holds, loaded once per version (concurrent
 * callers share the load). A load may find a newer version than asked for: its answers are then
 * fresher than their cache key, which the staleness bound allows.
 */
export class DailySnapshots {
  private forVersion: string | undefined;
  private current: DailySnapshot | undefined;
  private loading: { version: string; promise: Promise<DailySnapshot | undefined> } | undefined;

  /**
   * The snapshot for `version`, read from `database` (the primary or a replica: a version's data
   * is the same on each) unless it is kept already; undefined when the data is too large to mirror.
   */
  async get(version: string, database: Database): Promise<DailySnapshot | undefined> {
    if (this.forVersion === version) return this.current;
    if (this.loading?.version === version) return this.loading.promise;
    const promise = DailySnapshot.load(database).then(
      (snapshot) => {
        if (this.loading?.promise === promise) {
          this.loading = undefined;
          this.forVersion = version;
          this.current = snapshot;
        }
        return snapshot;
      },
      (error: unknown) => {
        if (this.loading?.promise === promise) this.loading = undefined;
        throw error;
      },
    );
    this.loading = { version, promise };
    return promise;
  }
}
