import { divideRounded, formatCents } from '../money.js';
import type { ProductRevenue, DayRevenue, RevenueTotals } from './revenue.queries.js';
import type { PeriodRevenue } from './revenue.series.js';
import type { ByProductAnswer, DailyAnswer, SeriesAnswer, TotalsAnswer } from './revenue.service.js';

/** Turns revenue numbers into their wire shape: money as decimal strings with two digits. */
export function presentTotals(start: string | null, end: string | null, t: RevenueTotals) {
  return {
    start,
    end,
    currency: 'SGD' as const,
    ...totalsFields(t),
  };
}

function averageCents(t: RevenueTotals): bigint | null {
  return t.orderCount === 0 ? null : divideRounded(t.revenueCents, BigInt(t.orderCount));
}

function totalsFields(t: RevenueTotals) {
  const average = averageCents(t);
  return {
    total_revenue: formatCents(t.revenueCents),
    order_count: t.orderCount,
    sale_count: t.saleCount,
    average_order_value: average === null ? null : formatCents(average),
  };
}

export function presentDay(d: DayRevenue) {
  return { date: d.date, revenue: formatCents(d.revenueCents), order_count: d.orderCount, sale_count: d.saleCount };
}

export function presentPeriod(p: PeriodRevenue) {
  return {
    period: p.period,
    start: p.start,
    end: p.end,
    partial: p.partial,
    revenue: formatCents(p.revenueCents),
    order_count: p.orderCount,
    sale_count: p.saleCount,
  };
}

/**
 * `part` as a percentage of `whole`, two decimals, rounded half away from zero; null when the
 * whole is 0. A negative whole counts by its size, so the sign says the direction of the part.
 */
export function percentOf(part: bigint, whole: bigint): string | null {
  if (whole === 0n) return null;
  const size = whole < 0n ? -whole : whole;
  return formatCents(divideRounded(part * 10_000n, size));
}

/** The totals of a range with those of the period before it and the change. */
export function presentComparison(
  current: ReturnType<typeof presentTotals>,
  now: RevenueTotals,
  previous: { start: string; end: string; totals: RevenueTotals },
) {
  const before = previous.totals;
  const nowAverage = averageCents(now);
  const beforeAverage = averageCents(before);
  const count = (a: number, b: number) => ({ absolute: a - b, percent: percentOf(BigInt(a - b), BigInt(b)) });
  return {
    ...current,
    compare: 'previous_period' as const,
    previous: { start: previous.start, end: previous.end, ...totalsFields(before) },
    change: {
      total_revenue: {
        absolute: formatCents(now.revenueCents - before.revenueCents),
        percent: percentOf(now.revenueCents - before.revenueCents, before.revenueCents),
      },
      order_count: count(now.orderCount, before.orderCount),
      sale_count: count(now.saleCount, before.saleCount),
      average_order_value:
        nowAverage === null || beforeAverage === null
          ? { absolute: null, percent: null }
          : { absolute: formatCents(nowAverage - beforeAverage), percent: percentOf(nowAverage - beforeAverage, beforeAverage) },
    },
  };
}

export function presentProduct(p: ProductRevenue, totalCents: bigint) {
  return {
    product_id: p.productId,
    revenue: formatCents(p.revenueCents),
    share: percentOf(p.revenueCents, totalCents),
    order_count: p.orderCount,
    sale_count: p.saleCount,
  };
}

/** The product filter echoed, when there is one. */
function productIdsField(productIds: string[]) {
  return productIds.length > 0 ? { product_ids: productIds } : {};
}

/** GET /api/metrics/revenue: the totals, the filter, and the comparison when asked. */
export function presentTotalsAnswer(answer: TotalsAnswer) {
  const body = { ...presentTotals(answer.start, answer.end, answer.totals), ...productIdsField(answer.productIds) };
  return answer.previous ? presentComparison(body, answer.totals, answer.previous) : body;
}

/** GET /api/metrics/revenue/daily. */
export function presentDailyAnswer(answer: DailyAnswer) {
  return { start: answer.start, end: answer.end, currency: 'SGD' as const, days: answer.days.map(presentDay) };
}

/** GET /api/metrics/revenue/series. */
export function presentSeriesAnswer(answer: SeriesAnswer) {
  return {
    start: answer.start,
    end: answer.end,
    granularity: answer.granularity,
    currency: 'SGD' as const,
    ...productIdsField(answer.productIds),
    periods: answer.periods.map(presentPeriod),
  };
}

/** GET /api/metrics/revenue/by-product: each product's share is of the range's total revenue. */
export function presentByProductAnswer(answer: ByProductAnswer) {
  return {
    start: answer.start,
    end: answer.end,
    currency: 'SGD' as const,
    order: answer.order,
    limit: answer.limit,
    total_revenue: formatCents(answer.totalCents),
    products: answer.products.map((p) => presentProduct(p, answer.totalCents)),
  };
}
